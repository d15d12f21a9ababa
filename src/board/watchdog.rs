//! BCM2835 power-management watchdog, used for `reboot`: arm the watchdog with a
//! short timeout and request a full reset (the sequence Linux's bcm2835_wdt uses).

use super::mmio::Bus;
use super::PM_BASE;

/// Reset control.
pub const PM_RSTC: u32 = PM_BASE + 0x1c;
/// Watchdog timer (16 us ticks).
pub const PM_WDOG: u32 = PM_BASE + 0x24;
/// Every PM write carries this password in the top byte.
pub const PM_PASSWORD: u32 = 0x5a00_0000;
/// RSTC.WRCFG field.
pub const PM_RSTC_WRCFG_CLR: u32 = 0xffff_ffcf;
/// RSTC.WRCFG = full reset.
pub const PM_RSTC_WRCFG_FULL_RESET: u32 = 0x0000_0020;

/// The watchdog, reached through `bus`.
pub struct Watchdog<B: Bus> {
    bus: B,
}

impl<B: Bus> Watchdog<B> {
    /// The watchdog on `bus`.
    pub const fn new(bus: B) -> Self {
        Watchdog { bus }
    }

    /// Arms the watchdog to reset the board after `ticks` (16 us each), bracketed
    /// by peripheral barriers (the caller was using the UART).
    pub fn reset_after(&mut self, ticks: u32) {
        self.bus.barrier();
        let rstc = self.bus.read(PM_RSTC);
        self.bus.write(PM_WDOG, PM_PASSWORD | (ticks & 0xfffff));
        self.bus.write(
            PM_RSTC,
            PM_PASSWORD | (rstc & PM_RSTC_WRCFG_CLR) | PM_RSTC_WRCFG_FULL_RESET,
        );
        self.bus.barrier();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::mmio::{Access, RecordingBus};

    #[test]
    fn full_reset_with_password() {
        let mut bus = RecordingBus::default();
        bus.preset(PM_RSTC, 0x0000_0133);
        Watchdog::new(bus.clone()).reset_after(10);
        assert_eq!(
            bus.writes(),
            [(0x2010_0024, 0x5a00_000a), (0x2010_001c, 0x5a00_0123)]
        );
        assert_eq!(bus.log().first(), Some(&Access::Barrier));
        assert_eq!(bus.log().last(), Some(&Access::Barrier));
    }
}
