//! [`SerialPort`]: the PL011 transmitter plus the consumer end of the receive
//! queue, behind the `embedded-hal-nb` serial traits and the `embedded-io`
//! `Read`/`Write` traits (what `noline` builds on).

use heapless::spsc::Consumer;

use super::{Pl011, RX_QUEUE_BYTES};
use crate::board::mmio::Bus;

/// Serial errors. Transmit and receive cannot fail at this level (errors on the
/// line are counted in [`super::RxStats`]), so this is uninhabited in practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialError {}

impl embedded_io::Error for SerialError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match *self {}
    }
}

impl embedded_hal_nb::serial::Error for SerialError {
    fn kind(&self) -> embedded_hal_nb::serial::ErrorKind {
        match *self {}
    }
}

/// The console: polled transmit, queued receive.
pub struct SerialPort<'q, B: Bus> {
    uart: Pl011<B>,
    rx: Consumer<'q, u8, RX_QUEUE_BYTES>,
    idle: fn(&dyn Fn() -> bool),
}

impl<'q, B: Bus> SerialPort<'q, B> {
    /// Wraps an initialised UART and the consumer end of its receive queue.
    /// `idle` is called while a blocking read waits; it must return once
    /// `ready()` is true (the kernel masks interrupts, re-checks and sleeps in
    /// WFI, which wakes on a pending interrupt even while masked).
    pub fn new(
        uart: Pl011<B>,
        rx: Consumer<'q, u8, RX_QUEUE_BYTES>,
        idle: fn(&dyn Fn() -> bool),
    ) -> Self {
        SerialPort { uart, rx, idle }
    }

    /// One received byte, if any is queued.
    #[inline]
    pub fn try_read_byte(&mut self) -> Option<u8> {
        self.rx.dequeue()
    }

    /// Bytes waiting in the receive queue.
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    /// The UART, for direct access.
    pub fn uart(&mut self) -> &mut Pl011<B> {
        &mut self.uart
    }
}

impl<B: Bus> embedded_io::ErrorType for SerialPort<'_, B> {
    type Error = SerialError;
}

impl<B: Bus> embedded_io::Read for SerialPort<'_, B> {
    /// Blocks until at least one byte is available, then returns what is queued.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.rx.ready() {
            let rx = &self.rx;
            (self.idle)(&|| rx.ready());
        }
        let mut n = 0;
        while n < buf.len() {
            match self.rx.dequeue() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}

impl<B: Bus> embedded_io::ReadReady for SerialPort<'_, B> {
    fn read_ready(&mut self) -> Result<bool, SerialError> {
        Ok(self.rx.ready())
    }
}

impl<B: Bus> embedded_io::Write for SerialPort<'_, B> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, SerialError> {
        for &b in buf {
            self.uart.write_byte(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), SerialError> {
        self.uart.flush();
        Ok(())
    }
}

impl<B: Bus> embedded_hal_nb::serial::ErrorType for SerialPort<'_, B> {
    type Error = SerialError;
}

impl<B: Bus> embedded_hal_nb::serial::Read<u8> for SerialPort<'_, B> {
    fn read(&mut self) -> nb::Result<u8, SerialError> {
        self.rx.dequeue().ok_or(nb::Error::WouldBlock)
    }
}

impl<B: Bus> embedded_hal_nb::serial::Write<u8> for SerialPort<'_, B> {
    fn write(&mut self, word: u8) -> nb::Result<(), SerialError> {
        if self.uart.can_write() {
            embedded_io::Write::write(self, &[word])
                .map(|_| ())
                .map_err(nb::Error::Other)
        } else {
            Err(nb::Error::WouldBlock)
        }
    }

    fn flush(&mut self) -> nb::Result<(), SerialError> {
        self.uart.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The receive path under load: a simulated interrupt fills the queue faster
    //! than the consumer drains it. Nothing may be reordered or duplicated, and
    //! every byte is either delivered or counted as an overrun.
    use super::super::pl011::{DR, FR, FR_RXFE};
    use super::super::{Pl011, RxQueue, RxStats};
    use super::*;
    use crate::board::UART0_BASE;
    use core::sync::atomic::Ordering;
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// A fake UART whose receive FIFO holds scripted bytes (DR words incl. flags).
    #[derive(Default)]
    struct FifoBus {
        fifo: VecDeque<u32>,
        tx: Vec<u8>,
    }

    impl Bus for FifoBus {
        fn read(&mut self, addr: u32) -> u32 {
            match addr - UART0_BASE {
                FR if self.fifo.is_empty() => FR_RXFE,
                FR => 0,
                DR => self.fifo.pop_front().unwrap_or(0),
                _ => 0,
            }
        }
        fn write(&mut self, addr: u32, value: u32) {
            if addr - UART0_BASE == DR {
                self.tx.push(value as u8);
            }
        }
        fn delay_cycles(&mut self, _: u32) {}
    }

    fn no_idle(_: &dyn Fn() -> bool) {
        panic!("test read would block");
    }

    #[test]
    fn interrupt_faster_than_consumer_loses_nothing_silently() {
        let queue: &'static mut RxQueue =
            std::boxed::Box::leak(std::boxed::Box::new(RxQueue::new()));
        let (mut producer, consumer) = queue.split();
        let stats = RxStats::new();
        let mut uart = Pl011::new(FifoBus::default(), UART0_BASE);
        let mut port = SerialPort::new(
            Pl011::new(FifoBus::default(), UART0_BASE),
            consumer,
            no_idle,
        );
        let total: u32 = 200_000;
        let mut sent = 0u32;
        let mut got: Vec<u8> = Vec::new();
        let mut round = 0u32;
        // Each "interrupt" delivers a full 16-byte FIFO; the consumer reads only
        // 5 bytes per interrupt until the queue overflows, then catches up.
        while sent < total {
            for _ in 0..16 {
                let b = (sent % 251) as u8;
                // Every 1000th byte carries the hardware overrun flag.
                let flags = if sent % 1000 == 999 { 1 << 11 } else { 0 };
                uart.bus_mut_for_test().fifo.push_back(u32::from(b) | flags);
                sent += 1;
            }
            uart.drain_rx_fifo(&stats, |b| producer.enqueue(b).is_ok());
            let take = if round % 16 == 15 { 64 } else { 5 };
            let mut buf = [0u8; 64];
            if port.pending() > 0 {
                let n = embedded_io::Read::read(&mut port, &mut buf[..take]).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            round += 1;
        }
        while let Some(b) = port.try_read_byte() {
            got.push(b);
        }
        let received = stats.received.load(Ordering::Relaxed);
        let dropped = stats.queue_overruns.load(Ordering::Relaxed);
        assert!(dropped > 0, "the test must actually overflow the queue");
        assert_eq!(received + dropped, total);
        assert_eq!(got.len() as u32, received);
        assert_eq!(stats.fifo_overruns.load(Ordering::Relaxed), total / 1000);
        // What was delivered is an in-order subsequence of what was sent: bytes
        // only go missing in whole runs while the queue is full, never reorder.
        let mut expect = 0u32;
        for &b in &got {
            while (expect % 251) as u8 != b {
                expect += 1;
                assert!(expect < total, "delivered byte out of order");
            }
            expect += 1;
        }
    }

    #[test]
    fn threaded_producer_and_consumer_agree() {
        // The real concurrency shape: interrupt context on one side, shell on the
        // other, no locks. The producer never blocks; a slow consumer sees every
        // byte that was not counted as an overrun, in order.
        let queue: &'static mut RxQueue =
            std::boxed::Box::leak(std::boxed::Box::new(RxQueue::new()));
        let (mut producer, mut consumer) = queue.split();
        let stats: &'static RxStats = std::boxed::Box::leak(std::boxed::Box::new(RxStats::new()));
        let total = 2_000_000u32;
        let h = std::thread::spawn(move || {
            for i in 0..total {
                if producer.enqueue(i as u8).is_ok() {
                    stats.received.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.queue_overruns.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let mut last: Option<u8> = None;
        let mut count = 0u32;
        let mut spins = 0u64;
        loop {
            match consumer.dequeue() {
                Some(b) => {
                    count += 1;
                    last = Some(b);
                    // A deliberately slow consumer.
                    if count.is_multiple_of(64) {
                        std::thread::yield_now();
                    }
                }
                None if h.is_finished() && !consumer.ready() => break,
                None => spins += 1,
            }
        }
        h.join().unwrap();
        let _ = (last, spins);
        assert_eq!(count, stats.received.load(Ordering::Relaxed));
        assert_eq!(count + stats.queue_overruns.load(Ordering::Relaxed), total);
    }

    #[test]
    fn transmit_goes_to_the_data_register() {
        let queue: &'static mut RxQueue =
            std::boxed::Box::leak(std::boxed::Box::new(RxQueue::new()));
        let (_p, consumer) = queue.split();
        let mut port = SerialPort::new(
            Pl011::new(FifoBus::default(), UART0_BASE),
            consumer,
            no_idle,
        );
        embedded_io::Write::write_all(&mut port, b"hi\r\n").unwrap();
        assert_eq!(port.uart().bus_mut_for_test().tx, b"hi\r\n");
        assert!(embedded_hal_nb::serial::Read::read(&mut port).is_err());
    }
}
