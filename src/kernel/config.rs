//! The kernel's configuration: the fixed settings, and what the boot code learnt
//! from the firmware ([`BoardInfo`]), which `info` reports.

use vmcirc::board::mailbox::FirmwareInfo;

/// The console baud rate (8N1, no flow control).
pub const BAUD: u32 = 115_200;

/// The build's name in the banner: `VMCIRC_BUILD_ID` at build time (the Makefile
/// passes the short commit hash, `-dirty` for uncommitted changes), so a user sees
/// which kernel answered, also after `vmcirc install`.
pub const BUILD_ID: &str = match option_env!("VMCIRC_BUILD_ID") {
    Some(id) => id,
    None => "unknown",
};

/// Where the RAM size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// The mailbox property interface.
    Mailbox,
    /// The firmware's ATAG list.
    Atags,
    /// Neither answered: a conservative guess.
    Assumed,
}

/// The UART's reference clock and the divisors programmed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UartClock {
    /// The reference clock in Hz.
    pub hz: u32,
    /// True when the firmware reported it (mailbox tag GET_CLOCK_RATE, clock 2);
    /// false when it did not answer and the 48 MHz fallback was used.
    pub from_mailbox: bool,
    /// The integer and fractional baud divisors.
    pub ibrd: u32,
    /// See `ibrd`.
    pub fbrd: u32,
}

/// What the boot code learnt about the board.
#[derive(Debug, Clone, Copy)]
pub struct BoardInfo {
    /// The firmware's answer on the mailbox, if it gave one.
    pub firmware: Option<FirmwareInfo>,
    /// RAM for the ARM in bytes (whole MiB, below the peripherals).
    pub ram_bytes: u32,
    /// Where `ram_bytes` came from.
    pub memory_source: MemorySource,
    /// The firmware's r1 (machine type).
    pub machine: u32,
    /// The firmware's r2 (ATAG list or device tree address).
    pub atags: u32,
    /// The console UART's clock.
    pub uart: UartClock,
}
