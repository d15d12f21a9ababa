//! The kernel console: the interrupt-fed [`SerialPort`] plus the system timer, as
//! the shell's [`Console`]; and [`kprint`] for output outside the shell (boot
//! banner, fault reports, panics), which writes straight to the UART.

use core::fmt;

use vmcirc::board::mmio::Mmio;
use vmcirc::board::{timer, UART0_BASE};
use vmcirc::shell::Console;
use vmcirc::uart::{Pl011, SerialError, SerialPort};

use super::entry::BoardRx;

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

/// Microseconds from the BCM2835 system timer.
pub fn now_us() -> u64 {
    // SAFETY: the system timer registers are read-only counters in the device
    // mapped peripheral window.
    let mut bus = unsafe { Mmio::new() };
    timer::now_us(&mut bus)
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
    fn now_us(&mut self) -> u64 {
        now_us()
    }
}

/// Direct UART output, usable from any context (it only polls the TX FIFO).
pub struct RawUart(Pl011<Mmio>);

impl RawUart {
    /// A writer on UART0.
    pub fn new() -> Self {
        // SAFETY: only the transmit side is used (FR and DR), which is safe to
        // share: every writer waits for FIFO space before each byte.
        RawUart(Pl011::new(unsafe { Mmio::new() }, UART0_BASE))
    }

    /// The UART, for polled receive in the panic handler.
    pub fn uart(&mut self) -> &mut Pl011<Mmio> {
        &mut self.0
    }
}

impl fmt::Write for RawUart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.write_byte(b'\r');
            }
            self.0.write_byte(b);
        }
        Ok(())
    }
}

/// Prints to the UART directly (with `\n` -> `\r\n`).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::kernel::console::RawUart::new(), $($arg)*);
    }};
}
