//! [`SerialPort`]: the PL011 transmitter plus the consumer end of the receive
//! queue, behind the `embedded-hal-nb` serial traits and the `embedded-io`
//! `Read`/`Write` traits (what `noline` builds on).

use heapless::spsc::Consumer;

use core::sync::atomic::Ordering;

use super::{Pl011, RxStats, RX_QUEUE_BYTES};
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

/// What the port needs from its surroundings on the receive side: the kernel
/// implements it with WFI and the interrupt handler's producer; tests with a
/// model of the UART.
pub trait RxControl {
    /// Called while a blocking read waits; returns once `ready()` is true (the
    /// kernel masks interrupts, re-checks and sleeps in WFI, which wakes on a
    /// pending interrupt even while masked).
    fn idle(&mut self, ready: &dyn Fn() -> bool);

    /// Receive was paused because the queue was full, and half of it is free
    /// again: unmask the receive interrupts and move what waits in the FIFO
    /// into the queue now ([`Pl011::resume_rx`], with the interrupt handler
    /// kept out). Unmasking alone is not enough: the PL011 raises its receive
    /// interrupt when the FIFO *reaches* the trigger level (QEMU: when a byte
    /// lands in an empty FIFO), so bytes already waiting raise none.
    fn resume(&mut self);
}

/// The console: polled transmit, queued receive.
pub struct SerialPort<'q, B: Bus, C: RxControl> {
    uart: Pl011<B>,
    rx: Consumer<'q, u8, RX_QUEUE_BYTES>,
    stats: &'q RxStats,
    control: C,
}

impl<'q, B: Bus, C: RxControl> SerialPort<'q, B, C> {
    /// Wraps an initialised UART, the consumer end of its receive queue, the
    /// counters the interrupt handler keeps, and the receive control.
    pub fn new(
        uart: Pl011<B>,
        rx: Consumer<'q, u8, RX_QUEUE_BYTES>,
        stats: &'q RxStats,
        control: C,
    ) -> Self {
        SerialPort {
            uart,
            rx,
            stats,
            control,
        }
    }

    /// After the interrupt handler paused receive (queue full), resume once
    /// half the queue is free again.
    #[inline]
    fn make_room(&mut self) {
        if self.stats.paused.load(Ordering::Acquire) && self.rx.len() <= RX_QUEUE_BYTES / 2 {
            self.control.resume();
        }
    }

    /// One received byte, if any is queued.
    #[inline]
    pub fn try_read_byte(&mut self) -> Option<u8> {
        let b = self.rx.dequeue();
        self.make_room();
        b
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

impl<B: Bus, C: RxControl> embedded_io::ErrorType for SerialPort<'_, B, C> {
    type Error = SerialError;
}

impl<B: Bus, C: RxControl> embedded_io::Read for SerialPort<'_, B, C> {
    /// Blocks until at least one byte is available, then returns what is queued.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.rx.ready() {
            let rx = &self.rx;
            self.control.idle(&|| rx.ready());
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
        self.make_room();
        Ok(n)
    }
}

impl<B: Bus, C: RxControl> embedded_io::ReadReady for SerialPort<'_, B, C> {
    fn read_ready(&mut self) -> Result<bool, SerialError> {
        Ok(self.rx.ready())
    }
}

impl<B: Bus, C: RxControl> embedded_io::Write for SerialPort<'_, B, C> {
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

impl<B: Bus, C: RxControl> embedded_hal_nb::serial::ErrorType for SerialPort<'_, B, C> {
    type Error = SerialError;
}

impl<B: Bus, C: RxControl> embedded_hal_nb::serial::Read<u8> for SerialPort<'_, B, C> {
    fn read(&mut self) -> nb::Result<u8, SerialError> {
        self.try_read_byte().ok_or(nb::Error::WouldBlock)
    }
}

impl<B: Bus, C: RxControl> embedded_hal_nb::serial::Write<u8> for SerialPort<'_, B, C> {
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
    //! The receive path under load, against a model of the PL011 as QEMU
    //! implements it: a 16-byte FIFO that flags an overrun (OE) on the next
    //! byte it keeps when a byte arrives while it is full, and a receive
    //! interrupt raised when a byte lands in an empty FIFO (the trigger level),
    //! cleared by ICR or by reading the FIFO empty, taken only while unmasked.
    use super::super::pl011::{DR, FR, FR_RXFE, ICR, IMSC, INT_RX};
    use super::super::{Pl011, RxQueue, RxStats};
    use super::*;
    use crate::board::UART0_BASE;
    use heapless::spsc::Producer;
    use std::boxed::Box;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::vec::Vec;

    #[derive(Default)]
    struct FifoBus {
        fifo: VecDeque<u32>,
        overrun_pending: bool,
        /// Bytes the model lost to a full FIFO.
        lost: u64,
        /// Overrun events flagged on a kept byte.
        overruns: u64,
        imsc: u32,
        /// The raw receive interrupt status (RIS.RXRIS).
        ris: bool,
        tx: Vec<u8>,
    }

    impl FifoBus {
        /// A byte arrives on the line.
        fn arrive(&mut self, b: u8) {
            if self.fifo.len() == 16 {
                self.lost += 1;
                self.overrun_pending = true;
            } else {
                // The PL011 reports an overrun with the next byte it keeps.
                let oe = if std::mem::take(&mut self.overrun_pending) {
                    self.overruns += 1;
                    1 << 11
                } else {
                    0
                };
                self.fifo.push_back(u32::from(b) | oe);
                if self.fifo.len() == 1 {
                    self.ris = true;
                }
            }
        }
    }

    impl Bus for FifoBus {
        fn read(&mut self, addr: u32) -> u32 {
            match addr - UART0_BASE {
                FR if self.fifo.is_empty() => FR_RXFE,
                FR => 0,
                DR => {
                    let v = self.fifo.pop_front().unwrap_or(0);
                    if self.fifo.is_empty() {
                        self.ris = false;
                    }
                    v
                }
                IMSC => self.imsc,
                _ => 0,
            }
        }
        fn write(&mut self, addr: u32, value: u32) {
            match addr - UART0_BASE {
                DR => self.tx.push(value as u8),
                IMSC => self.imsc = value,
                ICR if value & INT_RX != 0 => self.ris = false,
                _ => {}
            }
        }
    }

    /// The test's receive control: reads never block, and resuming runs the
    /// "interrupt handler" side (which owns the producer) directly.
    struct TestRx {
        isr: Rc<RefCell<Isr>>,
    }

    struct Isr {
        uart: Pl011<Shared>,
        producer: Producer<'static, u8, RX_QUEUE_BYTES>,
        stats: &'static RxStats,
    }

    impl RxControl for TestRx {
        fn idle(&mut self, _: &dyn Fn() -> bool) {
            panic!("test read would block");
        }
        fn resume(&mut self) {
            let isr = &mut *self.isr.borrow_mut();
            isr.uart.resume_rx(isr.stats, &mut isr.producer);
        }
    }

    /// One UART shared by the "interrupt" and the port, as on the board.
    struct Shared(Rc<RefCell<FifoBus>>);

    impl Bus for Shared {
        fn read(&mut self, addr: u32) -> u32 {
            self.0.borrow_mut().read(addr)
        }
        fn write(&mut self, addr: u32, value: u32) {
            self.0.borrow_mut().write(addr, value)
        }
    }

    type Rig = (
        SerialPort<'static, Shared, TestRx>,
        Rc<RefCell<FifoBus>>,
        Rc<RefCell<Isr>>,
        &'static RxStats,
    );

    /// A port and an "interrupt handler" sharing one modelled UART, as on the
    /// board: the queue's producer belongs to the handler, its consumer to the
    /// port. Receive interrupts start masked.
    fn rig() -> Rig {
        let queue: &'static mut RxQueue = Box::leak(Box::new(RxQueue::new()));
        let (producer, consumer) = queue.split();
        let stats: &'static RxStats = Box::leak(Box::new(RxStats::new()));
        let bus = Rc::new(RefCell::new(FifoBus::default()));
        let isr = Rc::new(RefCell::new(Isr {
            uart: Pl011::new(Shared(bus.clone()), UART0_BASE),
            producer,
            stats,
        }));
        let port = SerialPort::new(
            Pl011::new(Shared(bus.clone()), UART0_BASE),
            consumer,
            stats,
            TestRx { isr: isr.clone() },
        );
        (port, bus, isr, stats)
    }

    /// Runs `total` bytes through the line at `per_tick` bytes per tick while the
    /// consumer reads `take(tick)` bytes per tick; with `hold_back` the sender
    /// waits while the FIFO is full (as QEMU does), otherwise it keeps sending
    /// (a real line). Returns (delivered bytes, stats, model).
    fn run(
        total: u32,
        per_tick: u32,
        hold_back: bool,
        take: impl Fn(u32) -> usize,
    ) -> (Vec<u8>, &'static RxStats, FifoBus) {
        let (mut port, bus, isr, stats) = rig();
        bus.borrow_mut().imsc = INT_RX;
        let (mut sent, mut tick) = (0u32, 0u32);
        let mut got = Vec::new();
        loop {
            for _ in 0..per_tick {
                if hold_back && bus.borrow().fifo.len() == 16 {
                    break;
                }
                if sent < total {
                    bus.borrow_mut().arrive((sent % 251) as u8);
                    sent += 1;
                }
            }
            let pending = {
                let b = bus.borrow();
                b.ris && b.imsc & INT_RX != 0
            };
            if pending {
                let isr = &mut *isr.borrow_mut();
                isr.uart.drain_rx_fifo(stats, &mut isr.producer);
            }
            let mut buf = [0u8; 4096];
            let n = take(tick).min(buf.len());
            if port.pending() > 0 && n > 0 {
                let k = embedded_io::Read::read(&mut port, &mut buf[..n]).unwrap();
                got.extend_from_slice(&buf[..k]);
            }
            tick += 1;
            if sent == total && bus.borrow().fifo.is_empty() && port.pending() == 0 {
                break;
            }
            assert!(tick < 10_000_000, "receive path stalled");
        }
        let model = std::mem::take(&mut *bus.borrow_mut());
        (got, stats, model)
    }

    /// Everything delivered is the sent sequence with whole runs missing only
    /// where the FIFO overflowed, never reordered or duplicated.
    fn in_order(got: &[u8], total: u32) {
        let mut expect = 0u32;
        for &b in got {
            while (expect % 251) as u8 != b {
                expect += 1;
                assert!(expect < total, "delivered byte out of order");
            }
            expect += 1;
        }
    }

    #[test]
    fn a_slow_consumer_pauses_receive_and_software_drops_nothing() {
        // The line offers 8 bytes a tick but waits while the FIFO is full (as
        // QEMU does); the consumer reads 3 a tick with a burst of 4000 every
        // 2000 ticks: the queue fills, receive pauses, the FIFO holds the rest,
        // and nothing at all is lost.
        let total = 200_000;
        let (got, stats, model) = run(total, 8, true, |t| if t % 2000 == 1999 { 4000 } else { 3 });
        assert!(
            stats.pauses.load(Ordering::Relaxed) > 0,
            "the queue must fill up"
        );
        assert_eq!(model.lost, 0);
        assert_eq!(got.len() as u32, total);
        assert_eq!(stats.received.load(Ordering::Relaxed), total);
        assert_eq!(stats.fifo_overruns.load(Ordering::Relaxed), 0);
        in_order(&got, total);
    }

    #[test]
    fn a_sender_outrunning_a_paused_fifo_is_counted_not_hidden() {
        // 40 bytes a tick against a consumer of 5: the FIFO overflows while
        // receive is paused. Every byte is either delivered or lost in the
        // (modelled) hardware, and every overrun event is counted.
        let total = 200_000;
        let (got, stats, model) = run(total, 40, false, |t| if t % 500 == 499 { 4000 } else { 5 });
        assert!(model.lost > 0);
        assert_eq!(got.len() as u64 + model.lost, u64::from(total));
        assert_eq!(stats.received.load(Ordering::Relaxed) as usize, got.len());
        assert_eq!(
            u64::from(stats.fifo_overruns.load(Ordering::Relaxed)),
            model.overruns
        );
        in_order(&got, total);
    }

    #[test]
    fn threaded_producer_and_consumer_agree() {
        // The queue under real concurrency, interrupt side and shell side on two
        // threads without locks: with backpressure every byte arrives, in order.
        let queue: &'static mut RxQueue = Box::leak(Box::new(RxQueue::new()));
        let (mut producer, mut consumer) = queue.split();
        let total = 2_000_000u32;
        let h = std::thread::spawn(move || {
            for i in 0..total {
                while producer.enqueue(i as u8).is_err() {
                    std::hint::spin_loop();
                }
            }
        });
        let mut count = 0u32;
        while count < total {
            if let Some(b) = consumer.dequeue() {
                assert_eq!(b, count as u8);
                count += 1;
                if count.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
        }
        h.join().unwrap();
        assert!(consumer.dequeue().is_none());
    }

    #[test]
    fn transmit_goes_to_the_data_register() {
        let (mut port, bus, _isr, _stats) = rig();
        embedded_io::Write::write_all(&mut port, b"hi\r\n").unwrap();
        assert_eq!(bus.borrow().tx, b"hi\r\n");
        assert!(embedded_hal_nb::serial::Read::read(&mut port).is_err());
    }
}
