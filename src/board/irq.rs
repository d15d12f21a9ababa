//! BCM2835 ARM interrupt controller: enabling the GPU peripheral interrupts the
//! kernel uses (only UART0, interrupt 57) and finding which one is pending.

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

/// Masks every interrupt source (the firmware may leave some enabled).
pub fn disable_all(bus: &mut impl Bus) {
    bus.write(DISABLE_IRQS_1, 0xffff_ffff);
    bus.write(DISABLE_IRQS_2, 0xffff_ffff);
    bus.write(DISABLE_BASIC_IRQS, 0xffff_ffff);
}

/// Enables GPU interrupt `n` (32..=63).
pub fn enable_gpu(bus: &mut impl Bus, n: u32) {
    debug_assert!((32..64).contains(&n));
    bus.write(ENABLE_IRQS_2, 1 << (n - 32));
}

/// Whether GPU interrupt `n` (32..=63) is pending.
pub fn pending_gpu(bus: &mut impl Bus, n: u32) -> bool {
    bus.read(IRQ_PENDING_2) & (1 << (n - 32)) != 0
}
