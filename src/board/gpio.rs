//! BCM2835 GPIO: pin function select, the pull-up/down programming sequence
//! (BCM2835 ARM Peripherals §6.1, GPFSELn, GPPUD/GPPUDCLKn), and the console pins:
//! [`Gpio::route_uart0`] puts GPIO14/15 on the PL011 (ALT0) with RXD pulled up.

use embedded_hal::delay::DelayNs;

use super::mmio::Bus;
use super::GPIO_BASE;

/// GPFSEL0 (pins 0-9); GPFSELn follow every 4 bytes, 10 pins each, 3 bits a pin.
pub const GPFSEL0: u32 = GPIO_BASE;
/// Pull-up/down control.
pub const GPPUD: u32 = GPIO_BASE + 0x94;
/// Pull-up/down clock for pins 0-31.
pub const GPPUDCLK0: u32 = GPIO_BASE + 0x98;

/// GPIO14: UART0 TXD in ALT0 (header pin 8).
pub const UART0_TXD_PIN: u32 = 14;
/// GPIO15: UART0 RXD in ALT0 (header pin 10).
pub const UART0_RXD_PIN: u32 = 15;

/// Set-up and hold time of the pull sequence, in microseconds. The datasheet asks for
/// 150 cycles without saying of which clock; the GPIO block runs from the VideoCore
/// clock (250 MHz on the BCM2835, so 0.6 us), and Linux's pinctrl-bcm2835 waits
/// `udelay(1)`. 5 us on the system timer is well above that for any VPU clock down to
/// 30 MHz, and costs 20 us once at boot.
pub const PULL_SETUP_US: u32 = 5;

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

/// The GPIO block, reached through `bus`.
pub struct Gpio<B: Bus> {
    bus: B,
}

impl<B: Bus> Gpio<B> {
    /// The GPIO block on `bus`.
    pub const fn new(bus: B) -> Self {
        Gpio { bus }
    }

    /// The bus, for tests.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// Selects `func` for GPIO `pin` (0..=53) with a read-modify-write of its GPFSEL
    /// register, leaving the other pins alone. A pin above 53 is ignored.
    pub fn set_function(&mut self, pin: u32, func: Function) {
        if pin > 53 {
            return;
        }
        let reg = GPFSEL0 + 4 * (pin / 10);
        let shift = 3 * (pin % 10);
        self.bus.barrier();
        self.bus.modify(reg, 0b111 << shift, (func as u32) << shift);
        self.bus.barrier();
    }

    /// Programs the pull resistors of the pins in `mask` (pins 0-31) with the sequence
    /// the datasheet requires (§6.1, GPPUDCLKn): write GPPUD, wait, clock the pins in
    /// with GPPUDCLK0, wait, then remove the control signal and the clock. The waits
    /// ([`PULL_SETUP_US`]) are on `delay` (the system timer on the board), never a
    /// NOP loop whose length would depend on the caches and the ARM clock.
    pub fn set_pull(&mut self, mask: u32, pull: Pull, delay: &mut impl DelayNs) {
        // Each wait reads the system timer, another peripheral: a barrier on each
        // side of it (the timer brackets its own reads too).
        self.bus.barrier();
        self.bus.write(GPPUD, pull as u32);
        self.bus.barrier();
        delay.delay_us(PULL_SETUP_US);
        self.bus.barrier();
        self.bus.write(GPPUDCLK0, mask);
        self.bus.barrier();
        delay.delay_us(PULL_SETUP_US);
        self.bus.barrier();
        self.bus.write(GPPUD, Pull::Off as u32);
        self.bus.write(GPPUDCLK0, 0);
        self.bus.barrier();
    }

    /// Routes UART0 to the header: GPIO14 (TXD) and GPIO15 (RXD) to ALT0; TXD without
    /// a pull (the PL011 drives it), RXD pulled up, so that with no adapter attached
    /// the line idles high (a UART's idle level) instead of floating and feeding noise
    /// into the shell. The firmware's own pin table and Circle do the same.
    pub fn route_uart0(&mut self, delay: &mut impl DelayNs) {
        self.set_function(UART0_TXD_PIN, Function::Alt0);
        self.set_function(UART0_RXD_PIN, Function::Alt0);
        self.set_pull(1 << UART0_TXD_PIN, Pull::Off, delay);
        self.set_pull(1 << UART0_RXD_PIN, Pull::Up, delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::mmio::{Access, RecordingBus};
    use crate::board::timer::{SystemTimer, CLO};
    use std::vec::Vec;

    /// GPIO and timer on one recorded bus, the timer counting 1 us per read.
    fn rig() -> (Gpio<RecordingBus>, SystemTimer<RecordingBus>, RecordingBus) {
        let mut bus = RecordingBus::default();
        bus.counter(CLO, 1000, 1);
        (Gpio::new(bus.clone()), SystemTimer::new(bus.clone()), bus)
    }

    #[test]
    fn uart0_pins_alt0_txd_no_pull_rxd_pull_up() {
        let (mut gpio, mut timer, bus) = rig();
        gpio.route_uart0(&mut timer);
        let gpfsel1 = GPFSEL0 + 4;
        assert_eq!(
            bus.writes(),
            [
                (gpfsel1, 0b100 << 12),
                (gpfsel1, (0b100 << 12) | (0b100 << 15)),
                (GPPUD, 0),
                (GPPUDCLK0, 1 << 14),
                (GPPUD, 0),
                (GPPUDCLK0, 0),
                (GPPUD, 2),
                (GPPUDCLK0, 1 << 15),
                (GPPUD, 0),
                (GPPUDCLK0, 0),
            ]
        );
    }

    #[test]
    fn pull_sequence_waits_on_the_timer_with_barriers() {
        let (mut gpio, mut timer, bus) = rig();
        gpio.set_pull(1 << 15, Pull::Up, &mut timer);
        let log = bus.log();
        let pos = |a: Access| log.iter().position(|x| *x == a).unwrap();
        let clo_at = |i: usize| match log[i] {
            Access::Read(CLO, v) => v,
            ref o => panic!("expected a CLO read, got {o:?}"),
        };
        // Between the GPPUD write and the clock write: a barrier, timer reads that
        // span more than PULL_SETUP_US, a barrier.
        let (set, clk) = (
            pos(Access::Write(GPPUD, 2)),
            pos(Access::Write(GPPUDCLK0, 1 << 15)),
        );
        let between: Vec<usize> = (set + 1..clk)
            .filter(|&i| matches!(log[i], Access::Read(CLO, _)))
            .collect();
        let (first, last) = (between[0], between[between.len() - 1]);
        assert!(clo_at(last) - clo_at(first) > PULL_SETUP_US);
        assert_eq!(log[set + 1], Access::Barrier);
        assert_eq!(log[clk - 1], Access::Barrier);
        // The same after the clock write, before the control signal is removed.
        let off = pos(Access::Write(GPPUD, 0));
        let after: Vec<usize> = (clk + 1..off)
            .filter(|&i| matches!(log[i], Access::Read(CLO, _)))
            .collect();
        assert!(clo_at(after[after.len() - 1]) - clo_at(after[0]) > PULL_SETUP_US);
        assert_eq!(log.first(), Some(&Access::Barrier));
        assert_eq!(log.last(), Some(&Access::Barrier));
    }

    #[test]
    fn set_function_keeps_other_pins() {
        let mut bus = RecordingBus::default();
        // Pins 10..19 all output (0b001) beforehand.
        let all_out = (0..10).fold(0u32, |a, i| a | (1 << (3 * i)));
        bus.preset(GPFSEL0 + 4, all_out);
        let mut gpio = Gpio::new(bus.clone());
        gpio.set_function(14, Function::Alt0);
        gpio.set_function(15, Function::Alt0);
        gpio.set_function(54, Function::Alt0);
        let v = bus.last_write(GPFSEL0 + 4).unwrap();
        assert_eq!((v >> 12) & 0b111, 0b100);
        assert_eq!((v >> 15) & 0b111, 0b100);
        assert_eq!(v & !(0b111111 << 12), all_out & !(0b111111 << 12));
        assert_eq!(bus.writes().len(), 2, "pin 54 does not exist");
    }
}
