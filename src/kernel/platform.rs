//! [`BoardPlatform`]: the shell's view of the Raspberry Pi for one command: `info`,
//! raw memory reads for `x`, `reboot` through the watchdog, `fault`, and the rings,
//! whose memory it borrows from the kernel's [`Memory`].

use core::fmt;
use core::sync::atomic::Ordering;

use vmcirc::arch::decode_midr;
use vmcirc::board::{revision, PERIPHERAL_BASE, PERIPHERAL_END};
use vmcirc::mmu::{cp15, mmu_state, SectionMirror};
use vmcirc::shell::ring::Rings;
use vmcirc::shell::{FaultRequest, Platform, PlatformError};
use vmcirc::uart::{actual_baud, RX_QUEUE_BYTES};

use super::chainload;
use super::clock;
use super::config::{BoardInfo, MemorySource, BAUD};
use super::devices;
use super::layout::kernel_layout;
use super::memory::Memory;
use super::rx::RX_STATS;

/// The board, as the shell sees it while it runs one command.
pub struct BoardPlatform<'a> {
    memory: &'a mut Memory,
    board: &'a BoardInfo,
}

impl<'a> BoardPlatform<'a> {
    /// The shell's view of `memory` (lent for as long as the view lives) and of what
    /// boot learnt.
    pub fn new(memory: &'a mut Memory, board: &'a BoardInfo) -> Self {
        BoardPlatform { memory, board }
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

impl Platform for BoardPlatform<'_> {
    fn info(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        let id = decode_midr(cp15::read_midr());
        writeln!(
            out,
            "cpu: {} {} r{}p{} (midr={:#010x})",
            id.implementer, id.part, id.variant, id.revision, id.raw
        )?;
        let b = self.board;
        match b.firmware {
            Some(fw) => {
                let rev = revision::decode(fw.revision);
                write!(
                    out,
                    "board: {} rev 1.{} (revision {:#x})",
                    rev.name, rev.board_rev, fw.revision
                )?;
                if let Some(mib) = rev.memory_mib {
                    write!(out, ", {mib} MiB SDRAM")?;
                }
                writeln!(out)?;
            }
            None => writeln!(
                out,
                "board: BCM2835 (the firmware did not answer the mailbox)"
            )?,
        }
        let src = match b.memory_source {
            MemorySource::Mailbox => "mailbox",
            MemorySource::Atags => "ATAGs",
            MemorySource::Assumed => "assumed: firmware gave no size",
        };
        write!(out, "memory: {} MiB for the ARM ({src})", b.ram_bytes >> 20)?;
        if let Some(fw) = b.firmware {
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
            b.machine, b.atags
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
        let u = b.uart;
        writeln!(
            out,
            "uart: PL011 {BAUD} 8N1 from a {} Hz clock ({}), IBRD {} FBRD {} = {} baud",
            u.hz,
            if u.from_mailbox {
                "firmware, mailbox"
            } else {
                "assumed: the mailbox did not answer"
            },
            u.ibrd,
            u.fbrd,
            actual_baud(u.hz, u.ibrd, u.fbrd)
        )?;
        writeln!(
            out,
            "uart rx: queue {} bytes, received {}, queue-full pauses {}, fifo overruns {}, line errors {}",
            RX_QUEUE_BYTES,
            RX_STATS.received.load(Ordering::Relaxed),
            RX_STATS.pauses.load(Ordering::Relaxed),
            RX_STATS.fifo_overruns.load(Ordering::Relaxed),
            RX_STATS.line_errors.load(Ordering::Relaxed),
        )
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
            // Peripheral barriers (BCM2835 ARM Peripherals §1.3): the shell was
            // talking to the UART, and goes back to it after these reads.
            cp15::dmb();
            for (i, chunk) in buf.chunks_exact_mut(4).enumerate() {
                let a = addr + 4 * i as u32;
                // SAFETY: an aligned word read of a peripheral register. A read of
                // an unmapped address takes a data abort, which is reported and
                // recovered from (it never returns here).
                let v = unsafe { core::ptr::read_volatile(a as usize as *const u32) };
                chunk.copy_from_slice(&v.to_le_bytes());
            }
            cp15::dmb();
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
        if !devices::reset_board(10) {
            return writeln!(out, "error: reboot: the watchdog is not available");
        }
        let start = clock::now_us();
        while clock::now_us().saturating_sub(start) < 500_000 {
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
                let code = kernel_layout().text_start as usize as *mut u32;
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
        self.memory.rings()
    }

    fn create_mirror_units(&mut self, mib: u64) -> Result<SectionMirror, PlatformError> {
        let mib = u32::try_from(mib).unwrap_or(u32::MAX);
        match self.memory.create_mirror(mib) {
            None => Err(PlatformError::from("no free RAM above the kernel")),
            Some(r) => r.map_err(|e| PlatformError::text(format_args!("{e}"))),
        }
    }

    fn destroy_mirror(&mut self, mirror: SectionMirror) {
        self.memory.destroy_mirror(mirror)
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
        self.memory.write_map(out)
    }

    fn load_buffer(&mut self, len: usize) -> Result<&mut [u8], PlatformError> {
        self.memory.load_buffer(len).map_err(PlatformError::from)
    }

    fn release_load_buffer(&mut self) {
        self.memory.release_load_buffer()
    }

    fn start_image(&mut self, len: usize) -> PlatformError {
        PlatformError::from(chainload::start(self.memory, len, self.board))
    }
}
