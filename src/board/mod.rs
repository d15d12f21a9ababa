//! BCM2835 board support: the memory map as data (the one place the peripheral
//! addresses are defined), and small drivers for the peripherals the kernel uses
//! (GPIO, system timer, mailbox, watchdog, interrupt controller) plus the firmware's
//! ATAG list.
//!
//! Every driver reaches its registers through an [`mmio::Bus`], so host tests can
//! run the exact sequences against a recording fake ([`mmio::RecordingBus`]).
//!
//! | physical range              | what                                  |
//! |-----------------------------|---------------------------------------|
//! | `0x0000_0000..ram_size`     | ARM RAM (size from the firmware)      |
//! | `0x2000_0000..0x2100_0000`  | peripherals (ARM physical addresses)  |
//! | `0x2000_3000`               | system timer (1 MHz free-running)     |
//! | `0x2000_B200`               | interrupt controller                  |
//! | `0x2000_B880`               | mailboxes (VideoCore property channel) |
//! | `0x2010_0000`               | power management / watchdog           |
//! | `0x2020_0000`               | GPIO                                  |
//! | `0x2020_1000`               | PL011 UART0                           |
//!
//! # Peripheral barriers
//!
//! BCM2835 ARM Peripherals §1.3: reads from two different peripherals may return out
//! of order, so a memory barrier goes before the first write to a peripheral and
//! after the last read from one. The kernel talks to the UART most of the time, so
//! the rule is kept like this: every driver here except the PL011 brackets each of
//! its operations with [`mmio::Bus::barrier`] (the ARMv6 DMB); the IRQ handler puts
//! one at its entry and exit; the shell's `x` puts one around its peripheral reads.
//! Then every switch from one peripheral to another passes a barrier.

pub mod atags;
pub mod gpio;
pub mod irq;
pub mod mailbox;
pub mod mmio;
pub mod revision;
pub mod timer;
pub mod watchdog;

/// First byte of the peripheral window as the ARM sees it.
pub const PERIPHERAL_BASE: u32 = 0x2000_0000;
/// One past the last byte of the peripheral window.
pub const PERIPHERAL_END: u32 = 0x2100_0000;
/// System timer block.
pub const SYSTEM_TIMER_BASE: u32 = PERIPHERAL_BASE + 0x3000;
/// ARM interrupt controller block.
pub const IRQ_BASE: u32 = PERIPHERAL_BASE + 0xB200;
/// Mailbox block (mailbox 0 at `+0x00`, mailbox 1 at `+0x20`).
pub const MAILBOX_BASE: u32 = PERIPHERAL_BASE + 0xB880;
/// Power management (watchdog) block.
pub const PM_BASE: u32 = PERIPHERAL_BASE + 0x10_0000;
/// GPIO block.
pub const GPIO_BASE: u32 = PERIPHERAL_BASE + 0x20_0000;
/// PL011 UART0.
pub const UART0_BASE: u32 = PERIPHERAL_BASE + 0x20_1000;

/// The PL011 reference clock assumed when the firmware does not answer the mailbox's
/// clock-rate tag: 48 MHz, the default of current firmware, which `config.txt` also
/// pins with `init_uart_clock=48000000` (older firmware defaulted to 3 MHz).
pub const UART_CLOCK_FALLBACK_HZ: u32 = 48_000_000;
