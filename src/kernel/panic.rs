//! The panic handler: print the message and location, then wait for the word
//! `reboot` on the UART (polled, interrupts off) and reset through the watchdog.

use core::panic::PanicInfo;

use vmcirc::arch::cpu;
use vmcirc::board::mmio::Mmio;
use vmcirc::board::watchdog;

use super::console::RawUart;
use crate::kprint;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    cpu::disable_irq();
    kprint!("\npanic: {}", info.message());
    if let Some(loc) = info.location() {
        kprint!(" at {}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    kprint!("\nthe kernel stopped; type 'reboot' and Enter to restart\n");
    let mut uart = RawUart::new();
    let mut word = [0u8; 8];
    let mut n = 0;
    loop {
        let Some(b) = uart.uart().try_read_fifo() else {
            continue;
        };
        match b {
            b'\r' | b'\n' => {
                if &word[..n] == b"reboot" {
                    kprint!("\nrebooting\n");
                    // SAFETY: the watchdog registers; nothing else runs any more.
                    let mut bus = unsafe { Mmio::new() };
                    watchdog::reset_after(&mut bus, 10);
                    loop {
                        cpu::wait_for_interrupt();
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
                uart.uart().write_byte(b);
            }
        }
    }
}
