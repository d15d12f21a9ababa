//! BCM2835 system timer: a free-running 64-bit counter at 1 MHz (CLO/CHI). Under
//! QEMU with `-icount shift=0` it advances 1 us per 1000 guest instructions, which
//! makes the kernel's throughput figures deterministic.

use super::mmio::Bus;
use super::SYSTEM_TIMER_BASE;

/// Counter low word.
pub const CLO: u32 = SYSTEM_TIMER_BASE + 0x04;
/// Counter high word.
pub const CHI: u32 = SYSTEM_TIMER_BASE + 0x08;

/// Microseconds since the timer started (board power-on), read consistently
/// across the 32-bit halves (re-reads when CHI changes in between).
pub fn now_us(bus: &mut impl Bus) -> u64 {
    loop {
        let hi = bus.read(CHI);
        let lo = bus.read(CLO);
        if bus.read(CHI) == hi {
            return (u64::from(hi) << 32) | u64::from(lo);
        }
    }
}
