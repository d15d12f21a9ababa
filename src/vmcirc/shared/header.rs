//! The shared header: layout, initialisation and validation of everything a
//! process reads from it when attaching. `no_std`.
//!
//! The header is the first page of the ring's memory file. Every field is an
//! atomic, because a peer may write any of them at any time: reading a field is
//! never a data race, and any bit pattern is a valid value (validation decides
//! whether it is a sensible one). Groups written by different parties sit on
//! their own 128-byte lines (two 64-byte lines: x86 prefetches line pairs), so
//! the producer's and the consumer's counters never share a cache line.
//!
//! | line | field(s) | written by |
//! |---|---|---|
//! | 0 | magic, version, kind, capacity, data offset, header size, flags | the creator, once; magic last (Release) |
//! | 1 | `tail`: SPSC write position, MPSC reserve position | producer(s) |
//! | 2 | `head`: read position | consumer |
//! | 3 | `data_wait`: futex word, 1 = the consumer may be asleep | consumer sets, producers clear |
//! | 4 | `space_wait`: futex word, 1 = a producer may be asleep | producers set, consumer clears |
//! | 5 | consumer liveness: owner (pid, start time), pid namespace, state | consumer |
//! | 6 | SPSC producer liveness | producer |
//! | 7 | MPSC: producers attached so far | producers |
//! | 8.. | MPSC producer slots: liveness and the reservation being claimed | each producer |
//!
//! Positions are monotonically increasing `u64` byte counts; the data offset of
//! position `p` is `p % capacity`. At 10 GB/s they overflow after 58 years.

use core::mem::size_of;

use super::sync::{AtomicU32, AtomicU64, Ordering};
use super::{Error, Side};

/// `vmcircQ1` in little-endian: the first word of every shared ring file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"vmcircQ1");
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Kind: single producer, single consumer, a byte stream.
pub const KIND_SPSC: u32 = 1;
/// Kind: many producers, one consumer, variable-size records.
pub const KIND_MPSC: u32 = 2;
/// Producer slots of an MPSC ring (live producers at once).
pub const MAX_PRODUCERS: usize = 16;
/// Largest capacity accepted (1 TiB): far beyond any real ring, small enough
/// that no position arithmetic on validated values can overflow.
pub const MAX_CAPACITY: u64 = 1 << 40;
/// Largest data offset accepted (the header page of a 1 MiB-page system).
pub const MAX_DATA_OFFSET: u64 = 1 << 20;

/// Flag: the file is sealed against shrinking and growing (informational).
pub const FLAG_SEALED: u32 = 1;

/// A side has never attached.
pub const STATE_FREE: u32 = 0;
/// A side is attached (its owner may still have died: see the liveness checks).
pub const STATE_ATTACHED: u32 = 1;
/// A side closed cleanly (for a producer: the end of its stream).
pub const STATE_CLOSED: u32 = 2;

/// No claim in progress (MPSC producer slot).
pub const NO_CLAIM: u64 = u64::MAX;

/// A kind's name for messages.
pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_SPSC => "spsc",
        KIND_MPSC => "mpsc",
        _ => "unknown",
    }
}

/// One group of fields on its own pair of cache lines.
#[repr(C, align(128))]
pub struct Line<T>(pub T);

/// Line 0: what the creator wrote once.
#[repr(C)]
pub struct Identity {
    /// [`MAGIC`], stored last (Release) by the creator.
    pub magic: AtomicU64,
    /// [`VERSION`].
    pub version: AtomicU32,
    /// [`KIND_SPSC`] or [`KIND_MPSC`].
    pub kind: AtomicU32,
    /// `N`, the data area's size, a multiple of the page size.
    pub capacity: AtomicU64,
    /// Where the data area starts in the file (a multiple of the page size).
    pub data_offset: AtomicU64,
    /// `size_of::<Header>()` as the creator saw it.
    pub header_size: AtomicU32,
    /// [`FLAG_SEALED`].
    pub flags: AtomicU32,
}

/// One side's liveness record.
#[repr(C)]
pub struct SideState {
    /// [`pack_owner`]`(pid, start time)`; 0 when no process ever attached.
    pub owner: AtomicU64,
    /// The owner's pid namespace (inode of `/proc/self/ns/pid`), 0 if unknown.
    pub pidns: AtomicU64,
    /// [`STATE_FREE`], [`STATE_ATTACHED`] or [`STATE_CLOSED`].
    pub state: AtomicU32,
}

/// An MPSC producer slot: liveness plus the reservation being claimed, so the
/// consumer can skip a record whose producer died between reserving it and
/// writing its header.
#[repr(C)]
pub struct ProducerSlot {
    /// Who holds the slot.
    pub side: SideState,
    /// The reserve position this producer is trying to claim, or [`NO_CLAIM`].
    pub claim_pos: AtomicU64,
    /// The size of that claim (record header and padding included).
    pub claim_len: AtomicU64,
}

/// The shared header (the first page of the file).
#[repr(C)]
pub struct Header {
    /// Line 0.
    pub id: Line<Identity>,
    /// SPSC write position / MPSC reserve position.
    pub tail: Line<AtomicU64>,
    /// Read position.
    pub head: Line<AtomicU64>,
    /// Futex word: 1 when the consumer may be asleep waiting for data.
    pub data_wait: Line<AtomicU32>,
    /// Futex word: 1 when a producer may be asleep waiting for space.
    pub space_wait: Line<AtomicU32>,
    /// The consumer's liveness.
    pub consumer: Line<SideState>,
    /// The SPSC producer's liveness.
    pub producer: Line<SideState>,
    /// MPSC: how many producers have attached so far.
    pub producers_seen: Line<AtomicU32>,
    /// MPSC producer slots.
    pub slots: [Line<ProducerSlot>; MAX_PRODUCERS],
}

#[cfg(not(loom))]
const _: () = assert!(size_of::<Header>() <= 4096 && size_of::<Header>().is_multiple_of(128));

/// Owner word of `pid` started at `start` (clock ticks since boot, low 32 bits).
/// Never 0 for a real process (pid 0 is not a process).
pub fn pack_owner(pid: u32, start: u32) -> u64 {
    u64::from(pid) | (u64::from(start) << 32)
}

/// `(pid, start)` of an owner word.
pub fn unpack_owner(owner: u64) -> (u32, u32) {
    (owner as u32, (owner >> 32) as u32)
}

/// The validated geometry of a ring, as read once at attach time. The halves keep
/// their own copy: later changes to the shared fields have no effect on bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// [`KIND_SPSC`] or [`KIND_MPSC`].
    pub kind: u32,
    /// `N`.
    pub capacity: u64,
    /// Start of the data area in the file.
    pub data_offset: u64,
    /// [`FLAG_SEALED`] bits.
    pub flags: u32,
}

/// Checks `head <= tail <= head + capacity`.
pub fn check_positions(head: u64, tail: u64, capacity: u64) -> Result<(), Error> {
    if tail < head {
        return Err(Error::corrupt(
            "write position behind the read position",
            tail,
            head,
        ));
    }
    if tail - head > capacity {
        return Err(Error::corrupt(
            "more bytes buffered than the capacity",
            tail - head,
            capacity,
        ));
    }
    Ok(())
}

impl SideState {
    fn zeroed() -> Self {
        SideState {
            owner: AtomicU64::new(0),
            pidns: AtomicU64::new(0),
            state: AtomicU32::new(STATE_FREE),
        }
    }

    /// The owner word (0: never attached).
    pub fn owner(&self) -> u64 {
        self.owner.load(Ordering::Acquire)
    }

    /// The state word.
    pub fn state(&self) -> u32 {
        // Acquire: pairs with the Release in `close`, so a consumer that sees the
        // producer's CLOSED also sees its last committed position (the commit's
        // Release store to `tail` is sequenced before the close).
        self.state.load(Ordering::Acquire)
    }

    /// Claims a side that no process has ever held (an SPSC side is used once:
    /// one stream per ring). `me` is [`pack_owner`] of this process.
    pub fn claim_once(&self, side: Side, me: u64, pidns: u64) -> Result<(), Error> {
        match self
            .owner
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                self.pidns.store(pidns, Ordering::Relaxed);
                self.state.store(STATE_ATTACHED, Ordering::Release);
                Ok(())
            }
            Err(cur) => Err(Error::SideTaken {
                side,
                pid: if self.state() == STATE_CLOSED {
                    0
                } else {
                    unpack_owner(cur).0
                },
            }),
        }
    }

    /// Takes over a side from `old` (a closed or dead owner) with one CAS: only one
    /// contender wins.
    pub fn take_over(&self, old: u64, me: u64, pidns: u64) -> bool {
        if self
            .owner
            .compare_exchange(old, me, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.pidns.store(pidns, Ordering::Relaxed);
        self.state.store(STATE_ATTACHED, Ordering::Release);
        true
    }

    /// Marks the side closed (the end of the stream for a producer).
    pub fn close(&self) {
        // Release: everything this side did before (the last commit or consume)
        // is visible to a peer that reads CLOSED with Acquire.
        self.state.store(STATE_CLOSED, Ordering::Release);
    }
}

impl ProducerSlot {
    fn zeroed() -> Self {
        ProducerSlot {
            side: SideState::zeroed(),
            claim_pos: AtomicU64::new(NO_CLAIM),
            claim_len: AtomicU64::new(0),
        }
    }
}

impl Header {
    /// A zeroed header as a fresh file holds it (claims are [`NO_CLAIM`] only after
    /// [`Header::init`]). For the loom models and unit tests; shared rings map
    /// theirs from the file.
    pub fn zeroed() -> Self {
        Header {
            id: Line(Identity {
                magic: AtomicU64::new(0),
                version: AtomicU32::new(0),
                kind: AtomicU32::new(0),
                capacity: AtomicU64::new(0),
                data_offset: AtomicU64::new(0),
                header_size: AtomicU32::new(0),
                flags: AtomicU32::new(0),
            }),
            tail: Line(AtomicU64::new(0)),
            head: Line(AtomicU64::new(0)),
            data_wait: Line(AtomicU32::new(0)),
            space_wait: Line(AtomicU32::new(0)),
            consumer: Line(SideState::zeroed()),
            producer: Line(SideState::zeroed()),
            producers_seen: Line(AtomicU32::new(0)),
            slots: core::array::from_fn(|_| Line(ProducerSlot::zeroed())),
        }
    }

    /// Initialises a fresh (zero-filled) header. The magic is stored last with
    /// Release: a process that reads it with Acquire sees every other field.
    pub fn init(&self, kind: u32, capacity: u64, data_offset: u64, flags: u32) {
        let id = &self.id.0;
        id.version.store(VERSION, Ordering::Relaxed);
        id.kind.store(kind, Ordering::Relaxed);
        id.capacity.store(capacity, Ordering::Relaxed);
        id.data_offset.store(data_offset, Ordering::Relaxed);
        id.header_size
            .store(size_of::<Header>() as u32, Ordering::Relaxed);
        id.flags.store(flags, Ordering::Relaxed);
        for s in &self.slots {
            s.0.claim_pos.store(NO_CLAIM, Ordering::Relaxed);
        }
        id.magic.store(MAGIC, Ordering::Release);
    }

    /// Whether the creator has finished [`Header::init`].
    pub fn is_initialised(&self) -> bool {
        self.id.0.magic.load(Ordering::Acquire) == MAGIC
    }

    /// Validates the header of a file of `file_len` bytes on a system with pages
    /// of `page` bytes, for a ring of `kind`. Every field is checked against what
    /// this process can map safely; nothing read here is trusted later (the
    /// halves keep the returned [`Layout`]).
    pub fn validate(&self, kind: u32, file_len: u64, page: u64) -> Result<Layout, Error> {
        let id = &self.id.0;
        // Acquire: pairs with the creator's Release store of the magic in `init`.
        if id.magic.load(Ordering::Acquire) != MAGIC {
            return Err(Error::NotInitialised);
        }
        let version = id.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        let found = id.kind.load(Ordering::Relaxed);
        if found != kind {
            return Err(Error::WrongKind {
                expected: kind,
                found,
            });
        }
        let header_size = id.header_size.load(Ordering::Relaxed);
        if header_size as usize != size_of::<Header>() {
            return Err(Error::corrupt(
                "header size",
                header_size.into(),
                size_of::<Header>() as u64,
            ));
        }
        let capacity = id.capacity.load(Ordering::Relaxed);
        if capacity == 0 || capacity > MAX_CAPACITY || page == 0 || !capacity.is_multiple_of(page) {
            return Err(Error::corrupt(
                "capacity (zero, too large, or not a multiple of the page size)",
                capacity,
                page,
            ));
        }
        let data_offset = id.data_offset.load(Ordering::Relaxed);
        if data_offset < size_of::<Header>() as u64
            || data_offset > MAX_DATA_OFFSET
            || !data_offset.is_multiple_of(page)
        {
            return Err(Error::corrupt(
                "data offset (inside the header, too large, or not page aligned)",
                data_offset,
                page,
            ));
        }
        // Both are bounded above, so the sum cannot overflow.
        let expected = data_offset + capacity;
        if file_len != expected {
            return Err(Error::Truncated { file_len, expected });
        }
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
        check_positions(head, tail, capacity)?;
        Ok(Layout {
            kind,
            capacity,
            data_offset,
            flags: id.flags.load(Ordering::Relaxed),
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    fn ring() -> Header {
        let h = Header::zeroed();
        h.init(KIND_SPSC, 8 * PAGE, PAGE, 0);
        h
    }

    #[test]
    fn layout_is_one_page_with_counters_apart() {
        assert!(size_of::<Header>() <= 4096);
        let h = Header::zeroed();
        let base = &h as *const Header as usize;
        let tail = &h.tail as *const _ as usize - base;
        let head = &h.head as *const _ as usize - base;
        assert_eq!(tail % 128, 0);
        assert!(head - tail >= 128, "head and tail share a line pair");
    }

    #[test]
    fn valid_header() {
        let h = ring();
        let l = h.validate(KIND_SPSC, 9 * PAGE, PAGE).unwrap();
        assert_eq!(l.capacity, 8 * PAGE);
        assert_eq!(l.data_offset, PAGE);
    }

    #[test]
    fn every_field_is_checked() {
        let h = Header::zeroed();
        assert!(matches!(
            h.validate(KIND_SPSC, 9 * PAGE, PAGE),
            Err(Error::NotInitialised)
        ));
        type Breaker<'a> = (&'a str, &'a dyn Fn(&Header));
        let cases: [Breaker; 9] = [
            ("version", &|h| h.id.0.version.store(2, Ordering::Relaxed)),
            ("kind", &|h| h.id.0.kind.store(KIND_MPSC, Ordering::Relaxed)),
            ("size", &|h| h.id.0.header_size.store(8, Ordering::Relaxed)),
            ("cap0", &|h| h.id.0.capacity.store(0, Ordering::Relaxed)),
            ("capodd", &|h| {
                h.id.0.capacity.store(8 * PAGE + 1, Ordering::Relaxed)
            }),
            ("caphuge", &|h| {
                h.id.0.capacity.store(u64::MAX - 4095, Ordering::Relaxed)
            }),
            ("off", &|h| h.id.0.data_offset.store(0, Ordering::Relaxed)),
            ("tail<head", &|h| h.head.0.store(5, Ordering::Relaxed)),
            ("overfull", &|h| {
                h.tail.0.store(8 * PAGE + 1, Ordering::Relaxed)
            }),
        ];
        for (name, break_it) in cases {
            let h = ring();
            break_it(&h);
            let e = h.validate(KIND_SPSC, 9 * PAGE, PAGE);
            assert!(e.is_err(), "{name}: accepted");
        }
        // A file shorter or longer than the header says.
        let h = ring();
        assert!(matches!(
            h.validate(KIND_SPSC, 9 * PAGE - 1, PAGE),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            h.validate(KIND_SPSC, PAGE, PAGE),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn claim_once_and_take_over() {
        let h = ring();
        let me = pack_owner(42, 7);
        h.producer.0.claim_once(Side::Producer, me, 1).unwrap();
        assert_eq!(h.producer.0.state(), STATE_ATTACHED);
        assert!(matches!(
            h.producer
                .0
                .claim_once(Side::Producer, pack_owner(43, 1), 1),
            Err(Error::SideTaken { pid: 42, .. })
        ));
        h.producer.0.close();
        assert!(matches!(
            h.producer
                .0
                .claim_once(Side::Producer, pack_owner(43, 1), 1),
            Err(Error::SideTaken { pid: 0, .. })
        ));
        assert!(!h
            .producer
            .0
            .take_over(pack_owner(1, 1), pack_owner(43, 1), 1));
        assert!(h.producer.0.take_over(me, pack_owner(43, 1), 1));
        assert_eq!(unpack_owner(h.producer.0.owner()), (43, 1));
    }
}
