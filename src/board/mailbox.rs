//! The VideoCore mailbox property interface (channel 8): asks the firmware for the
//! board revision, the ARM/VideoCore memory split and the UART reference clock.
//!
//! Registers (BCM2835 ARM Peripherals has no mailbox chapter; the layout is the
//! firmware wiki's "Mailboxes" page, used the same way by Linux's
//! `bcm2835-mailbox.c` and Circle): mailbox 0 (VideoCore to ARM) is read at
//! `0x2000_B880` with its status at `0x2000_B898`; mailbox 1 (ARM to VideoCore) is
//! written at `0x2000_B8A0` with its status at `0x2000_B8B8`. The ARM waits until
//! mailbox 1 is not full before writing, and until mailbox 0 is not empty before
//! reading.
//!
//! The kernel calls it once at boot, before the MMU and D-cache are on, so the
//! request buffer needs no cache maintenance. The buffer address is passed as a
//! VideoCore bus address (`0x4000_0000 | phys`, the L2-coherent alias on BCM2835).

use super::mmio::Bus;
use super::MAILBOX_BASE;

/// Mailbox 0 read register (answers from the VideoCore).
pub const MBOX0_READ: u32 = MAILBOX_BASE;
/// Mailbox 0 status: `EMPTY` while no answer waits.
pub const MBOX0_STATUS: u32 = MAILBOX_BASE + 0x18;
/// Mailbox 1 write register (requests to the VideoCore).
pub const MBOX1_WRITE: u32 = MAILBOX_BASE + 0x20;
/// Mailbox 1 status: `FULL` while the VideoCore has not taken earlier writes.
pub const MBOX1_STATUS: u32 = MAILBOX_BASE + 0x38;
/// Status bit: the mailbox is full.
pub const STATUS_FULL: u32 = 0x8000_0000;
/// Status bit: the mailbox is empty.
pub const STATUS_EMPTY: u32 = 0x4000_0000;
/// The property-tags channel (ARM to VideoCore).
pub const CHANNEL_PROPERTY: u32 = 8;
/// Buffer code and tag length bit the firmware sets on a successful answer.
pub const RESPONSE_OK: u32 = 0x8000_0000;

/// Tag: board revision (1 word out).
pub const TAG_BOARD_REVISION: u32 = 0x0001_0002;
/// Tag: ARM memory (base, size).
pub const TAG_ARM_MEMORY: u32 = 0x0001_0005;
/// Tag: VideoCore memory (base, size).
pub const TAG_VC_MEMORY: u32 = 0x0001_0006;
/// Tag: get clock rate (clock id in, clock id and rate in Hz out).
pub const TAG_GET_CLOCK_RATE: u32 = 0x0003_0002;
/// Clock id of the UART (PL011) reference clock.
pub const CLOCK_UART: u32 = 2;

/// Polls of mailbox 1's status before giving up on a write.
const WRITE_POLLS: u32 = 1_000_000;
/// Polls of mailbox 0's status before giving up on the answer.
const READ_POLLS: u32 = 10_000_000;

/// A property buffer, 16-byte aligned as the mailbox requires.
#[repr(C, align(16))]
pub struct PropertyBuffer(pub [u32; 32]);

impl PropertyBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        PropertyBuffer([0; 32])
    }
}

impl Default for PropertyBuffer {
    fn default() -> Self {
        Self::new()
    }
}

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
    /// The UART reference clock in Hz, when the firmware answered that tag with a
    /// non-zero rate.
    pub uart_clock_hz: Option<u32>,
}

/// Word offsets of each tag in the request [`build_request`] makes: tag id, value
/// buffer size, request/response code, then the values.
const AT_REVISION: usize = 2;
const AT_ARM: usize = 6;
const AT_VC: usize = 11;
const AT_CLOCK: usize = 16;

/// Fills `buf` with one request for revision, ARM memory, VC memory and the UART
/// clock rate.
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
        TAG_GET_CLOCK_RATE,
        8,
        0,
        CLOCK_UART,
        0,
        0, // end tag
    ];
    b[..words.len()].copy_from_slice(&words);
    b[0] = (words.len() * 4) as u32;
}

/// Whether the tag at word `at` was answered with at least `len` bytes of values.
fn answered(b: &[u32; 32], at: usize, len: u32) -> bool {
    let code = b[at + 2];
    code & RESPONSE_OK != 0 && code & !RESPONSE_OK >= len
}

/// Parses a response filled in by the firmware; `None` when the buffer or the
/// revision and memory tags were not answered. The UART clock is optional: firmware
/// that does not know the tag leaves it unanswered, and a rate of 0 means the clock
/// does not exist.
pub fn parse_response(buf: &PropertyBuffer) -> Option<FirmwareInfo> {
    let b = &buf.0;
    if b[1] != RESPONSE_OK
        || !answered(b, AT_REVISION, 4)
        || !answered(b, AT_ARM, 8)
        || !answered(b, AT_VC, 8)
    {
        return None;
    }
    let clock = answered(b, AT_CLOCK, 8) && b[AT_CLOCK + 3] == CLOCK_UART;
    Some(FirmwareInfo {
        revision: b[AT_REVISION + 3],
        arm_base: b[AT_ARM + 3],
        arm_size: b[AT_ARM + 4],
        vc_base: b[AT_VC + 3],
        vc_size: b[AT_VC + 4],
        uart_clock_hz: Some(b[AT_CLOCK + 4]).filter(|&hz| clock && hz != 0),
    })
}

/// Why a mailbox call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxError {
    /// Mailbox 1 stayed full: the VideoCore took no request.
    WriteTimeout,
    /// No answer on the property channel arrived.
    ReadTimeout,
}

/// The mailbox block, reached through `bus`.
pub struct Mailbox<B: Bus> {
    bus: B,
    write_polls: u32,
    read_polls: u32,
}

impl<B: Bus> Mailbox<B> {
    /// The mailboxes on `bus`.
    pub const fn new(bus: B) -> Self {
        Self::with_poll_limits(bus, WRITE_POLLS, READ_POLLS)
    }

    /// As [`Mailbox::new`], giving up after `write_polls` polls for room in mailbox 1
    /// and `read_polls` polls for an answer (tests use small limits).
    pub const fn with_poll_limits(bus: B, write_polls: u32, read_polls: u32) -> Self {
        Mailbox {
            bus,
            write_polls,
            read_polls,
        }
    }

    /// The bus, for tests.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// Sends a property buffer on channel 8 and waits (bounded) for the answer.
    /// `bus_addr` is the buffer's VideoCore bus address, 16-byte aligned. The buffer
    /// must not sit in a dirty D-cache line (the kernel calls this with the D-cache
    /// off). Answers on other channels are skipped.
    pub fn call(&mut self, bus_addr: u32) -> Result<(), MailboxError> {
        // The caller may have been talking to another peripheral: barrier before
        // the first mailbox access, and after the last read below.
        self.bus.barrier();
        let r = self.exchange(bus_addr & !0xf);
        self.bus.barrier();
        r
    }

    fn exchange(&mut self, bus_addr: u32) -> Result<(), MailboxError> {
        // Mailbox 1 (ARM to VideoCore) is the one written, so its status is the one
        // that says whether there is room.
        let mut polls = 0u32;
        while self.bus.read(MBOX1_STATUS) & STATUS_FULL != 0 {
            polls += 1;
            if polls > self.write_polls {
                return Err(MailboxError::WriteTimeout);
            }
        }
        self.bus.write(MBOX1_WRITE, bus_addr | CHANNEL_PROPERTY);
        let mut polls = 0u32;
        loop {
            while self.bus.read(MBOX0_STATUS) & STATUS_EMPTY != 0 {
                polls += 1;
                if polls > self.read_polls {
                    return Err(MailboxError::ReadTimeout);
                }
            }
            if self.bus.read(MBOX0_READ) & 0xf == CHANNEL_PROPERTY {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::mmio::{Access, RecordingBus};
    use std::vec;

    /// What the firmware does with the request (the property interface's rules):
    /// sets the buffer code, and for each tag the response bit plus the value length,
    /// and fills in the values. `clock` is the UART rate, or None for a firmware that
    /// does not know the tag.
    fn answer(buf: &mut PropertyBuffer, clock: Option<u32>) {
        let b = &mut buf.0;
        b[1] = RESPONSE_OK;
        let mut at = 2;
        while b[at] != 0 {
            let len = b[at + 1];
            let values: &[u32] = match b[at] {
                TAG_BOARD_REVISION => &[0x0092_0092],
                TAG_ARM_MEMORY => &[0, 448 << 20],
                TAG_VC_MEMORY => &[448 << 20, 64 << 20],
                TAG_GET_CLOCK_RATE => match clock {
                    Some(hz) => &[b[at + 3], hz],
                    None => &[],
                },
                _ => &[],
            };
            if !values.is_empty() {
                b[at + 2] = RESPONSE_OK | (values.len() as u32 * 4);
                b[at + 3..at + 3 + values.len()].copy_from_slice(values);
            }
            at += 3 + len as usize / 4;
        }
    }

    #[test]
    fn request_layout() {
        let mut buf = PropertyBuffer::new();
        build_request(&mut buf);
        let b = &buf.0;
        assert_eq!(b[0], 22 * 4);
        assert_eq!(b[1], 0);
        assert_eq!(&b[16..22], &[0x0003_0002, 8, 0, 2, 0, 0]);
        assert_eq!(core::mem::align_of::<PropertyBuffer>(), 16);
    }

    #[test]
    fn parses_the_uart_clock_and_the_memory_split() {
        let mut buf = PropertyBuffer::new();
        build_request(&mut buf);
        answer(&mut buf, Some(3_000_000));
        let fw = parse_response(&buf).unwrap();
        assert_eq!(fw.uart_clock_hz, Some(3_000_000));
        assert_eq!(
            (fw.revision, fw.arm_size, fw.vc_size),
            (0x920092, 448 << 20, 64 << 20)
        );
        // A firmware that does not know the tag: memory yes, clock no.
        let mut buf = PropertyBuffer::new();
        build_request(&mut buf);
        answer(&mut buf, None);
        let fw = parse_response(&buf).unwrap();
        assert_eq!((fw.uart_clock_hz, fw.arm_size), (None, 448 << 20));
        // A rate of 0: no such clock.
        let mut buf = PropertyBuffer::new();
        build_request(&mut buf);
        answer(&mut buf, Some(0));
        assert_eq!(parse_response(&buf).unwrap().uart_clock_hz, None);
        // No answer at all.
        let mut buf = PropertyBuffer::new();
        build_request(&mut buf);
        assert_eq!(parse_response(&buf), None);
    }

    #[test]
    fn call_polls_mailbox_1_before_writing_and_mailbox_0_before_reading() {
        let mut bus = RecordingBus::default();
        // Mailbox 1 full twice, then room; no answer for one poll; an answer on
        // another channel first (skipped), then ours.
        bus.script(MBOX1_STATUS, &[STATUS_FULL, STATUS_FULL, 0]);
        bus.script(MBOX0_STATUS, &[STATUS_EMPTY, 0, 0]);
        bus.script(MBOX0_READ, &[0x1234_5671, 0x4000_1008]);
        let mut mb = Mailbox::new(bus.clone());
        assert_eq!(mb.call(0x4000_1000), Ok(()));
        assert_eq!(
            bus.log(),
            vec![
                Access::Barrier,
                Access::Read(MBOX1_STATUS, STATUS_FULL),
                Access::Read(MBOX1_STATUS, STATUS_FULL),
                Access::Read(MBOX1_STATUS, 0),
                Access::Write(MBOX1_WRITE, 0x4000_1008),
                Access::Read(MBOX0_STATUS, STATUS_EMPTY),
                Access::Read(MBOX0_STATUS, 0),
                Access::Read(MBOX0_READ, 0x1234_5671),
                Access::Read(MBOX0_STATUS, 0),
                Access::Read(MBOX0_READ, 0x4000_1008),
                Access::Barrier,
            ]
        );
        assert_eq!(
            (MBOX1_STATUS, MBOX1_WRITE, MBOX0_STATUS),
            (0x2000_B8B8, 0x2000_B8A0, 0x2000_B898)
        );
    }

    #[test]
    fn call_gives_up_when_the_videocore_does_not_answer() {
        let mut bus = RecordingBus::default();
        bus.preset(MBOX1_STATUS, STATUS_FULL);
        let mut mb = Mailbox::with_poll_limits(bus, 100, 100);
        assert_eq!(mb.call(0x4000_1000), Err(MailboxError::WriteTimeout));
        let mut bus = RecordingBus::default();
        bus.preset(MBOX0_STATUS, STATUS_EMPTY);
        let mut mb = Mailbox::with_poll_limits(bus.clone(), 100, 100);
        assert_eq!(mb.call(0x4000_1000), Err(MailboxError::ReadTimeout));
        assert!(bus.writes().len() == 1 && bus.log().len() < 110);
        assert_eq!(bus.log().last(), Some(&Access::Barrier));
    }
}
