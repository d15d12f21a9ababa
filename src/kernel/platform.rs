//! [`BoardPlatform`]: the shell's view of the Raspberry Pi: `info`, raw memory
//! reads for `x`, and `reboot` through the watchdog.

use core::fmt;
use core::sync::atomic::Ordering;

use vmcirc::arch::decode_midr;
use vmcirc::board::mailbox::FirmwareInfo;
use vmcirc::board::mmio::Mmio;
use vmcirc::board::{revision, watchdog, PERIPHERAL_BASE, PERIPHERAL_END, UART_CLOCK_HZ};
use vmcirc::mmu::{
    cp15, mirror_create, mirror_destroy, mmu_state, LiveTable, SectionAllocator, SectionMirror,
    WindowAllocator,
};
use vmcirc::shell::ring::Rings;
use vmcirc::shell::{FaultRequest, Platform, PlatformError};
use vmcirc::uart::{RxStats, RX_QUEUE_BYTES};

use super::console::now_us;
use super::entry::BAUD;
use super::layout::kernel_layout;

/// Where the RAM size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// The mailbox property interface.
    Mailbox,
    /// The firmware's ATAG list.
    Atags,
    /// Neither answered: a conservative guess.
    Assumed,
}

/// The board, as the shell sees it.
pub struct BoardPlatform {
    table: LiveTable,
    fw: Option<FirmwareInfo>,
    ram_bytes: u32,
    source: MemorySource,
    machine: u32,
    atags: u32,
    rx_stats: &'static RxStats,
    sections: Option<SectionAllocator>,
    windows: WindowAllocator,
    rings: Rings<SectionMirror>,
}

/// RAM below this (`__kernel_end`: image, tables, stacks) stays with the kernel;
/// ring stores come from the whole MiBs above it.
fn kernel_end() -> u32 {
    kernel_layout().end
}

impl BoardPlatform {
    /// Everything `kernel_main` learnt at boot.
    pub fn new(
        table: LiveTable,
        fw: Option<FirmwareInfo>,
        ram_bytes: u32,
        source: MemorySource,
        machine: u32,
        atags: u32,
        rx_stats: &'static RxStats,
    ) -> Self {
        // SAFETY: RAM from the first MiB after the kernel to the firmware's ARM
        // size is used by nothing else, and the boot map maps it normal WB.
        let sections = unsafe { SectionAllocator::new(kernel_end(), ram_bytes) }.ok();
        BoardPlatform {
            table,
            fw,
            ram_bytes,
            source,
            machine,
            atags,
            rx_stats,
            sections,
            windows: WindowAllocator::new(),
            rings: Rings::default(),
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Recurses until the SVC stack runs into its guard page, 1 KiB and more a frame.
/// Every frame writes its buffer (through `black_box`, so it is neither elided nor
/// turned into a loop) and uses the result after the call, so the recursion is not a
/// tail call. The data abort on the guard page abandons all the frames.
#[inline(never)]
fn recurse(depth: u32) -> u32 {
    let mut frame = [0u8; 1024];
    frame[0] = depth as u8;
    let frame = core::hint::black_box(&mut frame);
    // Never true at run time; keeps the recursion from being unconditional.
    if core::hint::black_box(depth) == u32::MAX {
        return 0;
    }
    let below = recurse(depth + 1);
    below.wrapping_add(u32::from(frame[depth as usize % frame.len()]))
}

impl Platform for BoardPlatform {
    fn info(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        let id = decode_midr(cp15::read_midr());
        writeln!(
            out,
            "cpu: {} {} r{}p{} (midr={:#010x})",
            id.implementer, id.part, id.variant, id.revision, id.raw
        )?;
        match self.fw {
            Some(fw) => {
                let b = revision::decode(fw.revision);
                write!(
                    out,
                    "board: {} rev 1.{} (revision {:#x})",
                    b.name, b.board_rev, fw.revision
                )?;
                if let Some(mib) = b.memory_mib {
                    write!(out, ", {mib} MiB SDRAM")?;
                }
                writeln!(out)?;
            }
            None => writeln!(
                out,
                "board: BCM2835 (the firmware did not answer the mailbox)"
            )?,
        }
        let src = match self.source {
            MemorySource::Mailbox => "mailbox",
            MemorySource::Atags => "ATAGs",
            MemorySource::Assumed => "assumed: firmware gave no size",
        };
        write!(
            out,
            "memory: {} MiB for the ARM ({src})",
            self.ram_bytes >> 20
        )?;
        if let Some(fw) = self.fw {
            write!(
                out,
                ", {} MiB VideoCore at {:#010x}",
                fw.vc_size >> 20,
                fw.vc_base
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "firmware: machine type {:#x}, boot tags at {:#x}",
            self.machine, self.atags
        )?;
        let m = mmu_state();
        writeln!(
            out,
            "mmu: {}, d-cache {}, i-cache {}, branch prediction {}, table at {:#010x}",
            on_off(m.mmu()),
            on_off(m.dcache()),
            on_off(m.icache()),
            on_off(m.branch_prediction()),
            m.table_base()
        )?;
        writeln!(
            out,
            "uart: PL011 {BAUD} 8N1 from a {} MHz clock; rx queue {} bytes, received {}, queue-full pauses {}, fifo overruns {}, line errors {}",
            UART_CLOCK_HZ / 1_000_000,
            RX_QUEUE_BYTES,
            self.rx_stats.received.load(Ordering::Relaxed),
            self.rx_stats.pauses.load(Ordering::Relaxed),
            self.rx_stats.fifo_overruns.load(Ordering::Relaxed),
            self.rx_stats.line_errors.load(Ordering::Relaxed),
        )
    }

    fn uptime_us(&mut self) -> u64 {
        now_us()
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), PlatformError> {
        let end = addr.checked_add(buf.len() as u64).filter(|&e| e <= 1 << 32);
        if end.is_none() {
            return Err(PlatformError::from(
                "x: range beyond the 32-bit address space",
            ));
        }
        let addr = addr as u32;
        let device = (PERIPHERAL_BASE..PERIPHERAL_END).contains(&addr);
        if device && (!addr.is_multiple_of(4) || !buf.len().is_multiple_of(4)) {
            return Err(PlatformError::from(
                "x: peripheral registers are read as whole aligned words",
            ));
        }
        if device {
            for (i, chunk) in buf.chunks_exact_mut(4).enumerate() {
                let a = addr + 4 * i as u32;
                // SAFETY: an aligned word read of a peripheral register. A read of
                // an unmapped address takes a data abort, which is reported and
                // recovered from (it never returns here).
                let v = unsafe { core::ptr::read_volatile(a as usize as *const u32) };
                chunk.copy_from_slice(&v.to_le_bytes());
            }
        } else {
            for (i, b) in buf.iter_mut().enumerate() {
                let a = addr.wrapping_add(i as u32);
                // SAFETY: a byte read; mapped RAM is always readable, and an
                // unmapped address takes a data abort that the fault handler
                // reports before it re-enters the shell.
                *b = unsafe { core::ptr::read_volatile(a as usize as *const u8) };
            }
        }
        Ok(())
    }

    fn reboot(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        // SAFETY: the watchdog registers; the shell is the only user.
        let mut bus = unsafe { Mmio::new() };
        watchdog::reset_after(&mut bus, 10);
        let start = now_us();
        while now_us() - start < 500_000 {
            core::hint::spin_loop();
        }
        writeln!(
            out,
            "error: reboot: the watchdog did not reset the board within 0.5 s (this emulator does not model the BCM2835 watchdog)"
        )
    }

    fn trigger_fault(&mut self, kind: FaultRequest) -> Result<(), PlatformError> {
        /// Nothing is mapped here (RAM ends below the peripherals at 0x2000_0000;
        /// the mirror windows start at 0x8000_0000).
        const UNMAPPED: usize = 0x7000_0000;
        /// The first MiB above the kernel: RAM, data only.
        const DATA_RAM: usize = 0x0010_0000;
        match kind {
            // SAFETY: this instruction word is permanently undefined in ARM state
            // (the UDF space); the undefined-instruction handler reports it and
            // re-enters the shell, so control never comes back here.
            FaultRequest::Undefined => unsafe {
                core::arch::asm!(".word 0xe7f000f0", options(noreturn))
            },
            // SAFETY: a branch to unmapped memory takes a prefetch abort, which is
            // reported and recovered from; it never returns here.
            FaultRequest::PrefetchAbort => unsafe {
                core::arch::asm!("bx {0}", in(reg) UNMAPPED, options(noreturn))
            },
            FaultRequest::DataAbort => {
                // SAFETY: a load from unmapped memory takes a data abort, which is
                // reported and recovered from; the value is never used.
                unsafe { core::ptr::read_volatile(UNMAPPED as *const u32) };
            }
            FaultRequest::StackOverflow => {
                core::hint::black_box(recurse(0));
            }
            // SAFETY: the first MiB above the kernel is RAM mapped execute never,
            // so the fetch takes a prefetch abort (permission fault), which is
            // reported and recovered from; it never returns here.
            FaultRequest::ExecuteData => unsafe {
                core::arch::asm!("bx {0}", in(reg) DATA_RAM, options(noreturn))
            },
            FaultRequest::WriteCode => {
                let code = super::layout::kernel_layout().text_start as usize as *mut u32;
                // SAFETY: `code` is the kernel's first instruction word, mapped
                // read-only, so the store takes a data abort (permission fault),
                // which is reported and recovered from. Should the mapping be
                // wrong, the store writes back the word just read: nothing changes.
                unsafe {
                    let word = core::ptr::read_volatile(code);
                    core::ptr::write_volatile(code, word);
                }
            }
        }
        Err(PlatformError::from("fault: the access did not fault"))
    }

    type Mirror = SectionMirror;

    fn rings(&mut self) -> &mut Rings<SectionMirror> {
        &mut self.rings
    }

    fn create_mirror_units(&mut self, mib: u64) -> Result<SectionMirror, PlatformError> {
        let sections = self.sections.as_mut().ok_or(PlatformError::from(
            "ring new: no free RAM above the kernel",
        ))?;
        let mib = u32::try_from(mib).unwrap_or(u32::MAX);
        mirror_create(&mut self.table, sections, &mut self.windows, mib)
            .map_err(|e| PlatformError::text(format_args!("ring new: {e}")))
    }

    fn destroy_mirror(&mut self, mirror: SectionMirror) {
        if let Some(sections) = self.sections.as_mut() {
            // Refused only for a mirror this platform did not make; then its
            // mapping and memory are left exactly as they were (nothing freed).
            let _ = mirror_destroy(&mut self.table, sections, &mut self.windows, mirror);
        }
    }

    fn describe_mirror(m: &SectionMirror, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(
            out,
            "{} MiB store at phys {:#010x}, window {:#010x}..{:#010x} (second copy at {:#010x})",
            m.mib(),
            m.store_pa(),
            m.window_va(),
            m.guard_va(),
            m.second_half_va()
        )
    }

    fn write_map(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        let mut any = false;
        for run in self.table.table().non_identity_runs() {
            writeln!(out, "{run}")?;
            any = true;
        }
        if !any {
            writeln!(
                out,
                "only the identity map (RAM and peripherals); no rings mapped"
            )?;
        }
        if let Some(s) = &self.sections {
            let (lo, hi) = s.range();
            writeln!(
                out,
                "free RAM for rings: {} of {} MiB ({:#010x}..{:#010x}), largest run {} MiB",
                s.free_sections(),
                s.total_sections(),
                lo,
                hi,
                s.largest_free_run()
            )?;
        }
        Ok(())
    }

    fn clock_fn(&self) -> fn() -> u64 {
        now_us
    }
}
