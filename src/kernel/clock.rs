//! The kernel's one clock: the BCM2835 system timer behind [`now_us`], which is the
//! shell's [`vmcirc::shell::Clock`] (timeouts, `info`'s uptime, throughput figures).

use vmcirc::board::mmio::Mmio;
use vmcirc::board::timer::SystemTimer;

use super::global::Global;

static TIMER: Global<SystemTimer<Mmio>> = Global::new();

/// Makes `timer` the clock (once, at boot).
pub fn install(timer: SystemTimer<Mmio>) {
    // Refused only on a second call, which the boot code never makes.
    let _ = TIMER.install(timer);
}

/// Microseconds since power-on; 0 before [`install`].
pub fn now_us() -> u64 {
    TIMER.with(|t| t.now_us()).unwrap_or(0)
}

/// See [`Global::reclaim`].
///
/// # Safety
///
/// As [`Global::reclaim`].
pub unsafe fn reclaim() {
    // SAFETY: forwarded contract.
    unsafe { TIMER.reclaim() }
}
