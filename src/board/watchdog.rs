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

/// Arms the watchdog to reset the board after `ticks` (16 us each).
pub fn reset_after(bus: &mut impl Bus, ticks: u32) {
    let rstc = bus.read(PM_RSTC);
    bus.write(PM_WDOG, PM_PASSWORD | (ticks & 0xfffff));
    bus.write(
        PM_RSTC,
        PM_PASSWORD | (rstc & PM_RSTC_WRCFG_CLR) | PM_RSTC_WRCFG_FULL_RESET,
    );
}
