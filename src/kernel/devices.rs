//! The board's drivers, each made once by [`Devices::take`] at the boot hand-off
//! (`kernel_init`): the only place the kernel creates an [`Mmio`]. `kernel_init`
//! uses some of them to boot and hands each of the others to its one owner (the
//! console, the receive path, the clock, `kprint`, the watchdog below).

use core::sync::atomic::{AtomicBool, Ordering};

use vmcirc::board::gpio::Gpio;
use vmcirc::board::irq::Interrupts;
use vmcirc::board::mailbox::Mailbox;
use vmcirc::board::mmio::Mmio;
use vmcirc::board::timer::SystemTimer;
use vmcirc::board::watchdog::Watchdog;
use vmcirc::board::UART0_BASE;
use vmcirc::uart::Pl011;

use super::global::Global;

/// Every driver the kernel uses, each exactly once.
pub struct Devices {
    /// The interrupt controller (boot masks everything; then the IRQ path owns it).
    pub irq: Interrupts<Mmio>,
    /// GPIO (boot: the UART pins).
    pub gpio: Gpio<Mmio>,
    /// The system timer (boot: GPIO delays; then the kernel clock).
    pub timer: SystemTimer<Mmio>,
    /// The mailbox (boot: firmware facts).
    pub mailbox: Mailbox<Mmio>,
    /// The watchdog (`reboot`, and the panic handler's reboot).
    pub watchdog: Watchdog<Mmio>,
    /// UART0 for the console: set up at boot, then transmit (FR, DR).
    pub uart: Pl011<Mmio>,
    /// UART0's receive side for the IRQ path: ICR, FR, DR and IMSC, used only by
    /// the IRQ handler and by the shell with IRQs masked.
    pub uart_rx: Pl011<Mmio>,
    /// UART0 transmit for `kprint` (boot lines, fault reports, panics): FR, DR.
    pub uart_kprint: Pl011<Mmio>,
}

static TAKEN: AtomicBool = AtomicBool::new(false);

impl Devices {
    /// The drivers; `None` after the first call.
    ///
    /// # Safety
    ///
    /// On the BCM2835, with the peripherals identity mapped as device memory or the
    /// MMU off (`Mmio::new`'s contract), and nothing else creating an [`Mmio`].
    pub unsafe fn take() -> Option<Devices> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the caller's contract, once (TAKEN). The blocks are disjoint except
        // UART0, which has three users on disjoint duties: the console and kprint
        // only transmit (each byte waits for FIFO room, so their bytes may
        // interleave but no register state is shared), and the receive side owns
        // the receive FIFO and interrupt mask, touched only by the IRQ handler or
        // with IRQs masked. The console's set-up registers (CR, LCRH, IBRD, FBRD,
        // IFLS) are written once at boot, before the others are used.
        let bus = || unsafe { Mmio::new() };
        Some(Devices {
            irq: Interrupts::new(bus()),
            gpio: Gpio::new(bus()),
            timer: SystemTimer::new(bus()),
            mailbox: Mailbox::new(bus()),
            watchdog: Watchdog::new(bus()),
            uart: Pl011::new(bus(), UART0_BASE),
            uart_rx: Pl011::new(bus(), UART0_BASE),
            uart_kprint: Pl011::new(bus(), UART0_BASE),
        })
    }
}

/// The watchdog, shared by the shell's `reboot` and the panic handler.
pub static WATCHDOG: Global<Watchdog<Mmio>> = Global::new();

/// Asks the watchdog for a full reset in `ticks` of 16 us; false when the watchdog
/// is not installed or held.
pub fn reset_board(ticks: u32) -> bool {
    WATCHDOG.with(|w| w.reset_after(ticks)).is_some()
}
