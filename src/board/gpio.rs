//! BCM2835 GPIO: pin function select and the pull-up/down programming sequence
//! (BCM2835 ARM Peripherals, section 6.1, GPPUD/GPPUDCLKn).

use super::mmio::Bus;
use super::GPIO_BASE;

/// GPFSEL0 (pins 0-9); GPFSELn follow every 4 bytes, 10 pins each, 3 bits a pin.
pub const GPFSEL0: u32 = GPIO_BASE;
/// Pull-up/down control.
pub const GPPUD: u32 = GPIO_BASE + 0x94;
/// Pull-up/down clock for pins 0-31.
pub const GPPUDCLK0: u32 = GPIO_BASE + 0x98;

/// Pin functions (the 3-bit GPFSEL codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Function {
    /// Input.
    Input = 0b000,
    /// Output.
    Output = 0b001,
    /// Alternate function 0 (UART0 on GPIO14/15).
    Alt0 = 0b100,
    /// Alternate function 1.
    Alt1 = 0b101,
    /// Alternate function 2.
    Alt2 = 0b110,
    /// Alternate function 3.
    Alt3 = 0b111,
    /// Alternate function 4.
    Alt4 = 0b011,
    /// Alternate function 5 (mini UART on GPIO14/15).
    Alt5 = 0b010,
}

/// Pull resistor setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Pull {
    /// No pull (what a driven UART line wants).
    Off = 0,
    /// Pull down.
    Down = 1,
    /// Pull up.
    Up = 2,
}

/// Selects `func` for GPIO `pin` (0..=53) with a read-modify-write of its GPFSEL
/// register, leaving the other pins alone.
pub fn set_function(bus: &mut impl Bus, pin: u32, func: Function) {
    debug_assert!(pin <= 53);
    let reg = GPFSEL0 + 4 * (pin / 10);
    let shift = 3 * (pin % 10);
    bus.modify(reg, 0b111 << shift, (func as u32) << shift);
}

/// Programs the pull resistors of the pins in `mask` (pins 0-31) with the sequence
/// the datasheet requires: write GPPUD, wait 150 cycles, clock the pins in with
/// GPPUDCLK0, wait 150 cycles, then remove the control signal and the clock.
pub fn set_pull(bus: &mut impl Bus, mask: u32, pull: Pull) {
    bus.write(GPPUD, pull as u32);
    bus.delay_cycles(150);
    bus.write(GPPUDCLK0, mask);
    bus.delay_cycles(150);
    bus.write(GPPUD, 0);
    bus.write(GPPUDCLK0, 0);
}
