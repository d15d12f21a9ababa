//! PL011 registers and the init sequence (ARM PrimeCell UART PL011 TRM, 3.3;
//! BCM2835 ARM Peripherals, chapter 13). The pins (GPIO14/15, ALT0) are the GPIO
//! block's business: [`crate::board::gpio::Gpio::route_uart0`], called by the kernel
//! before [`Pl011::init`].

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use heapless::spsc::Producer;

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

/// A baud rate the divisors cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaudError;

impl core::fmt::Display for BaudError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("baud rate out of range for the UART clock")
    }
}

/// IBRD/FBRD for `baud` from a `clock_hz` reference clock (PL011 TRM §3.3.6,
/// *Fractional Baud Rate Register*): BAUDDIV = clock / (16 * baud), IBRD its integer
/// part, FBRD = integer(fraction * 64 + 0.5), i.e. rounded to the nearest 1/64.
///
/// The rounding is done on the whole 64ths value, `round(4 * clock / baud)`, and then
/// split: where the fraction rounds up to 64/64 this carries into IBRD (FBRD 0)
/// instead of producing an FBRD of 64, which the 6-bit register cannot hold.
/// Errors: a baud of 0, or a divisor outside IBRD 1..=65535.
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

/// The baud rate the divisors actually give: clock / (16 * (IBRD + FBRD / 64)),
/// rounded to the nearest whole baud (0 for a zero divisor).
pub fn actual_baud(clock_hz: u32, ibrd: u32, fbrd: u32) -> u32 {
    let div64 = u64::from(ibrd) * 64 + u64::from(fbrd);
    if div64 == 0 {
        return 0;
    }
    ((4 * u64::from(clock_hz) + div64 / 2) / div64) as u32
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

    /// Brings the UART up at `baud` 8N1 with FIFOs from a `clock_hz` reference
    /// clock (the firmware's UART clock, see [`crate::board::mailbox`]), in the PL011
    /// TRM's order: disable, wait for the transmitter to go idle, flush the FIFOs
    /// (FEN=0), clear interrupts, program the divisors, then LCRH (which latches
    /// them), the FIFO levels and interrupt mask, and last enable. With
    /// `rx_interrupts` the receive and receive-timeout interrupts are unmasked (the
    /// timeout interrupt fires for a partly filled FIFO). Returns the divisors; on a
    /// baud the clock cannot give, nothing is written.
    pub fn init(
        &mut self,
        clock_hz: u32,
        baud: u32,
        rx_interrupts: bool,
    ) -> Result<(u32, u32), BaudError> {
        let (ibrd, fbrd) = divisors(clock_hz, baud)?;
        self.wr(CR, 0);
        let mut spins = 0;
        while self.rd(FR) & FR_BUSY != 0 && spins < 100_000 {
            spins += 1;
        }
        self.wr(LCRH, 0);
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
        Ok((ibrd, fbrd))
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
    use crate::board::mmio::RecordingBus;
    use crate::board::UART0_BASE;

    #[test]
    fn divisors_for_the_firmware_clocks() {
        // 48 MHz (current firmware, init_uart_clock=48000000): 48e6 / (16 * 115200)
        // = 26.0417 -> IBRD 26, FBRD round(0.0417 * 64) = 3; 115177 baud (-0.02%).
        assert_eq!(divisors(48_000_000, 115_200), Ok((26, 3)));
        assert_eq!(actual_baud(48_000_000, 26, 3), 115_177);
        // 3 MHz (old firmware default, and what QEMU's mailbox says): 1.6276 ->
        // IBRD 1, FBRD round(0.6276 * 64) = round(40.17) = 40; 115385 baud (+0.16%).
        assert_eq!(divisors(3_000_000, 115_200), Ok((1, 40)));
        assert_eq!(actual_baud(3_000_000, 1, 40), 115_385);
        // An odd clock, 19.2 MHz (the crystal): 10.4167 -> 10, round(26.67) = 27.
        assert_eq!(divisors(19_200_000, 115_200), Ok((10, 27)));
        // Round to nearest, not down: 250 MHz / (16 * 115200) = 135.634; * 64 =
        // 8680.56 -> 8681 = IBRD 135, FBRD 41 (truncating would give 40).
        assert_eq!(divisors(250_000_000, 115_200), Ok((135, 41)));
        // A fraction that rounds up to 64/64 carries into IBRD: 16 * 115200 * 2.996
        // = 5_522_227 Hz: 2.99600 * 64 = 191.74 -> 192 = IBRD 3, FBRD 0.
        assert_eq!(divisors(5_522_227, 115_200), Ok((3, 0)));
    }

    #[test]
    fn divisors_out_of_range() {
        assert_eq!(divisors(48_000_000, 0), Err(BaudError));
        assert_eq!(divisors(48_000_000, 4_000_000), Err(BaudError));
        assert_eq!(divisors(48_000_000, 1), Err(BaudError));
        assert_eq!(actual_baud(48_000_000, 0, 0), 0);
    }

    #[test]
    fn init_sequence_matches_the_trm() {
        let bus = RecordingBus::default();
        let mut uart = Pl011::new(bus.clone(), UART0_BASE);
        assert_eq!(uart.init(48_000_000, 115_200, true), Ok((26, 3)));
        let u = |r| UART0_BASE + r;
        let expected = [
            (u(CR), 0),
            (u(LCRH), 0),
            (u(ICR), 0x7ff),
            (u(IBRD), 26),
            (u(FBRD), 3),
            (u(LCRH), 0x70),
            (u(IFLS), 0),
            (u(IMSC), INT_RX | INT_RT | INT_OE),
            (u(CR), 0x301),
        ];
        assert_eq!(bus.writes(), expected);
        // The divisors follow the clock the firmware reports.
        let bus = RecordingBus::default();
        let mut uart = Pl011::new(bus.clone(), UART0_BASE);
        assert_eq!(uart.init(3_000_000, 115_200, false), Ok((1, 40)));
        assert_eq!(bus.last_write(u(IBRD)), Some(1));
        assert_eq!(bus.last_write(u(FBRD)), Some(40));
        assert_eq!(bus.last_write(u(IMSC)), Some(0));
    }

    #[test]
    fn init_with_an_impossible_baud_writes_nothing() {
        let bus = RecordingBus::default();
        let mut uart = Pl011::new(bus.clone(), UART0_BASE);
        assert_eq!(uart.init(48_000_000, 0, true), Err(BaudError));
        assert!(bus.log().is_empty());
    }
}
