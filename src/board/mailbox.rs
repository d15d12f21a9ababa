//! The VideoCore mailbox property interface (mailbox 0, channel 8): asks the
//! firmware for the ARM memory split and the board revision.
//!
//! The kernel calls it once at boot, before the MMU and D-cache are on, so the
//! request buffer needs no cache maintenance. The buffer address is passed as a
//! VideoCore bus address (`0x4000_0000 | phys`, the L2-coherent alias on BCM2835).

use super::mmio::Bus;
use super::MAILBOX_BASE;

/// Read register.
pub const MBOX_READ: u32 = MAILBOX_BASE;
/// Status register.
pub const MBOX_STATUS: u32 = MAILBOX_BASE + 0x18;
/// Write register (mailbox 1's write, as seen from the ARM).
pub const MBOX_WRITE: u32 = MAILBOX_BASE + 0x20;
const STATUS_FULL: u32 = 0x8000_0000;
const STATUS_EMPTY: u32 = 0x4000_0000;
const CHANNEL_PROPERTY: u32 = 8;
const RESPONSE_OK: u32 = 0x8000_0000;

/// Tag: board revision (1 word out).
pub const TAG_BOARD_REVISION: u32 = 0x0001_0002;
/// Tag: ARM memory (base, size).
pub const TAG_ARM_MEMORY: u32 = 0x0001_0005;
/// Tag: VideoCore memory (base, size).
pub const TAG_VC_MEMORY: u32 = 0x0001_0006;

/// A property buffer, 16-byte aligned as the mailbox requires.
#[repr(C, align(16))]
pub struct PropertyBuffer(pub [u32; 32]);

/// What the firmware reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirmwareInfo {
    /// Board revision code.
    pub revision: u32,
    /// ARM memory base.
    pub arm_base: u32,
    /// ARM memory size in bytes.
    pub arm_size: u32,
    /// VideoCore memory base.
    pub vc_base: u32,
    /// VideoCore memory size.
    pub vc_size: u32,
}

/// Fills `buf` with one request for revision, ARM memory and VC memory.
pub fn build_request(buf: &mut PropertyBuffer) {
    let b = &mut buf.0;
    b.fill(0);
    let words = [
        0, // total size, set below
        0, // request code
        TAG_BOARD_REVISION,
        4,
        0,
        0,
        TAG_ARM_MEMORY,
        8,
        0,
        0,
        0,
        TAG_VC_MEMORY,
        8,
        0,
        0,
        0,
        0, // end tag
    ];
    b[..words.len()].copy_from_slice(&words);
    b[0] = (words.len() * 4) as u32;
}

/// Parses a response filled in by the firmware; `None` when it did not answer.
pub fn parse_response(buf: &PropertyBuffer) -> Option<FirmwareInfo> {
    let b = &buf.0;
    if b[1] != RESPONSE_OK {
        return None;
    }
    Some(FirmwareInfo {
        revision: b[5],
        arm_base: b[9],
        arm_size: b[10],
        vc_base: b[14],
        vc_size: b[15],
    })
}

/// Sends a property buffer on channel 8 and waits (bounded) for the answer.
/// Returns false on a timeout. `bus_addr` is the buffer's VideoCore bus address.
pub fn call(bus: &mut impl Bus, bus_addr: u32) -> bool {
    debug_assert_eq!(bus_addr & 0xf, 0);
    let mut spins = 0u32;
    while bus.read(MBOX_STATUS) & STATUS_FULL != 0 {
        spins += 1;
        if spins > 1_000_000 {
            return false;
        }
    }
    bus.write(MBOX_WRITE, bus_addr | CHANNEL_PROPERTY);
    loop {
        spins = 0;
        while bus.read(MBOX_STATUS) & STATUS_EMPTY != 0 {
            spins += 1;
            if spins > 10_000_000 {
                return false;
            }
        }
        if bus.read(MBOX_READ) & 0xf == CHANNEL_PROPERTY {
            return true;
        }
    }
}
