//! BCM2835 system timer (ARM Peripherals chapter 12): a free-running 64-bit counter
//! at 1 MHz (CLO/CHI), the kernel's one clock and its delay source. Under QEMU with
//! `-icount shift=0` it advances 1 us per 1000 guest instructions, which makes the
//! kernel's throughput figures deterministic.
//!
//! Unlike a NOP loop, a wait on this counter takes the same time whether the I-cache
//! is on or off and whatever the ARM clock is.

use embedded_hal::delay::DelayNs;

use super::mmio::Bus;
use super::SYSTEM_TIMER_BASE;

/// Counter low word.
pub const CLO: u32 = SYSTEM_TIMER_BASE + 0x04;
/// Counter high word.
pub const CHI: u32 = SYSTEM_TIMER_BASE + 0x08;

/// The system timer, read through `bus`.
pub struct SystemTimer<B: Bus> {
    bus: B,
}

impl<B: Bus> SystemTimer<B> {
    /// The timer on `bus`; it runs from power-on, nothing to set up.
    pub const fn new(bus: B) -> Self {
        SystemTimer { bus }
    }

    /// The bus, for tests.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// Microseconds since the timer started (board power-on), read consistently
    /// across the 32-bit halves (re-reads when CHI changes in between). The reads
    /// are bracketed by peripheral barriers: the caller may have been talking to
    /// another peripheral (the UART) just before and go on right after.
    pub fn now_us(&mut self) -> u64 {
        self.bus.barrier();
        let now = loop {
            let hi = self.bus.read(CHI);
            let lo = self.bus.read(CLO);
            if self.bus.read(CHI) == hi {
                break (u64::from(hi) << 32) | u64::from(lo);
            }
        };
        self.bus.barrier();
        now
    }

    /// Waits until at least `us` microseconds have passed. The counter may tick right
    /// after the first read, so it waits for `us + 1` ticks (CLO alone; the
    /// wrapping difference is right across a CLO overflow).
    pub fn wait_us(&mut self, us: u32) {
        self.bus.barrier();
        let start = self.bus.read(CLO);
        while self.bus.read(CLO).wrapping_sub(start) <= us {
            core::hint::spin_loop();
        }
        self.bus.barrier();
    }
}

impl<B: Bus> DelayNs for SystemTimer<B> {
    fn delay_ns(&mut self, ns: u32) {
        self.wait_us(ns.div_ceil(1000));
    }

    fn delay_us(&mut self, us: u32) {
        self.wait_us(us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::mmio::{Access, RecordingBus};

    #[test]
    fn now_reads_both_halves_between_barriers() {
        let mut bus = RecordingBus::default();
        bus.preset(CHI, 1);
        bus.preset(CLO, 0x10);
        let mut t = SystemTimer::new(bus);
        assert_eq!(t.now_us(), (1 << 32) | 0x10);
        let log = t.bus().log();
        assert_eq!(log.first(), Some(&Access::Barrier));
        assert_eq!(log.last(), Some(&Access::Barrier));
        assert_eq!(log.len(), 5);
    }

    #[test]
    fn now_rereads_when_the_high_word_changes() {
        let mut bus = RecordingBus::default();
        bus.script(CHI, &[1, 2, 2, 2]);
        bus.script(CLO, &[0xffff_fff0, 0x5]);
        let mut t = SystemTimer::new(bus);
        assert_eq!(t.now_us(), (2 << 32) | 0x5);
    }

    #[test]
    fn wait_counts_full_microseconds() {
        let mut bus = RecordingBus::default();
        // Near the CLO wrap: the difference must wrap too.
        bus.counter(CLO, 0xffff_fffe, 1);
        let mut t = SystemTimer::new(bus);
        t.delay_us(5);
        let reads: std::vec::Vec<u32> = t
            .bus()
            .log()
            .iter()
            .filter_map(|a| match *a {
                Access::Read(CLO, v) => Some(v),
                _ => None,
            })
            .collect();
        // Start 0xffff_fffe; done once 6 ticks have passed.
        assert_eq!(reads.last().map(|v| v.wrapping_sub(reads[0])), Some(6));
        // Nanoseconds round up to whole microseconds.
        let mut bus = RecordingBus::default();
        bus.counter(CLO, 0, 1);
        let mut t = SystemTimer::new(bus);
        t.delay_ns(1001);
        let log = t.bus().log();
        let last = log.iter().rev().find_map(|a| match *a {
            Access::Read(CLO, v) => Some(v),
            _ => None,
        });
        assert_eq!(last, Some(3));
    }
}
