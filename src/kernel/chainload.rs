//! Starting a kernel image received by `load` (the chainloader's last step): the
//! machine is put back the way the firmware hands it to a kernel, and boot.S's
//! `chainload` copies the image to 0x8000 and jumps to it.
//!
//! Here: wait until the UART has sent everything, mask IRQs, mask every source at the
//! interrupt controller and the UART's interrupts (the new kernel enables what it
//! uses). Then `chainload` (one assembly routine, since nothing after it may touch
//! the stack, which the copy overwrites): clean and invalidate the D-cache, turn off
//! the MMU, the caches and branch prediction, set VBAR back to its reset value 0,
//! invalidate the TLB and the I-cache (erratum 411920 sequence), copy a small copier
//! out of the way (right after the image in its buffer), and run it: it copies the
//! image to 0x8000 and jumps there with r0 = 0, r1 = the machine type, r2 = the ATAG
//! address, as the firmware does.

use vmcirc::arch::cpu;

use super::config::BoardInfo;
use super::console;
use super::memory::{Memory, COPIER_ROOM, IMAGE_START};
use super::rx;

extern "C" {
    /// boot.S: copies `len` bytes from `src` to 0x8000 and starts them; see the module
    /// docs.
    fn chainload(src: u32, len: u32, machine: u32, atags: u32) -> !;
}

/// Starts the first `len` bytes of `memory`'s load buffer as the new kernel; returns
/// only when there is no such image.
pub fn start(memory: &Memory, len: usize, board: &BoardInfo) -> &'static str {
    let Some((base, bytes)) = memory.load_region() else {
        return "load: no image loaded";
    };
    if len == 0 || len + COPIER_ROOM > bytes || IMAGE_START as usize + len > base as usize {
        return "load: the image does not fit its buffer";
    }
    console::with_kprint_uart(|u| u.flush());
    cpu::disable_irq();
    rx::quiesce();
    // SAFETY: IRQs are masked and every interrupt source is off, so nothing runs
    // but this; [base, base + len) is the verified image in RAM no one else uses,
    // with COPIER_ROOM after it, and 0x8000 + len lies below base, so neither the
    // copy nor the copier overwrites the source; everything the kernel had is given
    // up (the call does not return), so overwriting its code, data and stacks is
    // what is meant.
    unsafe { chainload(base, len as u32, board.machine, board.atags) }
}
