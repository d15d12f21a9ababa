//! Fault reports: the exception kinds `boot.S` passes to the kernel, and the
//! ARMv6 (SCTLR.XP = 1) fault status encodings decoded to words (ARM ARM v6,
//! B4.6 "Fault Status and Fault Address registers").

use core::fmt;

use crate::mmu::StackGuard;

/// Which exception was taken (the `kind` argument from boot.S).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Undefined instruction.
    Undefined,
    /// Prefetch abort (instruction fetch).
    PrefetchAbort,
    /// Data abort.
    DataAbort,
    /// An SVC the kernel does not use.
    Svc,
    /// A FIQ (never enabled).
    Fiq,
}

impl FaultKind {
    /// From boot.S's kind number.
    pub fn from_raw(kind: u32) -> Self {
        match kind {
            0 => FaultKind::Undefined,
            1 => FaultKind::PrefetchAbort,
            2 => FaultKind::DataAbort,
            3 => FaultKind::Svc,
            _ => FaultKind::Fiq,
        }
    }

    /// Name used in the report line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Undefined => "undefined instruction",
            FaultKind::PrefetchAbort => "prefetch abort",
            FaultKind::DataAbort => "data abort",
            FaultKind::Svc => "unexpected svc",
            FaultKind::Fiq => "unexpected fiq",
        }
    }

    /// The faulting instruction's address from the exception's lr (ARM state;
    /// `thumb` from SPSR.T for undefined instructions).
    pub fn faulting_pc(self, lr: u32, thumb: bool) -> u32 {
        match self {
            FaultKind::Undefined if thumb => lr.wrapping_sub(2),
            FaultKind::Undefined | FaultKind::PrefetchAbort | FaultKind::Svc => lr.wrapping_sub(4),
            FaultKind::DataAbort => lr.wrapping_sub(8),
            FaultKind::Fiq => lr.wrapping_sub(4),
        }
    }
}

/// The fault status (FS[10,3:0]) of a DFSR/IFSR value, in words.
pub fn status_text(fsr: u32) -> &'static str {
    let fs = ((fsr >> 6) & 0x10) | (fsr & 0xf);
    match fs {
        0b00001 => "alignment fault",
        0b00100 => "instruction cache maintenance fault",
        0b01100 => "external abort on translation, first level",
        0b01110 => "external abort on translation, second level",
        0b00101 => "translation fault, section (address not mapped)",
        0b00111 => "translation fault, page (address not mapped)",
        0b00011 => "access flag fault, section",
        0b00110 => "access flag fault, page",
        0b01001 => "domain fault, section",
        0b01011 => "domain fault, page",
        0b01101 => "permission fault, section",
        0b01111 => "permission fault, page",
        0b01000 => "precise external abort",
        0b10110 => "imprecise external abort",
        0b00010 => "debug event",
        _ => "unknown fault status",
    }
}

/// For a data abort whose fault address lies in one of `guards` (the unmapped page
/// under each mode stack, see [`crate::mmu::KernelLayout`]), the mode whose stack
/// overflowed. The FAR is valid for every data abort that is not an imprecise external
/// abort (ARM ARM v6 §B4.6.4, *Fault Address Register*; imprecise aborts leave it
/// unchanged), which a translation fault on a guard page never is.
pub fn stack_guard_hit(
    kind: FaultKind,
    fsr: u32,
    far: u32,
    guards: &[StackGuard],
) -> Option<&'static str> {
    let imprecise = ((fsr >> 6) & 0x10) | (fsr & 0xf) == 0b10110;
    if kind != FaultKind::DataAbort || imprecise {
        return None;
    }
    guards.iter().find(|g| g.contains(far)).map(|g| g.mode)
}

/// Everything the one-line report says.
#[derive(Debug, Clone, Copy)]
pub struct FaultReport {
    /// The exception.
    pub kind: FaultKind,
    /// Address of the faulting instruction.
    pub pc: u32,
    /// Fault address (data aborts) or the PC (prefetch aborts).
    pub far: u32,
    /// DFSR or IFSR.
    pub fsr: u32,
    /// The instruction word at `pc`, for undefined instructions.
    pub insn: Option<u32>,
    /// The mode whose stack guard page `far` lies in ([`stack_guard_hit`]).
    pub stack_guard: Option<&'static str>,
}

impl fmt::Display for FaultReport {
    /// `error: data abort at pc=0x0000a1b4: read of 0x90000000: translation
    /// fault, section (address not mapped) (dfsr=0x00000005)` — one line, starting
    /// with `error: ` as every shell error does; a stack overflow ends with
    /// ` (stack overflow: SVC stack guard page)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_fault(f)?;
        match self.stack_guard {
            Some(mode) => write!(f, " (stack overflow: {mode} stack guard page)"),
            None => Ok(()),
        }
    }
}

impl FaultReport {
    fn fmt_fault(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {} at pc={:#010x}", self.kind.name(), self.pc)?;
        match self.kind {
            FaultKind::DataAbort => {
                let access = if self.fsr & (1 << 11) != 0 {
                    "write"
                } else {
                    "read"
                };
                write!(
                    f,
                    ": {access} of {:#010x}: {} (dfsr={:#010x})",
                    self.far,
                    status_text(self.fsr),
                    self.fsr
                )
            }
            FaultKind::PrefetchAbort => write!(
                f,
                ": fetch from {:#010x}: {} (ifsr={:#010x})",
                self.far,
                status_text(self.fsr),
                self.fsr
            ),
            FaultKind::Undefined => match self.insn {
                Some(i) => write!(f, ": instruction word {i:#010x}"),
                None => Ok(()),
            },
            FaultKind::Svc | FaultKind::Fiq => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn decodes_status_codes() {
        assert_eq!(
            status_text(0x005),
            "translation fault, section (address not mapped)"
        );
        assert_eq!(status_text(0x80d), "permission fault, section");
        assert_eq!(status_text(0x406), "imprecise external abort");
        assert_eq!(status_text(0x001), "alignment fault");
    }

    #[test]
    fn report_line() {
        let r = FaultReport {
            kind: FaultKind::DataAbort,
            pc: FaultKind::DataAbort.faulting_pc(0x8108, false),
            far: 0x9000_0000,
            fsr: 0x805,
            insn: None,
            stack_guard: None,
        };
        assert_eq!(
            r.to_string(),
            "error: data abort at pc=0x00008100: write of 0x90000000: \
             translation fault, section (address not mapped) (dfsr=0x00000805)"
        );
        let u = FaultReport {
            kind: FaultKind::Undefined,
            pc: FaultKind::Undefined.faulting_pc(0x8004, false),
            far: 0,
            fsr: 0,
            insn: Some(0xe7f0_00f0),
            stack_guard: None,
        };
        assert_eq!(
            u.to_string(),
            "error: undefined instruction at pc=0x00008000: instruction word 0xe7f000f0"
        );
    }

    fn guards() -> [StackGuard; 4] {
        [
            StackGuard {
                mode: "UND",
                page: 0x0002_a000,
            },
            StackGuard {
                mode: "ABT",
                page: 0x0002_c000,
            },
            StackGuard {
                mode: "IRQ",
                page: 0x0002_f000,
            },
            StackGuard {
                mode: "SVC",
                page: 0x0003_2000,
            },
        ]
    }

    #[test]
    fn data_abort_in_a_guard_page_names_the_stack() {
        let g = guards();
        let dabt = FaultKind::DataAbort;
        // A push past the bottom of the SVC stack: write, translation fault, page.
        assert_eq!(stack_guard_hit(dabt, 0x807, 0x0003_2ff8, &g), Some("SVC"));
        assert_eq!(stack_guard_hit(dabt, 0x807, 0x0003_2000, &g), Some("SVC"));
        assert_eq!(stack_guard_hit(dabt, 0x007, 0x0002_f010, &g), Some("IRQ"));
        assert_eq!(stack_guard_hit(dabt, 0x807, 0x0002_a000, &g), Some("UND"));
        assert_eq!(stack_guard_hit(dabt, 0x807, 0x0002_cfff, &g), Some("ABT"));
        // Just outside: the stack's own lowest word, the page below the guard.
        assert_eq!(stack_guard_hit(dabt, 0x807, 0x0003_3000, &g), None);
        assert_eq!(stack_guard_hit(dabt, 0x807, 0x0003_1ffc, &g), None);
        assert_eq!(stack_guard_hit(dabt, 0x005, 0x7000_0000, &g), None);
        // Only data aborts with a valid FAR.
        assert_eq!(
            stack_guard_hit(dabt, 0x406, 0x0003_2000, &g),
            None,
            "imprecise"
        );
        let pabt = FaultKind::PrefetchAbort;
        assert_eq!(stack_guard_hit(pabt, 0x007, 0x0003_2000, &g), None);
        assert_eq!(stack_guard_hit(dabt, 0x807, 0x0003_2000, &[]), None);
    }

    #[test]
    fn stack_overflow_report_line() {
        let far = 0x0003_2ff8;
        let fsr = 0x807;
        let r = FaultReport {
            kind: FaultKind::DataAbort,
            pc: 0x0000_9abc,
            far,
            fsr,
            insn: None,
            stack_guard: stack_guard_hit(FaultKind::DataAbort, fsr, far, &guards()),
        };
        assert_eq!(
            r.to_string(),
            "error: data abort at pc=0x00009abc: write of 0x00032ff8: translation fault, page \
             (address not mapped) (dfsr=0x00000807) (stack overflow: SVC stack guard page)"
        );
    }
}
