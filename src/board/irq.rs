//! BCM2835 ARM interrupt controller (ARM Peripherals chapter 7): masking every
//! source, enabling the GPU peripheral interrupts the kernel uses (only UART0,
//! interrupt 57) and finding which one is pending.

use super::mmio::Bus;
use super::IRQ_BASE;

/// IRQ basic pending.
pub const IRQ_BASIC_PENDING: u32 = IRQ_BASE;
/// IRQ pending 2 (GPU interrupts 32..63).
pub const IRQ_PENDING_2: u32 = IRQ_BASE + 0x08;
/// Enable IRQs 2 (GPU interrupts 32..63).
pub const ENABLE_IRQS_2: u32 = IRQ_BASE + 0x14;
/// Disable IRQs 1 (GPU interrupts 0..31).
pub const DISABLE_IRQS_1: u32 = IRQ_BASE + 0x1c;
/// Disable IRQs 2.
pub const DISABLE_IRQS_2: u32 = IRQ_BASE + 0x20;
/// Disable basic IRQs.
pub const DISABLE_BASIC_IRQS: u32 = IRQ_BASE + 0x24;
/// The PL011's GPU interrupt number.
pub const IRQ_UART0: u32 = 57;

/// The interrupt controller, reached through `bus`. Every method brackets its
/// accesses with peripheral barriers: it is used between UART accesses (boot, the
/// IRQ handler).
pub struct Interrupts<B: Bus> {
    bus: B,
}

impl<B: Bus> Interrupts<B> {
    /// The controller on `bus`.
    pub const fn new(bus: B) -> Self {
        Interrupts { bus }
    }

    /// The bus, for tests.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// Masks every interrupt source (the firmware may leave some enabled).
    pub fn disable_all(&mut self) {
        self.bus.barrier();
        self.bus.write(DISABLE_IRQS_1, 0xffff_ffff);
        self.bus.write(DISABLE_IRQS_2, 0xffff_ffff);
        self.bus.write(DISABLE_BASIC_IRQS, 0xffff_ffff);
        self.bus.barrier();
    }

    /// Enables GPU interrupt `n` (32..=63; others are ignored).
    pub fn enable_gpu(&mut self, n: u32) {
        if !(32..64).contains(&n) {
            return;
        }
        self.bus.barrier();
        self.bus.write(ENABLE_IRQS_2, 1 << (n - 32));
        self.bus.barrier();
    }

    /// Whether GPU interrupt `n` (32..=63) is pending. The barrier after the read
    /// is the one the IRQ handler needs before it goes on to the UART.
    pub fn pending_gpu(&mut self, n: u32) -> bool {
        if !(32..64).contains(&n) {
            return false;
        }
        self.bus.barrier();
        let pending = self.bus.read(IRQ_PENDING_2);
        self.bus.barrier();
        pending & (1 << (n - 32)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::mmio::{Access, RecordingBus};

    #[test]
    fn uart_interrupt_enable_and_pending_with_barriers() {
        let mut bus = RecordingBus::default();
        let mut irq = Interrupts::new(bus.clone());
        irq.enable_gpu(IRQ_UART0);
        irq.enable_gpu(64);
        assert_eq!(bus.writes(), [(0x2000_B214, 1 << 25)]);
        bus.preset(IRQ_PENDING_2, 1 << 25);
        bus.clear_log();
        assert!(irq.pending_gpu(IRQ_UART0));
        assert!(!irq.pending_gpu(56));
        assert_eq!(
            &bus.log()[..3],
            &[
                Access::Barrier,
                Access::Read(IRQ_PENDING_2, 1 << 25),
                Access::Barrier
            ]
        );
        irq.disable_all();
        assert_eq!(bus.writes().len(), 3);
        let log = bus.log();
        assert_eq!(
            (log[6], log[log.len() - 1]),
            (Access::Barrier, Access::Barrier)
        );
    }
}
