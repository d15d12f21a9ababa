//! BCM2835 board support: the memory map as data, and small drivers for the
//! peripherals the kernel uses (GPIO, system timer, mailbox, watchdog, interrupt
//! controller).
//!
//! Every driver reaches its registers through an [`mmio::Bus`], so host tests can
//! run the exact init sequences against a recording fake ([`mmio::RecordingBus`]).
//!
//! | physical range              | what                                  |
//! |-----------------------------|---------------------------------------|
//! | `0x0000_0000..ram_size`     | ARM RAM (size from the firmware)      |
//! | `0x2000_0000..0x2100_0000`  | peripherals (ARM physical addresses)  |
//! | `0x2000_3000`               | system timer (1 MHz free-running)     |
//! | `0x2000_B200`               | interrupt controller                  |
//! | `0x2000_B880`               | mailbox 0 (VideoCore property channel) |
//! | `0x2010_0000`               | power management / watchdog           |
//! | `0x2020_0000`               | GPIO                                  |
//! | `0x2020_1000`               | PL011 UART0                           |

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
/// Mailbox 0.
pub const MAILBOX_BASE: u32 = PERIPHERAL_BASE + 0xB880;
/// Power management (watchdog) block.
pub const PM_BASE: u32 = PERIPHERAL_BASE + 0x10_0000;
/// GPIO block.
pub const GPIO_BASE: u32 = PERIPHERAL_BASE + 0x20_0000;
/// PL011 UART0.
pub const UART0_BASE: u32 = PERIPHERAL_BASE + 0x20_1000;

/// The PL011 reference clock the kernel assumes, in Hz. Recent firmware sets it to
/// 48 MHz by default; `config.txt` pins it with `init_uart_clock=48000000` so older
/// firmware (3 MHz default) agrees.
pub const UART_CLOCK_HZ: u32 = 48_000_000;
