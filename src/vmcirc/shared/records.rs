//! Shared MPSC record rings (Linux): [`MpscRing`], any number of
//! [`MpscProducer`]s (up to 16 live at once, in any processes) and one
//! [`MpscConsumer`]. The protocol is in `mpsc.rs`.
//!
//! ```
//! use std::time::Duration;
//! use vmcirc::vmcirc::shared::MpscRing;
//!
//! let ring = MpscRing::create(64 * 1024)?;
//! let mut a = ring.producer()?;
//! let mut b = ring.producer()?;
//! let mut rx = ring.consumer()?;
//! a.send(b"from a", None)?;
//! let mut r = b.try_reserve(6)?;                  // zero-copy: write in place
//! r.copy_from_slice(b"from b");
//! r.commit();
//! assert_eq!(&*rx.recv(Some(Duration::ZERO))?, b"from a");
//! assert_eq!(&*rx.recv(Some(Duration::ZERO))?, b"from b");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Records come out in reservation order, each exactly once, never half
//! written. A producer that dies between reserving and committing leaves a
//! record the consumer cannot read: once the record has been pending for the
//! stall timeout (default 100 ms) the consumer checks the producer's liveness
//! and, if it is dead, skips the record, counts it ([`MpscConsumer::lost`]) and
//! reports it once as [`Error::Lost`]. A live but slow producer is waited for:
//! its slot is never taken from it (it would write into reused space).
//!
//! End of stream: [`MpscConsumer::recv`] returns [`Error::Closed`] when the ring
//! is drained, at least one producer has attached, and none is attached and
//! alive now. Producers that attach later start a new stream; a consumer that
//! needs a fixed set of producers waits for [`MpscConsumer::producers_seen`].

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::futex;
use super::header::{Header, KIND_MPSC, NO_CLAIM, STATE_ATTACHED, STATE_CLOSED};
use super::liveness::{self, Me, Watch};
use super::mpsc::{max_payload, Claim, MpscConsumerCore, MpscProducerCore, Next};
use super::region::{Mapped, Options, Region};
use super::stream::{SLICE, SPIN};
use super::{Error, Side};

/// A shared MPSC record ring: the handle that creates, shares and attaches.
#[derive(Debug, Clone)]
pub struct MpscRing {
    region: Arc<Region>,
}

ring_handle!(MpscRing, KIND_MPSC);

impl MpscRing {
    /// Attaches a producer in a free slot (one never used, closed, or whose owner
    /// died and whose last claim the consumer has passed).
    pub fn producer(&self) -> Result<MpscProducer, Error> {
        let me = liveness::me();
        let h = self.region.header();
        let head = h.head.0.load(Ordering::Acquire);
        let mut watch = Watch::default();
        let mut slot = None;
        for (i, s) in h.slots.iter().enumerate() {
            let side = &s.0.side;
            if side.claim_once(Side::Producer, me.owner, me.pidns).is_ok() {
                slot = Some(i);
                break;
            }
            let owner = side.owner();
            let claim = s.0.claim_pos.load(Ordering::Acquire);
            let resolved = claim == NO_CLAIM || claim < head;
            let gone = side.state() == STATE_CLOSED
                || watch.is_dead(owner, side.pidns.load(Ordering::Relaxed), me.pidns);
            if gone && resolved && side.take_over(owner, me.owner, me.pidns) {
                s.0.claim_pos.store(NO_CLAIM, Ordering::Relaxed);
                slot = Some(i);
                break;
            }
        }
        let slot = slot.ok_or(Error::NoProducerSlot)?;
        h.producers_seen.0.fetch_add(1, Ordering::AcqRel);
        let map = Mapped(self.region.clone());
        Ok(MpscProducer {
            core: MpscProducerCore::new(map.clone(), map, self.capacity() as u64, slot, me.owner),
            slot,
            me,
            watch: Watch::default(),
            spin: SPIN,
        })
    }

    /// Attaches the consumer (once per ring).
    pub fn consumer(&self) -> Result<MpscConsumer, Error> {
        let me = liveness::me();
        let map = Mapped(self.region.clone());
        let core = MpscConsumerCore::new(map.clone(), map, self.capacity() as u64)?;
        self.region
            .header()
            .consumer
            .0
            .claim_once(Side::Consumer, me.owner, me.pidns)?;
        Ok(MpscConsumer {
            core,
            me,
            watches: Default::default(),
            spin: SPIN,
            stall: Duration::from_millis(100),
            pending_since: None,
            stuck_checked: None,
            lost_records: 0,
            lost_bytes: 0,
        })
    }

    /// The longest record payload this ring takes.
    pub fn max_record(&self) -> usize {
        max_payload(self.capacity() as u64) as usize
    }
}

/// How often a stalled record's owner is checked after the stall timeout.
const STUCK_RECHECK: Duration = Duration::from_millis(10);

fn slice_until(deadline: Option<Instant>, now: Instant) -> Duration {
    deadline.map_or(SLICE, |d| d.saturating_duration_since(now).min(SLICE))
}

/// A record producer. `Send`, not `Sync`.
pub struct MpscProducer {
    core: MpscProducerCore<Mapped, Mapped>,
    slot: usize,
    me: Me,
    watch: Watch,
    spin: Duration,
}

impl std::fmt::Debug for MpscProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpscProducer")
            .field("slot", &self.slot)
            .finish()
    }
}

/// A reserved record: write the payload (it reads as zeros until written),
/// then [`Reservation::commit`]. Dropped without a commit, it is aborted (the
/// consumer skips it silently).
pub struct Reservation<'a> {
    producer: &'a mut MpscProducer,
    claim: Claim,
    done: bool,
}

impl MpscProducer {
    fn h(&self) -> &Header {
        self.core.header()
    }

    /// The producer slot this producer holds (0..16).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// How long a wait busy-polls before sleeping (default 20 us).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    fn check_consumer(&mut self, liveness: bool) -> Result<(), Error> {
        let c = &self.core.header().consumer.0;
        let state = c.state();
        if state == STATE_CLOSED {
            return Err(Error::Closed(Side::Consumer));
        }
        if liveness && state == STATE_ATTACHED {
            let owner = c.owner();
            if self
                .watch
                .is_dead(owner, c.pidns.load(Ordering::Relaxed), self.me.pidns)
            {
                return Err(Error::PeerDied {
                    side: Side::Consumer,
                    pid: owner as u32,
                });
            }
        }
        Ok(())
    }

    /// Reserves a record of `len` bytes without blocking ([`Error::WouldBlock`]
    /// when it does not fit now).
    pub fn try_reserve(&mut self, len: usize) -> Result<Reservation<'_>, Error> {
        self.check_consumer(false)?;
        match self.core.try_reserve(len as u64)? {
            Some(claim) => Ok(Reservation {
                producer: self,
                claim,
                done: false,
            }),
            None => Err(Error::WouldBlock),
        }
    }

    /// Reserves a record of `len` bytes, blocking up to `timeout` (`None`: for
    /// ever) for space. Errors also when the consumer closed or died.
    pub fn reserve(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Reservation<'_>, Error> {
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        // Check the peer's liveness before the first sleep, then every SLICE
        // (a sleep is a syscall anyway; the fast path makes none).
        let mut checked: Option<Instant> = None;
        let mut spins = 0u32;
        let claim = loop {
            self.check_consumer(false)?;
            if let Some(c) = self.core.try_reserve(len as u64)? {
                break c;
            }
            spins += 1;
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::TimedOut);
            }
            if now - start < self.spin {
                // Let the peer run if it waits for this CPU (a loaded machine).
                std::thread::yield_now();
                continue;
            }
            if checked.is_none_or(|c| now - c >= SLICE) {
                checked = Some(now);
                self.check_consumer(true)?;
            }
            if self.core.prepare_sleep(len as u64)? {
                if self.h().consumer.0.state() == STATE_CLOSED {
                    continue;
                }
                futex::wait(&self.h().space_wait.0, 1, slice_until(deadline, now));
            }
        };
        Ok(Reservation {
            producer: self,
            claim,
            done: false,
        })
    }

    /// Sends `data` as one record, blocking for space up to `timeout`.
    pub fn send(&mut self, data: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        let mut r = self.reserve(data.len(), timeout)?;
        r.copy_from_slice(data);
        r.commit();
        Ok(())
    }

    /// Sends `data` as one record if it fits now ([`Error::WouldBlock`] if not).
    pub fn try_send(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut r = self.try_reserve(data.len())?;
        r.copy_from_slice(data);
        r.commit();
        Ok(())
    }

    fn wake_consumer(&self) {
        if self.core.consumer_needs_wake() {
            futex::wake_all(&self.h().data_wait.0);
        }
    }
}

impl Drop for MpscProducer {
    fn drop(&mut self) {
        self.h().slots[self.slot].0.side.close();
        self.wake_consumer();
    }
}

impl Reservation<'_> {
    /// Publishes the record and wakes the consumer if it may be asleep.
    pub fn commit(mut self) {
        self.done = true;
        self.producer.core.commit(&self.claim);
        self.producer.wake_consumer();
    }

    /// The record's reserve position (its order among all records).
    pub fn position(&self) -> u64 {
        self.claim.pos
    }
}

impl Deref for Reservation<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let off = self.claim.payload_offset(self.producer.core.capacity());
        // SAFETY: pos % N + 16 + len <= pos % N + size <= 2N: inside the window.
        // The reservation owns these bytes (the CAS gave them to this producer
        // alone, and the consumer does not read them before the commit); they are
        // initialised (zeroed by the consumer or at creation).
        unsafe {
            std::slice::from_raw_parts(
                self.producer.core.handle().0.data().add(off),
                self.claim.len as usize,
            )
        }
    }
}

impl DerefMut for Reservation<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let off = self.claim.payload_offset(self.producer.core.capacity());
        // SAFETY: as in `deref`; `&mut self` makes this the only slice.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.producer.core.handle().0.data().add(off),
                self.claim.len as usize,
            )
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.producer.core.abort(&self.claim);
            self.producer.wake_consumer();
        }
    }
}

/// The record consumer. `Send`, not `Sync`.
pub struct MpscConsumer {
    core: MpscConsumerCore<Mapped, Mapped>,
    me: Me,
    watches: std::collections::HashMap<u64, Watch>,
    spin: Duration,
    stall: Duration,
    pending_since: Option<Instant>,
    stuck_checked: Option<Instant>,
    lost_records: u64,
    lost_bytes: u64,
}

impl std::fmt::Debug for MpscConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpscConsumer")
            .field("position", &self.core.position())
            .field("lost_records", &self.lost_records)
            .finish()
    }
}

/// A received record: the payload, read in place. Dropping it gives the space
/// back to the producers.
pub struct Record<'a> {
    consumer: &'a mut MpscConsumer,
    offset: usize,
    len: usize,
    size: u64,
}

impl Deref for Record<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: offset = head % N + 16 and len + 16 <= size <= tail - head (checked
        // by `peek`), so the range ends inside the 2N window; the record is
        // committed (Acquire) and nobody writes it until we release it.
        unsafe {
            std::slice::from_raw_parts(
                self.consumer.core.handle().0.data().add(self.offset),
                self.len,
            )
        }
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.consumer.release(self.size);
    }
}

impl MpscConsumer {
    fn h(&self) -> &Header {
        self.core.header()
    }

    /// How long a wait busy-polls before sleeping (default 20 us).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// How long a reserved record may stay uncommitted before its producer's
    /// liveness is checked (default 100 ms).
    pub fn set_stall_timeout(&mut self, stall: Duration) {
        self.stall = stall;
    }

    /// Records (and their bytes in the ring) skipped because their producer died
    /// before committing them.
    pub fn lost(&self) -> (u64, u64) {
        (self.lost_records, self.lost_bytes)
    }

    /// How many producers have attached to this ring so far.
    pub fn producers_seen(&self) -> u32 {
        self.h().producers_seen.0.load(Ordering::Acquire)
    }

    fn release(&mut self, size: u64) {
        self.core.release(size);
        self.pending_since = None;
        self.stuck_checked = None;
        if self.core.producers_need_wake() {
            futex::wake_all(&self.h().space_wait.0);
        }
    }

    fn is_dead(&mut self, owner: u64, pidns: u64) -> bool {
        let my = self.me.pidns;
        self.watches
            .entry(owner)
            .or_default()
            .is_dead(owner, pidns, my)
    }

    /// True when some producer is attached and (if `check` ) alive.
    fn producers_attached(&mut self, check: bool) -> bool {
        let mut any = false;
        for i in 0..self.h().slots.len() {
            let side = &self.core.header().slots[i].0.side;
            if side.state() != STATE_ATTACHED {
                continue;
            }
            let (owner, ns) = (side.owner(), side.pidns.load(Ordering::Relaxed));
            if !check || !self.is_dead(owner, ns) {
                any = true;
            }
        }
        any
    }

    /// Skips the pending record if its producer is dead.
    fn try_skip(&mut self) -> Result<(), Error> {
        let mut watches = std::mem::take(&mut self.watches);
        let my = self.me.pidns;
        let h = self.core.header();
        let stuck = self.core.stuck(|owner| {
            // The owner's namespace, if a slot still names it.
            let ns = h
                .slots
                .iter()
                .find(|s| s.0.side.owner() == owner)
                .map_or(0, |s| s.0.side.pidns.load(Ordering::Relaxed));
            watches.entry(owner).or_default().is_dead(owner, ns, my)
        });
        self.watches = watches;
        if let Some(s) = stuck? {
            self.release(s.size);
            self.lost_records += 1;
            self.lost_bytes += s.size;
            return Err(Error::Lost {
                pid: s.owner as u32,
                bytes: s.size,
            });
        }
        Ok(())
    }

    /// The next record without blocking: [`Error::WouldBlock`] when there is
    /// none yet, [`Error::Closed`] at the end of the stream, [`Error::Lost`] once
    /// per skipped record of a dead producer.
    pub fn try_recv(&mut self) -> Result<Record<'_>, Error> {
        self.recv_inner(Some(Duration::ZERO))
    }

    /// The next record, blocking up to `timeout` (`None`: for ever). Errors as
    /// [`MpscConsumer::try_recv`], and [`Error::TimedOut`].
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Record<'_>, Error> {
        self.recv_inner(timeout)
    }

    fn recv_inner(&mut self, timeout: Option<Duration>) -> Result<Record<'_>, Error> {
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        // Check the peer's liveness before the first sleep, then every SLICE
        // (a sleep is a syscall anyway; the fast path makes none).
        let mut checked: Option<Instant> = None;
        let mut spins = 0u32;
        loop {
            let next = self.core.peek()?;
            let now_pending = match next {
                Next::Ready { offset, len, size } => {
                    return Ok(Record {
                        consumer: self,
                        offset,
                        len,
                        size,
                    })
                }
                Next::Aborted { size } => {
                    self.release(size);
                    continue;
                }
                Next::Empty => {
                    self.pending_since = None;
                    self.stuck_checked = None;
                    if self.producers_seen() > 0 && !self.producers_attached(false) {
                        // Re-check: a record committed just before the close.
                        if matches!(self.core.peek()?, Next::Empty) {
                            return Err(Error::Closed(Side::Producer));
                        }
                        continue;
                    }
                    false
                }
                Next::Pending => {
                    let since = *self.pending_since.get_or_insert_with(Instant::now);
                    // After the stall timeout, check the owner every few ms (a
                    // liveness check is a syscall; a slow producer may hold
                    // its record for long).
                    if since.elapsed() >= self.stall
                        && self
                            .stuck_checked
                            .is_none_or(|c| c.elapsed() >= STUCK_RECHECK)
                    {
                        self.stuck_checked = Some(Instant::now());
                        self.try_skip()?;
                    }
                    true
                }
            };
            spins += 1;
            if !spins.is_multiple_of(64) && timeout != Some(Duration::ZERO) {
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(if timeout == Some(Duration::ZERO) {
                    Error::WouldBlock
                } else {
                    Error::TimedOut
                });
            }
            if now - start < self.spin {
                std::thread::yield_now();
                continue;
            }
            if checked.is_none_or(|c| now - c >= SLICE) {
                checked = Some(now);
                if !now_pending && self.producers_seen() > 0 && !self.producers_attached(true) {
                    if matches!(self.core.peek()?, Next::Empty) {
                        return Err(Error::Closed(Side::Producer));
                    }
                    continue;
                }
            }
            if self.core.prepare_sleep()? {
                let mut nap = slice_until(deadline, now);
                if let Some(since) = self.pending_since {
                    nap = nap.min(
                        self.stall
                            .saturating_sub(since.elapsed())
                            .max(STUCK_RECHECK),
                    );
                }
                futex::wait(&self.h().data_wait.0, 1, nap);
            }
        }
    }
}

impl Drop for MpscConsumer {
    fn drop(&mut self) {
        self.h().consumer.0.close();
        if self.core.producers_need_wake() {
            futex::wake_all(&self.h().space_wait.0);
        }
    }
}
