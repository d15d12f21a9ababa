//! The multi-producer single-consumer record protocol. `no_std`.
//!
//! A record is a 16-byte header and the payload, padded to a multiple of 8, laid
//! out contiguously at its reserve position: thanks to the mirror a record that
//! runs past the end of the data area is still one range, so there is never a
//! split record nor a padding record at the wrap (Agrona's `ManyToOneRingBuffer`
//! needs both, and caps a record at an eighth of the buffer; here a record may
//! fill the whole ring).
//!
//! ```text
//! word 0 (AtomicU64): len (bits 0..32) | state (32..34) | position tag (34..64)
//! word 1 (AtomicU64): owner (pid, start time) of the producer that reserved it
//! payload: len bytes, then zeros to the next multiple of 8
//! ```
//!
//! Producer: (1) load `tail` then `head` (both Acquire), check the space; (2) write the
//! claim `(tail, size)` into its producer slot; (3) CAS `tail` to `tail + size`
//! (retry from 1 on failure); (4) write word 1 and word 0 = BUSY (Release);
//! (5) clear the claim (Release); (6) write the payload; (7) word 0 = COMMITTED
//! (Release); (8) wake the consumer if it may sleep (as in `spsc`).
//!
//! Consumer: load word 0 at `head` (Acquire). COMMITTED: read the payload, zero the
//! whole record (so every word of free space is 0 again: a header that is not yet
//! written reads as 0, never as stale bytes of an earlier lap), advance `head`
//! (Release). ABORTED: zero and skip. BUSY or 0 while `tail > head`: a producer is
//! in the middle of it; if that producer is dead (word 1, or for 0 the claims in
//! the slots) the record is zeroed, skipped and reported as lost.
//!
//! The position tag (bits 3..33 of the position) makes a header written at the
//! wrong place, or a torn or stale word, a detected corruption.

use core::ops::Deref;

use super::header::{check_positions, Header, NO_CLAIM};
use super::sync::{AtomicU64, Ordering};
use super::Error;

/// Bytes of a record header.
pub const RECORD_HEADER: u64 = 16;

const STATE_BUSY: u64 = 1;
const STATE_COMMITTED: u64 = 2;
const STATE_ABORTED: u64 = 3;

/// The memory of the data area as seen by the protocol: 8-byte words for the
/// record headers, and zeroing of consumed records. The Linux backend maps the
/// area twice, so a range crossing the end is contiguous; the loom models keep
/// an array of loom atomics.
pub trait Words {
    /// The word at byte `offset` (8-aligned, `offset + 8 <= 2 * capacity`).
    fn word(&self, offset: usize) -> &AtomicU64;
    /// Sets `len` bytes from `offset` (< capacity; `len <= capacity`) to zero.
    /// Only called on bytes no producer may touch until `head` moves past them.
    fn zero(&self, offset: usize, len: usize);
}

/// Total bytes a record of `len` payload bytes takes in a ring of `capacity`.
pub fn record_size(len: u64, capacity: u64) -> Result<u64, Error> {
    let max = max_payload(capacity);
    if len > max {
        return Err(Error::TooLarge { len, max });
    }
    Ok((RECORD_HEADER + len).next_multiple_of(8))
}

/// The longest payload a ring of `capacity` takes (one record fills it).
pub fn max_payload(capacity: u64) -> u64 {
    capacity
        .saturating_sub(RECORD_HEADER)
        .min(u64::from(u32::MAX))
}

fn tag(pos: u64) -> u64 {
    (pos >> 3) & ((1 << 30) - 1)
}

fn header_word(state: u64, len: u64, pos: u64) -> u64 {
    len | (state << 32) | (tag(pos) << 34)
}

/// A reserved record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Its reserve position.
    pub pos: u64,
    /// Payload bytes.
    pub len: u64,
    /// Bytes in the ring.
    pub size: u64,
}

impl Claim {
    /// Offset of the payload in the (mirrored) data area: the payload is
    /// `len` contiguous bytes from there, possibly past the first copy's end.
    pub fn payload_offset(&self, capacity: u64) -> usize {
        (self.pos % capacity + RECORD_HEADER) as usize
    }
}

/// A producer of records.
pub struct MpscProducerCore<H: Deref<Target = Header>, W: Words> {
    h: H,
    words: W,
    cap: u64,
    slot: usize,
    owner: u64,
}

impl<H: Deref<Target = Header>, W: Words> MpscProducerCore<H, W> {
    /// A producer holding `slot` (claimed by the caller) as `owner`.
    pub fn new(h: H, words: W, capacity: u64, slot: usize, owner: u64) -> Self {
        let slot = slot.min(h.slots.len() - 1);
        MpscProducerCore {
            h,
            words,
            cap: capacity,
            slot,
            owner,
        }
    }

    /// `N`.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// The shared header.
    pub fn header(&self) -> &Header {
        &self.h
    }

    /// The handle the header was given by.
    pub fn handle(&self) -> &H {
        &self.h
    }

    /// The data area.
    pub fn words(&self) -> &W {
        &self.words
    }

    /// Reserves a record of `len` payload bytes. `Ok(None)`: not enough free space
    /// now. The payload bytes of a claim read as zero until written.
    pub fn try_reserve(&mut self, len: u64) -> Result<Option<Claim>, Error> {
        let size = record_size(len, self.cap)?;
        let slot = &self.h.slots[self.slot].0;
        let mut stale = 0u32;
        let pos = loop {
            // Acquire: pairs with the Release CAS of the producer that moved
            // `tail` here. That producer loaded `head` before its CAS and saw
            // `tail - head <= N`; our `head` load below is at least as new as
            // its (read-read coherence), so `tail - head <= N` holds for us too.
            let tail = self.h.tail.0.load(Ordering::Acquire);
            // Acquire: pairs with the consumer's Release store of `head` after it
            // zeroed the records it consumed: our writes to those bytes come after.
            let head = self.h.head.0.load(Ordering::Acquire);
            if head > tail {
                // The consumer got past the `tail` we loaded: it is stale, reload.
                // A `head` that stays ahead of every `tail` is corruption.
                stale += 1;
                if stale > 1 << 16 {
                    return Err(Error::corrupt(
                        "read position ahead of the reserve position",
                        head,
                        tail,
                    ));
                }
                super::sync::spin_loop();
                continue;
            }
            check_positions(head, tail, self.cap)?;
            if self.cap - (tail - head) < size {
                return Ok(None);
            }
            // Publish the claim before the CAS: if we die between the CAS and the
            // header, the consumer finds the record's size here.
            slot.claim_len.store(size, Ordering::Relaxed);
            slot.claim_pos.store(tail, Ordering::Release);
            if self
                .h
                .tail
                .0
                // Release: see the Acquire load of `tail` above. Relaxed on
                // failure: we start over.
                .compare_exchange_weak(tail, tail + size, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                break tail;
            }
        };
        let off = (pos % self.cap) as usize;
        self.words
            .word(off + 8)
            .store(self.owner, Ordering::Relaxed);
        // Release: the owner word is visible to a consumer that sees BUSY.
        self.words
            .word(off)
            .store(header_word(STATE_BUSY, len, pos), Ordering::Release);
        // Release: a consumer that reads NO_CLAIM (Acquire) then sees the header.
        slot.claim_pos.store(NO_CLAIM, Ordering::Release);
        Ok(Some(Claim { pos, len, size }))
    }

    /// Publishes a reserved record whose payload is written.
    pub fn commit(&self, claim: &Claim) {
        let off = (claim.pos % self.cap) as usize;
        // Release: the payload written before is visible to the consumer that
        // loads COMMITTED with Acquire.
        self.words.word(off).store(
            header_word(STATE_COMMITTED, claim.len, claim.pos),
            Ordering::Release,
        );
    }

    /// Gives a reserved record up: the consumer skips it silently.
    pub fn abort(&self, claim: &Claim) {
        let off = (claim.pos % self.cap) as usize;
        self.words.word(off).store(
            header_word(STATE_ABORTED, claim.len, claim.pos),
            Ordering::Release,
        );
    }

    /// After a commit or close: whether the consumer may be asleep (see `spsc`).
    pub fn consumer_needs_wake(&self) -> bool {
        self.h.data_wait.0.swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that this producer wants to sleep until a record of `len`
    /// fits, and re-checks. `Ok(true)`: sleep on `space_wait` while it is 1.
    pub fn prepare_sleep(&self, len: u64) -> Result<bool, Error> {
        let size = record_size(len, self.cap)?;
        self.h.space_wait.0.swap(1, Ordering::AcqRel);
        // The same loads as in `try_reserve`.
        let tail = self.h.tail.0.load(Ordering::Acquire);
        let head = self.h.head.0.load(Ordering::Acquire);
        if head > tail {
            return Ok(false); // stale `tail`: try again
        }
        check_positions(head, tail, self.cap)?;
        // Leave the word set even when there is room: other producers may sleep
        // on it, and the consumer's next release clears it with one wake.
        Ok(self.cap - (tail - head) < size)
    }
}

/// What the consumer finds at the read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing reserved.
    Empty,
    /// A record is reserved but not committed yet.
    Pending,
    /// An aborted record of `size` bytes: release it and look again.
    Aborted {
        /// Bytes in the ring.
        size: u64,
    },
    /// A committed record: `len` payload bytes at `offset` (contiguous in the
    /// mirrored area), `size` bytes in all.
    Ready {
        /// Payload offset.
        offset: usize,
        /// Payload length.
        len: usize,
        /// Bytes in the ring.
        size: u64,
    },
}

/// A record left behind by a dead producer, to be skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stuck {
    /// The dead producer's owner word.
    pub owner: u64,
    /// The record's size in the ring.
    pub size: u64,
}

/// The consumer of records.
pub struct MpscConsumerCore<H: Deref<Target = Header>, W: Words> {
    h: H,
    words: W,
    cap: u64,
    head: u64,
}

impl<H: Deref<Target = Header>, W: Words> MpscConsumerCore<H, W> {
    /// Starts consuming at the header's read position, checked against `capacity`.
    pub fn new(h: H, words: W, capacity: u64) -> Result<Self, Error> {
        let head = h.head.0.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        check_positions(head, tail, capacity)?;
        if !head.is_multiple_of(8) {
            return Err(Error::corrupt("read position not 8-aligned", head, 8));
        }
        Ok(MpscConsumerCore {
            h,
            words,
            cap: capacity,
            head,
        })
    }

    /// `N`.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// The shared header.
    pub fn header(&self) -> &Header {
        &self.h
    }

    /// The handle the header was given by.
    pub fn handle(&self) -> &H {
        &self.h
    }

    /// The data area.
    pub fn words(&self) -> &W {
        &self.words
    }

    /// The read position.
    pub fn position(&self) -> u64 {
        self.head
    }

    fn tail(&self) -> Result<u64, Error> {
        // Relaxed: the value only says whether something is reserved and bounds
        // what a header may claim. It is never behind `head`: every record we
        // passed was seen through an Acquire load of its header, which the
        // reserving CAS happens-before.
        let tail = self.h.tail.0.load(Ordering::Relaxed);
        check_positions(self.head, tail, self.cap)?;
        Ok(tail)
    }

    /// Bytes reserved beyond the read position (committed or not).
    pub fn reserved(&self) -> Result<u64, Error> {
        Ok(self.tail()? - self.head)
    }

    /// Decodes a non-zero header word at `pos`: (state, len, size).
    fn decode(&self, word: u64, pos: u64) -> Result<(u64, u64, u64), Error> {
        let len = word & 0xFFFF_FFFF;
        let state = (word >> 32) & 3;
        if word >> 34 != tag(pos) {
            return Err(Error::corrupt(
                "record header does not belong to its position",
                word >> 34,
                tag(pos),
            ));
        }
        let size = record_size(len, self.cap)
            .map_err(|_| Error::corrupt("record length beyond the capacity", len, self.cap))?;
        Ok((state, len, size))
    }

    /// Looks at the read position.
    pub fn peek(&mut self) -> Result<Next, Error> {
        let off = (self.head % self.cap) as usize;
        // Acquire: pairs with the producer's Release store of COMMITTED (or
        // BUSY): its payload (or owner word) is visible.
        let w = self.words.word(off).load(Ordering::Acquire);
        if w == 0 {
            return Ok(if self.tail()? == self.head {
                Next::Empty
            } else {
                Next::Pending
            });
        }
        let (state, len, size) = self.decode(w, self.head)?;
        // The reservation happened before the header store we synchronized
        // with, so `tail` covers the whole record unless it is corrupt.
        let tail = self.tail()?;
        if size > tail - self.head {
            return Err(Error::corrupt(
                "record extends past the reserve position",
                self.head + size,
                tail,
            ));
        }
        match state {
            STATE_COMMITTED => Ok(Next::Ready {
                offset: off + RECORD_HEADER as usize,
                len: len as usize,
                size,
            }),
            STATE_ABORTED => Ok(Next::Aborted { size }),
            STATE_BUSY => Ok(Next::Pending),
            _ => Err(Error::corrupt("record state", state, STATE_ABORTED)),
        }
    }

    /// Zeroes the record of `size` bytes at the read position and moves past it.
    /// `size` must come from [`MpscConsumerCore::peek`] or
    /// [`MpscConsumerCore::stuck`].
    pub fn release(&mut self, size: u64) {
        let size = size.min(self.cap);
        self.words
            .zero((self.head % self.cap) as usize, size as usize);
        self.head += size;
        // Release: our reads and the zeroing happen before a producer, which
        // loads `head` with Acquire, reuses the bytes.
        self.h.head.0.store(self.head, Ordering::Release);
    }

    /// For a pending record: if its producer is dead (`is_dead(owner)`), the
    /// record to skip. `Ok(None)`: keep waiting (the producer is alive, or the
    /// record got committed meanwhile).
    pub fn stuck(&self, mut is_dead: impl FnMut(u64) -> bool) -> Result<Option<Stuck>, Error> {
        let off = (self.head % self.cap) as usize;
        let tail = self.tail()?;
        if tail == self.head {
            return Ok(None);
        }
        let w = self.words.word(off).load(Ordering::Acquire);
        if w != 0 {
            let (state, _, size) = self.decode(w, self.head)?;
            if state != STATE_BUSY {
                return Ok(None);
            }
            let owner = self.words.word(off + 8).load(Ordering::Relaxed);
            return Ok(is_dead(owner).then_some(Stuck { owner, size }));
        }
        // No header yet: the reserving producer is between its CAS and its header
        // store. Its slot's claim says `head` until the header is written.
        let mut cands: [Option<Stuck>; super::header::MAX_PRODUCERS] =
            [None; super::header::MAX_PRODUCERS];
        for (c, s) in cands.iter_mut().zip(&self.h.slots) {
            // Acquire: pairs with the Release clear after the header store.
            if s.0.claim_pos.load(Ordering::Acquire) == self.head {
                let size = s.0.claim_len.load(Ordering::Relaxed);
                *c = Some(Stuck {
                    owner: s.0.side.owner.load(Ordering::Acquire),
                    size,
                });
            }
        }
        if self.words.word(off).load(Ordering::Acquire) != 0 {
            return Ok(None); // the header arrived meanwhile
        }
        let found: usize = cands.iter().flatten().count();
        if found == 0 {
            return Err(Error::corrupt(
                "reserved record with neither a header nor a claimant",
                self.head,
                tail,
            ));
        }
        if cands.iter().flatten().any(|c| !is_dead(c.owner)) {
            return Ok(None);
        }
        // Every claimant is dead. With one, it is the reserving producer (a live
        // reserver keeps its claim until its header is written). With several,
        // some failed their CAS: keep the sizes that end where a record starts.
        let plausible = |size: u64| -> bool {
            if size < RECORD_HEADER || !size.is_multiple_of(8) || size > tail - self.head {
                return false;
            }
            let next = self.head + size;
            if next == tail {
                return true;
            }
            let nw = self
                .words
                .word((next % self.cap) as usize)
                .load(Ordering::Acquire);
            nw != 0 && nw >> 34 == tag(next)
                || self
                    .h
                    .slots
                    .iter()
                    .any(|s| s.0.claim_pos.load(Ordering::Acquire) == next)
        };
        let mut pick: Option<Stuck> = None;
        for c in cands.iter().flatten() {
            if found > 1 && !plausible(c.size) {
                continue;
            }
            if found == 1 && !(RECORD_HEADER..=tail - self.head).contains(&c.size) {
                return Err(Error::corrupt(
                    "dead producer's claim size",
                    c.size,
                    tail - self.head,
                ));
            }
            match pick {
                Some(p) if p.size != c.size => {
                    return Err(Error::corrupt(
                        "dead producers' claims disagree on the record size",
                        p.size,
                        c.size,
                    ))
                }
                _ => pick = Some(*c),
            }
        }
        pick.map(Some).ok_or(Error::corrupt(
            "no dead producer's claim fits the reserved space",
            self.head,
            tail,
        ))
    }

    /// After a release: whether a producer may be asleep (wakes all of them).
    pub fn producers_need_wake(&self) -> bool {
        self.h.space_wait.0.swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that the consumer wants to sleep until a record is committed,
    /// and re-checks. `Ok(true)`: sleep on `data_wait` while it is 1.
    pub fn prepare_sleep(&mut self) -> Result<bool, Error> {
        self.h.data_wait.0.swap(1, Ordering::AcqRel);
        if matches!(self.peek()?, Next::Ready { .. }) {
            self.cancel_sleep();
            return Ok(false);
        }
        Ok(true)
    }

    /// Withdraws an announcement from [`MpscConsumerCore::prepare_sleep`].
    pub fn cancel_sleep(&self) {
        // An RMW, not a plain store: the peer's `swap(0)` may come between our
        // `swap(1)` and this, and our next `swap(1)` must still synchronize with
        // it. It does only through a chain of RMWs (a release sequence); a
        // Relaxed store here would break the chain and lose a wake-up (loom
        // found exactly that).
        self.h.data_wait.0.swap(0, Ordering::AcqRel);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::header::{pack_owner, KIND_MPSC};
    use super::*;

    /// A plain (non-mirrored) word store: records never cross the end here
    /// because the tests use sizes that divide the capacity.
    struct Plain(std::vec::Vec<AtomicU64>);
    impl Words for &Plain {
        fn word(&self, offset: usize) -> &AtomicU64 {
            &self.0[(offset / 8) % self.0.len()]
        }
        fn zero(&self, offset: usize, len: usize) {
            for i in (offset..offset + len).step_by(8) {
                self.word(i).store(0, Ordering::Relaxed);
            }
        }
    }

    fn setup(cap: u64) -> (Header, Plain) {
        let h = Header::zeroed();
        h.init(KIND_MPSC, cap, 4096, 0);
        (h, Plain((0..cap / 8).map(|_| AtomicU64::new(0)).collect()))
    }

    #[test]
    fn records_in_reservation_order() {
        let (h, w) = setup(128);
        let mut a = MpscProducerCore::new(&h, &w, 128, 0, pack_owner(1, 1));
        let mut b = MpscProducerCore::new(&h, &w, 128, 1, pack_owner(2, 1));
        let mut c = MpscConsumerCore::new(&h, &w, 128).unwrap();
        assert_eq!(c.peek().unwrap(), Next::Empty);
        let ca = a.try_reserve(5).unwrap().unwrap();
        let cb = b.try_reserve(16).unwrap().unwrap();
        assert_eq!((ca.pos, ca.size, cb.pos, cb.size), (0, 24, 24, 32));
        b.commit(&cb);
        assert_eq!(c.peek().unwrap(), Next::Pending, "a's record comes first");
        a.commit(&ca);
        assert_eq!(
            c.peek().unwrap(),
            Next::Ready {
                offset: 16,
                len: 5,
                size: 24
            }
        );
        c.release(24);
        assert!(matches!(c.peek().unwrap(), Next::Ready { len: 16, .. }));
        c.release(32);
        assert_eq!(c.peek().unwrap(), Next::Empty);
        assert!(w.0.iter().all(|x| x.load(Ordering::Relaxed) == 0), "zeroed");
        // Full: 128 - 0 buffered; a 112-byte payload fills the ring exactly.
        let big = a.try_reserve(112).unwrap().unwrap();
        assert_eq!(big.size, 128);
        assert_eq!(b.try_reserve(0).unwrap(), None);
        a.abort(&big);
        assert_eq!(c.peek().unwrap(), Next::Aborted { size: 128 });
        c.release(128);
        assert_eq!(c.peek().unwrap(), Next::Empty);
        assert!(matches!(a.try_reserve(113), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn dead_producers_are_skipped() {
        let (h, w) = setup(256);
        let (pa, pb) = (pack_owner(1, 1), pack_owner(2, 1));
        h.slots[0].0.side.owner.store(pa, Ordering::Relaxed);
        h.slots[1].0.side.owner.store(pb, Ordering::Relaxed);
        let mut a = MpscProducerCore::new(&h, &w, 256, 0, pa);
        let mut b = MpscProducerCore::new(&h, &w, 256, 1, pb);
        let mut c = MpscConsumerCore::new(&h, &w, 256).unwrap();
        // a dies after its header (BUSY), b commits behind it.
        let ca = a.try_reserve(10).unwrap().unwrap();
        let cb = b.try_reserve(3).unwrap().unwrap();
        b.commit(&cb);
        assert_eq!(c.peek().unwrap(), Next::Pending);
        assert_eq!(c.stuck(|_| false).unwrap(), None, "alive: wait");
        let s = c.stuck(|o| o == pa).unwrap().unwrap();
        assert_eq!(
            s,
            Stuck {
                owner: pa,
                size: ca.size
            }
        );
        c.release(s.size);
        assert!(matches!(c.peek().unwrap(), Next::Ready { len: 3, .. }));
        c.release(cb.size);
        // a dies between its CAS and its header: only the claim tells the size.
        let pos = h.tail.0.load(Ordering::Relaxed);
        h.slots[0].0.claim_len.store(40, Ordering::Relaxed);
        h.slots[0].0.claim_pos.store(pos, Ordering::Relaxed);
        h.tail.0.store(pos + 40, Ordering::Relaxed);
        assert_eq!(c.peek().unwrap(), Next::Pending);
        assert_eq!(c.stuck(|_| false).unwrap(), None);
        let s = c.stuck(|o| o == pa).unwrap().unwrap();
        assert_eq!(s.size, 40);
        c.release(40);
        assert_eq!(c.peek().unwrap(), Next::Empty);
        // A reservation nobody claims is corruption, not a hang.
        h.tail.0.store(pos + 80, Ordering::Relaxed);
        assert!(matches!(c.stuck(|_| true), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn hostile_headers_are_corruption() {
        let (h, w) = setup(128);
        let mut c = MpscConsumerCore::new(&h, &w, 128).unwrap();
        h.tail.0.store(32, Ordering::Relaxed);
        // Wrong position tag.
        (&w).word(0)
            .store(header_word(STATE_COMMITTED, 4, 8), Ordering::Relaxed);
        assert!(matches!(c.peek(), Err(Error::Corrupt { .. })));
        // Longer than the reservation.
        (&w).word(0)
            .store(header_word(STATE_COMMITTED, 40, 0), Ordering::Relaxed);
        assert!(matches!(c.peek(), Err(Error::Corrupt { .. })));
        // Longer than the ring.
        (&w).word(0)
            .store(header_word(STATE_COMMITTED, 1000, 0), Ordering::Relaxed);
        assert!(matches!(c.peek(), Err(Error::Corrupt { .. })));
        // State 0 with a length.
        (&w).word(0).store(header_word(0, 4, 0), Ordering::Relaxed);
        assert!(matches!(c.peek(), Err(Error::Corrupt { .. })));
        assert_eq!(c.position(), 0, "nothing consumed");
    }
}
