//! The panic handler: print the message and location, then wait for the word
//! `reboot` on the UART (polled, interrupts off) and reset through the watchdog.

use core::panic::PanicInfo;

use vmcirc::arch::cpu;
use vmcirc::mmu::cp15;

use super::console::{self, with_kprint_uart};
use super::devices::{self, WATCHDOG};
use crate::kprint;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    cpu::disable_irq();
    // SAFETY: the panic handler never returns, so whatever held the kprint UART or
    // the watchdog further up this stack never runs again.
    unsafe {
        console::reclaim_kprint();
        WATCHDOG.reclaim();
    }
    kprint!("\npanic: {}", info.message());
    if let Some(loc) = info.location() {
        kprint!(" at {}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    kprint!("\nthe kernel stopped; type 'reboot' and Enter to restart\n");
    let mut word = [0u8; 8];
    let mut n = 0;
    loop {
        let Some(Some(b)) = with_kprint_uart(|u| u.try_read_fifo()) else {
            continue;
        };
        match b {
            b'\r' | b'\n' => {
                if &word[..n] == b"reboot" {
                    kprint!("\nrebooting\n");
                    devices::reset_board(10);
                    loop {
                        cp15::wait_for_interrupt();
                    }
                }
                n = 0;
                kprint!("\n(panicked) type 'reboot'\n");
            }
            _ => {
                if n < word.len() {
                    word[n] = b;
                    n += 1;
                }
                with_kprint_uart(|u| u.write_byte(b));
            }
        }
    }
}
