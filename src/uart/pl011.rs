//! PL011 registers and the init sequence (ARM PrimeCell UART PL011 TRM, 3.3;
//! BCM2835 ARM Peripherals, chapter 13).

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use heapless::spsc::Producer;

use crate::board::gpio::{self, Function, Pull};
use crate::board::mmio::Bus;

/// Data register.
pub const DR: u32 = 0x00;
/// Flag register.
pub const FR: u32 = 0x18;
/// Integer baud divisor.
pub const IBRD: u32 = 0x24;
/// Fractional baud divisor.
pub const FBRD: u32 = 0x28;
/// Line control.
pub const LCRH: u32 = 0x2c;
/// Control.
pub const CR: u32 = 0x30;
/// Interrupt FIFO level select.
pub const IFLS: u32 = 0x34;
/// Interrupt mask set/clear.
pub const IMSC: u32 = 0x38;
/// Interrupt clear.
pub const ICR: u32 = 0x44;

/// FR: transmit FIFO full.
pub const FR_TXFF: u32 = 1 << 5;
/// FR: receive FIFO empty.
pub const FR_RXFE: u32 = 1 << 4;
/// FR: UART busy transmitting.
pub const FR_BUSY: u32 = 1 << 3;
/// LCRH: 8 data bits.
pub const LCRH_WLEN8: u32 = 0b11 << 5;
/// LCRH: FIFOs enabled.
pub const LCRH_FEN: u32 = 1 << 4;
/// CR: UART enable.
pub const CR_UARTEN: u32 = 1 << 0;
/// CR: transmit enable.
pub const CR_TXE: u32 = 1 << 8;
/// CR: receive enable.
pub const CR_RXE: u32 = 1 << 9;
/// Interrupt bit: receive.
pub const INT_RX: u32 = 1 << 4;
/// Interrupt bit: receive timeout.
pub const INT_RT: u32 = 1 << 6;
/// Interrupt bit: overrun error.
pub const INT_OE: u32 = 1 << 10;
/// All interrupt bits.
pub const INT_ALL: u32 = 0x7ff;
/// DR: overrun error flag on a received byte.
pub const DR_OE: u32 = 1 << 11;
/// DR: break, parity and framing error flags.
pub const DR_BE_PE_FE: u32 = 0b111 << 8;

/// GPIO pins carrying UART0 TXD/RXD (ALT0).
pub const TXD_PIN: u32 = 14;
/// See [`TXD_PIN`].
pub const RXD_PIN: u32 = 15;

/// A baud rate the divisors cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaudError;

impl core::fmt::Display for BaudError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("baud rate out of range for the UART clock")
    }
}

/// IBRD/FBRD for `baud` from a `clock_hz` reference: BAUDDIV = clock / (16 * baud),
/// IBRD its integer part, FBRD round(fraction * 64) (PL011 TRM 3.3.6).
pub fn divisors(clock_hz: u32, baud: u32) -> Result<(u32, u32), BaudError> {
    if baud == 0 {
        return Err(BaudError);
    }
    // 64 * clock / (16 * baud) = 4 * clock / baud, rounded to nearest.
    let div64 = (4 * u64::from(clock_hz) + u64::from(baud) / 2) / u64::from(baud);
    let (ibrd, fbrd) = ((div64 >> 6) as u32, (div64 & 63) as u32);
    if ibrd == 0 || ibrd > 0xffff {
        return Err(BaudError);
    }
    Ok((ibrd, fbrd))
}

/// Receive counters and the flow-control flag, shared by the interrupt handler
/// and the consumer (`info` prints the counters).
#[derive(Debug, Default)]
pub struct RxStats {
    /// Bytes moved from the FIFO into the queue.
    pub received: AtomicU32,
    /// Times the queue was full and receive interrupts were paused.
    pub pauses: AtomicU32,
    /// Hardware overruns: a byte arrived while the 16-byte FIFO was full (the OE
    /// flag); each marks at least one lost byte.
    pub fifo_overruns: AtomicU32,
    /// Bytes received with a break, parity or framing error (kept, but counted).
    pub line_errors: AtomicU32,
    /// Receive interrupts are masked because the queue was full; the consumer
    /// unmasks them once it has made room.
    pub paused: AtomicBool,
}

impl RxStats {
    /// All counters zero.
    pub const fn new() -> Self {
        RxStats {
            received: AtomicU32::new(0),
            pauses: AtomicU32::new(0),
            fifo_overruns: AtomicU32::new(0),
            line_errors: AtomicU32::new(0),
            paused: AtomicBool::new(false),
        }
    }
}

/// One PL011 at `base`, reached through `bus`.
pub struct Pl011<B: Bus> {
    bus: B,
    base: u32,
}

impl<B: Bus> Pl011<B> {
    /// A driver for the UART at `base`; touches no register until `init`.
    pub const fn new(bus: B, base: u32) -> Self {
        Pl011 { bus, base }
    }

    /// The bus, for tests.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    fn rd(&mut self, reg: u32) -> u32 {
        self.bus.read(self.base + reg)
    }

    fn wr(&mut self, reg: u32, v: u32) {
        self.bus.write(self.base + reg, v)
    }

    /// Brings the UART up at `baud` 8N1 with FIFOs, in the PL011 TRM's order:
    /// disable, wait for the transmitter to go idle, flush the FIFOs (FEN=0), route
    /// GPIO14/15 to ALT0 with pulls off, clear interrupts, program the divisors,
    /// then LCRH (which latches them), the FIFO levels and interrupt mask, and last
    /// enable. With `rx_interrupts` the receive and receive-timeout interrupts are
    /// unmasked (the timeout interrupt fires for a partly filled FIFO).
    pub fn init(&mut self, clock_hz: u32, baud: u32, rx_interrupts: bool) -> Result<(), BaudError> {
        let (ibrd, fbrd) = divisors(clock_hz, baud)?;
        self.wr(CR, 0);
        let mut spins = 0;
        while self.rd(FR) & FR_BUSY != 0 && spins < 100_000 {
            spins += 1;
        }
        self.wr(LCRH, 0);
        gpio::set_function(&mut self.bus, TXD_PIN, Function::Alt0);
        gpio::set_function(&mut self.bus, RXD_PIN, Function::Alt0);
        gpio::set_pull(&mut self.bus, (1 << TXD_PIN) | (1 << RXD_PIN), Pull::Off);
        self.wr(ICR, INT_ALL);
        self.wr(IBRD, ibrd);
        self.wr(FBRD, fbrd);
        self.wr(LCRH, LCRH_WLEN8 | LCRH_FEN);
        // RX interrupt at 1/8 full (2 bytes); the timeout interrupt covers the rest.
        self.wr(IFLS, 0);
        self.wr(
            IMSC,
            if rx_interrupts {
                INT_RX | INT_RT | INT_OE
            } else {
                0
            },
        );
        self.wr(CR, CR_UARTEN | CR_TXE | CR_RXE);
        Ok(())
    }

    /// Whether the transmit FIFO can take a byte.
    pub fn can_write(&mut self) -> bool {
        self.rd(FR) & FR_TXFF == 0
    }

    /// Puts one byte in the transmit FIFO, waiting while it is full.
    pub fn write_byte(&mut self, b: u8) {
        while !self.can_write() {
            core::hint::spin_loop();
        }
        self.wr(DR, u32::from(b));
    }

    /// Waits until every queued byte has left the shift register.
    pub fn flush(&mut self) {
        while self.rd(FR) & FR_BUSY != 0 {
            core::hint::spin_loop();
        }
    }

    /// Takes one byte straight from the receive FIFO, if any (polled mode, used
    /// before interrupts are on and by the panic handler).
    pub fn try_read_fifo(&mut self) -> Option<u8> {
        if self.rd(FR) & FR_RXFE != 0 {
            None
        } else {
            Some(self.rd(DR) as u8)
        }
    }

    /// The interrupt handler's body: moves bytes from the receive FIFO into the
    /// queue through `producer` while it has room, counting them in `stats`.
    /// When the queue is full the rest stays in the FIFO and the receive
    /// interrupts are masked (`stats.paused`): the consumer unmasks them with
    /// [`Pl011::resume_rx`] once it has read some. Nothing is dropped in
    /// software; a sender that keeps going overruns the 16-byte FIFO, which the
    /// hardware flags (OE) and `fifo_overruns` counts. The interrupts are cleared
    /// before the FIFO is read, so a byte arriving after the last read raises a
    /// new one.
    pub fn drain_rx_fifo<const N: usize>(
        &mut self,
        stats: &RxStats,
        producer: &mut Producer<'_, u8, N>,
    ) {
        self.wr(ICR, INT_RX | INT_RT | INT_OE);
        while self.rd(FR) & FR_RXFE == 0 {
            if !producer.ready() {
                self.wr(IMSC, 0);
                stats.paused.store(true, Ordering::Release);
                stats.pauses.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let dr = self.rd(DR);
            if dr & DR_OE != 0 {
                stats.fifo_overruns.fetch_add(1, Ordering::Relaxed);
            }
            if dr & DR_BE_PE_FE != 0 {
                stats.line_errors.fetch_add(1, Ordering::Relaxed);
            }
            // Cannot fail: `ready()` said there is room and only we enqueue.
            let _ = producer.enqueue(dr as u8);
            stats.received.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Masks every UART interrupt (nothing can take the bytes yet).
    pub fn init_rx_masked(&mut self) {
        self.wr(IMSC, 0);
    }

    /// Resumes receive after [`Pl011::drain_rx_fifo`] paused it (called by the
    /// consumer once the queue has room again, with the interrupt handler kept
    /// out, e.g. IRQs masked): clears the flag, unmasks the receive interrupts
    /// and moves what waits in the FIFO into the queue, as the handler would.
    /// The drain is what makes this safe: the PL011 raises its receive
    /// interrupt when the FIFO *reaches* the trigger level (QEMU: when a byte
    /// lands in an empty FIFO), and the handler cleared it before pausing, so
    /// bytes left waiting would never raise another one.
    pub fn resume_rx<const N: usize>(
        &mut self,
        stats: &RxStats,
        producer: &mut Producer<'_, u8, N>,
    ) {
        if stats.paused.swap(false, Ordering::AcqRel) {
            self.wr(IMSC, INT_RX | INT_RT | INT_OE);
            self.drain_rx_fifo(stats, producer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::gpio::{GPFSEL0, GPPUD, GPPUDCLK0};
    use crate::board::mmio::{Access, RecordingBus};
    use crate::board::{UART0_BASE, UART_CLOCK_HZ};

    #[test]
    fn divisors_for_115200() {
        // 48 MHz: 48e6 / (16 * 115200) = 26.0417 -> IBRD 26, FBRD round(0.0417*64) = 3.
        assert_eq!(divisors(48_000_000, 115_200), Ok((26, 3)));
        // The old 3 MHz firmware default: 1.6276 -> 1, 40.
        assert_eq!(divisors(3_000_000, 115_200), Ok((1, 40)));
        assert_eq!(divisors(48_000_000, 0), Err(BaudError));
        assert_eq!(divisors(48_000_000, 4_000_000), Err(BaudError));
        assert_eq!(divisors(48_000_000, 1), Err(BaudError));
    }

    #[test]
    fn init_sequence_matches_the_trm() {
        let mut uart = Pl011::new(RecordingBus::default(), UART0_BASE);
        uart.init(UART_CLOCK_HZ, 115_200, true).unwrap();
        let w = uart.bus().writes();
        let u = |r| UART0_BASE + r;
        // GPIO14 and 15 are in GPFSEL1 bits 12..14 and 15..17: ALT0 = 0b100.
        let gpfsel1 = GPFSEL0 + 4;
        assert_eq!(
            uart.bus().last_write(gpfsel1),
            Some((0b100 << 12) | (0b100 << 15))
        );
        let expected = [
            (u(CR), 0),
            (u(LCRH), 0),
            (gpfsel1, 0b100 << 12),
            (gpfsel1, (0b100 << 12) | (0b100 << 15)),
            (GPPUD, 0),
            (GPPUDCLK0, (1 << 14) | (1 << 15)),
            (GPPUD, 0),
            (GPPUDCLK0, 0),
            (u(ICR), 0x7ff),
            (u(IBRD), 26),
            (u(FBRD), 3),
            (u(LCRH), 0x70),
            (u(IFLS), 0),
            (u(IMSC), INT_RX | INT_RT | INT_OE),
            (u(CR), 0x301),
        ];
        assert_eq!(w, expected);
        // The pull sequence waits 150 cycles after each of its first two writes.
        let delays = uart
            .bus()
            .log
            .iter()
            .filter(|a| matches!(a, Access::Delay(150)))
            .count();
        assert_eq!(delays, 2);
        let pos = |needle: Access| uart.bus().log.iter().position(|a| *a == needle).unwrap();
        assert!(pos(Access::Write(GPPUD, 0)) < pos(Access::Delay(150)));
        assert!(pos(Access::Delay(150)) < pos(Access::Write(GPPUDCLK0, (1 << 14) | (1 << 15))));
    }

    #[test]
    fn init_preserves_other_gpio_functions() {
        let mut bus = RecordingBus::default();
        // Pins 10..19 all output (0b001) beforehand.
        let all_out = (0..10).fold(0u32, |a, i| a | (1 << (3 * i)));
        bus.preset(GPFSEL0 + 4, all_out);
        let mut uart = Pl011::new(bus, UART0_BASE);
        uart.init(UART_CLOCK_HZ, 115_200, false).unwrap();
        let v = uart.bus().last_write(GPFSEL0 + 4).unwrap();
        assert_eq!((v >> 12) & 0b111, 0b100);
        assert_eq!((v >> 15) & 0b111, 0b100);
        assert_eq!(v & !(0b111111 << 12), all_out & !(0b111111 << 12));
        assert_eq!(uart.bus().last_write(UART0_BASE + IMSC), Some(0));
    }
}
