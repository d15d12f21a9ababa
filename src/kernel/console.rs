//! The kernel console: the interrupt-fed [`SerialPort`] with the kernel clock, as the
//! shell's [`Console`]; and [`kprint!`](crate::kprint) for output outside the shell
//! (boot lines, fault reports, panics), which writes straight to the UART's transmit
//! FIFO through its own driver instance.

use core::fmt;

use vmcirc::board::mmio::Mmio;
use vmcirc::shell::{Clock, Console};
use vmcirc::uart::{Pl011, SerialError, SerialPort};

use super::clock;
use super::global::Global;
use super::rx::BoardRx;

/// The shell's console.
pub struct KernelConsole {
    port: SerialPort<'static, Mmio, BoardRx>,
}

impl KernelConsole {
    /// Wraps the serial port.
    pub fn new(port: SerialPort<'static, Mmio, BoardRx>) -> Self {
        KernelConsole { port }
    }
}

impl embedded_io::ErrorType for KernelConsole {
    type Error = SerialError;
}

impl embedded_io::Read for KernelConsole {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
        self.port.read(buf)
    }
}

impl embedded_io::Write for KernelConsole {
    fn write(&mut self, buf: &[u8]) -> Result<usize, SerialError> {
        self.port.write(buf)
    }
    fn flush(&mut self) -> Result<(), SerialError> {
        embedded_io::Write::flush(&mut self.port)
    }
}

impl Console for KernelConsole {
    fn try_read_byte(&mut self) -> Option<u8> {
        self.port.try_read_byte()
    }
    fn clock(&self) -> Clock {
        clock::now_us
    }
}

/// The UART transmitter `kprint` writes through.
static KPRINT: Global<Pl011<Mmio>> = Global::new();

/// Makes `uart` (transmit only) the `kprint` output, once at boot.
pub fn install_kprint(uart: Pl011<Mmio>) {
    // Refused only on a second call, which the boot code never makes.
    let _ = KPRINT.install(uart);
}

/// Runs `f` on the `kprint` UART (the panic handler's polled receive too); `None`
/// before [`install_kprint`] or while it is held further up this core's stack.
pub fn with_kprint_uart<R>(f: impl FnOnce(&mut Pl011<Mmio>) -> R) -> Option<R> {
    KPRINT.with(f)
}

/// See [`Global::reclaim`](super::global::Global::reclaim).
///
/// # Safety
///
/// As `Global::reclaim`.
pub unsafe fn reclaim_kprint() {
    // SAFETY: forwarded contract.
    unsafe { KPRINT.reclaim() }
}

/// `kprint`'s writer: `\n` becomes `\r\n`. Output is dropped when the UART is not
/// installed yet (nothing can be printed before the UART is set up anyway).
pub struct Kprint;

impl fmt::Write for Kprint {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        KPRINT.with(|u| {
            for b in s.bytes() {
                if b == b'\n' {
                    u.write_byte(b'\r');
                }
                u.write_byte(b);
            }
        });
        Ok(())
    }
}

/// Prints to the UART directly (with `\n` -> `\r\n`).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::kernel::console::Kprint, $($arg)*);
    }};
}
