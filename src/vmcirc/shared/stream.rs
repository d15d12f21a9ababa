//! The SPSC byte stream between processes (Linux): [`SpscRing`] and its
//! [`Producer`] / [`Consumer`] halves, with blocking waits and `std::io`.
//!
//! ```
//! use std::io::{Read, Write};
//! use vmcirc::vmcirc::shared::SpscRing;
//!
//! let ring = SpscRing::create(64 * 1024)?;   // a sealed memfd; share it with a child
//! let mut tx = ring.producer()?;
//! let mut rx = ring.consumer()?;
//! tx.write_all(b"hello")?;
//! drop(tx);                                   // end of stream
//! let mut s = String::new();
//! rx.read_to_string(&mut s)?;
//! assert_eq!(s, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! One stream per ring: each side is attached once (a second `producer()` or
//! `consumer()`, in any process, is [`Error::SideTaken`]). The fast path makes
//! no syscall: a wait first polls briefly (default 20 us, [`Producer::set_spin`],
//! yielding the CPU every 64 polls)
//! and then sleeps on the header's futex word in slices of 50 ms, checking the
//! peer's liveness between slices (see `liveness.rs`). So a peer killed with
//! SIGKILL is noticed within about 50 ms.
//!
//! End of stream: dropping (or [`Producer::close`]) the producer marks it
//! closed; the consumer drains what was committed, then reads end-of-stream
//! (`Ok(0)`). If the producer dies without closing, the consumer drains, then
//! gets [`Error::PeerDied`]. A producer whose consumer closed gets
//! [`Error::Closed`] on its next write (like `EPIPE`), and if the consumer died,
//! [`Error::PeerDied`] once it has to wait for space.
//!
//! The peer is untrusted: every position it writes is validated and offsets are
//! computed from this side's own counter and its own copy of the capacity, so
//! no value in shared memory can make this process access memory outside the
//! mapping. A hostile peer *can* change bytes while we read them (shared
//! memory): a consumer that parses must treat the bytes as untrusted input.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::futex;
use super::header::{Header, KIND_SPSC, STATE_ATTACHED, STATE_CLOSED};
use super::liveness::{self, Me, Watch};
use super::region::{Mapped, Options, Region};
use super::spsc::{ConsumerCore, ProducerCore};
use super::{Error, Side};

/// How long a blocked side sleeps before it checks the peer's liveness again.
pub(crate) const SLICE: Duration = Duration::from_millis(50);
/// Default busy-wait before sleeping.
pub(crate) const SPIN: Duration = Duration::from_micros(20);

/// A shared SPSC byte ring: the handle that creates, shares and attaches.
#[derive(Debug, Clone)]
pub struct SpscRing {
    region: Arc<Region>,
}

ring_handle!(SpscRing, KIND_SPSC);

impl SpscRing {
    /// Attaches this process as the ring's producer (once per ring).
    pub fn producer(&self) -> Result<Producer, Error> {
        let me = liveness::me();
        let core = ProducerCore::new(Mapped(self.region.clone()), self.capacity() as u64)?;
        core.header()
            .producer
            .0
            .claim_once(Side::Producer, me.owner, me.pidns)?;
        Ok(Producer {
            core,
            me,
            watch: Watch::default(),
            spin: SPIN,
            closed: false,
        })
    }

    /// Attaches this process as the ring's consumer (once per ring).
    pub fn consumer(&self) -> Result<Consumer, Error> {
        let me = liveness::me();
        let core = ConsumerCore::new(Mapped(self.region.clone()), self.capacity() as u64)?;
        core.header()
            .consumer
            .0
            .claim_once(Side::Consumer, me.owner, me.pidns)?;
        Ok(Consumer {
            core,
            me,
            watch: Watch::default(),
            spin: SPIN,
            closed: false,
        })
    }
}

/// The time left until `deadline`, at most [`SLICE`].
fn slice_until(deadline: Option<Instant>, now: Instant) -> Duration {
    deadline.map_or(SLICE, |d| d.saturating_duration_since(now).min(SLICE))
}

/// The writing half. `Send`, not `Sync`.
#[derive(Debug)]
pub struct Producer {
    core: ProducerCore<Mapped>,
    me: Me,
    watch: Watch,
    spin: Duration,
    closed: bool,
}

impl std::fmt::Debug for ProducerCore<Mapped> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerCore")
            .field("position", &self.position())
            .field("free", &self.free())
            .finish()
    }
}

impl std::fmt::Debug for ConsumerCore<Mapped> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerCore")
            .field("position", &self.position())
            .field("available", &self.available())
            .finish()
    }
}

impl Producer {
    fn h(&self) -> &Header {
        self.core.header()
    }

    fn data(&self) -> *mut u8 {
        self.core.handle().0.data()
    }

    /// `N`.
    pub fn capacity(&self) -> usize {
        self.core.capacity() as usize
    }

    /// Bytes committed so far (the write position).
    pub fn position(&self) -> u64 {
        self.core.position()
    }

    /// How long a wait busy-polls before sleeping (default 20 us; zero: sleep at
    /// once, leaving the CPU to others).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// All free space, one contiguous slice at the write position (may be empty).
    /// Write into it, then [`Producer::commit`].
    pub fn writable(&mut self) -> Result<&mut [u8], Error> {
        let free = self.core.refresh()? as usize;
        let off = self.core.write_offset();
        // SAFETY: off < N and free <= N: inside the 2N window. The bytes
        // [tail, head + N) belong to the producer until it commits them (the
        // consumer never reads them), `&mut self` makes this the only slice, and
        // the file's bytes are initialised (zero-filled at creation).
        Ok(unsafe { std::slice::from_raw_parts_mut(self.data().add(off), free) })
    }

    /// Publishes `n` bytes written into [`Producer::writable`], and wakes the
    /// consumer if it may be asleep.
    pub fn commit(&mut self, n: usize) -> Result<(), Error> {
        self.core.commit(n as u64)?;
        self.wake_consumer();
        Ok(())
    }

    fn wake_consumer(&self) {
        if self.core.consumer_needs_wake() {
            futex::wake_all(&self.h().data_wait.0);
        }
    }

    fn check_consumer_closed(&self) -> Result<(), Error> {
        if self.h().consumer.0.state() == STATE_CLOSED {
            return Err(Error::Closed(Side::Consumer));
        }
        Ok(())
    }

    fn check_consumer_alive(&mut self) -> Result<(), Error> {
        let c = &self.core.header().consumer.0;
        let (owner, ns) = (
            c.owner(),
            c.pidns.load(std::sync::atomic::Ordering::Relaxed),
        );
        if c.state() == STATE_ATTACHED && self.watch.is_dead(owner, ns, self.me.pidns) {
            return Err(Error::PeerDied {
                side: Side::Consumer,
                pid: owner as u32,
            });
        }
        Ok(())
    }

    /// Copies what fits of `data` without blocking; returns the count (0 when full).
    pub fn push(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check_consumer_closed()?;
        let free = self.core.free_at_least(data.len() as u64)? as usize;
        let n = free.min(data.len());
        if n > 0 {
            self.copy_in(&data[..n]);
            self.commit(n)?;
        }
        Ok(n)
    }

    /// All of `data` or nothing, without blocking: [`Error::WouldBlock`] when it
    /// does not fit now.
    pub fn try_push(&mut self, data: &[u8]) -> Result<(), Error> {
        self.check_consumer_closed()?;
        if data.len() > self.capacity() {
            return Err(Error::TooLarge {
                len: data.len() as u64,
                max: self.capacity() as u64,
            });
        }
        if (self.core.free_at_least(data.len() as u64)? as usize) < data.len() {
            return Err(Error::WouldBlock);
        }
        self.copy_in(data);
        self.commit(data.len())
    }

    fn copy_in(&mut self, data: &[u8]) {
        let off = self.core.write_offset();
        debug_assert!(data.len() as u64 <= self.core.free());
        // SAFETY: data.len() <= free <= N and off < N: inside the window, in the
        // producer's free space (see `writable`).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.data().add(off), data.len()) };
    }

    /// Blocks until at least `min` bytes (clamped to `1..=N`) are free; returns
    /// the free count. `timeout: None` waits for ever. Errors: [`Error::TimedOut`],
    /// [`Error::Closed`] (the consumer closed), [`Error::PeerDied`].
    pub fn wait_writable(&mut self, min: usize, timeout: Option<Duration>) -> Result<usize, Error> {
        let min = (min.max(1) as u64).min(self.core.capacity());
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        // Check the peer's liveness before the first sleep, then every SLICE
        // (a sleep is a syscall anyway; the fast path makes none).
        let mut checked: Option<Instant> = None;
        let mut spins = 0u32;
        loop {
            self.check_consumer_closed()?;
            let free = self.core.free_at_least(min)?;
            if free >= min {
                return Ok(free as usize);
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
                self.check_consumer_alive()?;
            }
            if self.core.prepare_sleep(min)? {
                if self.h().consumer.0.state() == STATE_CLOSED {
                    self.core.cancel_sleep();
                    continue;
                }
                futex::wait(&self.h().space_wait.0, 1, slice_until(deadline, now));
            }
        }
    }

    /// Writes all of `data`, blocking for space as needed (`timeout` bounds the
    /// whole call; on an error, the bytes written before it stay committed).
    pub fn push_all(&mut self, mut data: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        while !data.is_empty() {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let free = self.wait_writable(1, left)?;
            let n = free.min(data.len());
            self.copy_in(&data[..n]);
            self.commit(n)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Closes the stream: the consumer drains and then reads end-of-stream.
    /// (Dropping the producer does the same.)
    pub fn close(mut self) {
        self.do_close();
    }

    /// Gives up without closing: the stream does not end cleanly, so once this
    /// process exits the consumer drains and then gets [`Error::PeerDied`]
    /// (for a sender that failed half way, e.g. on an input error).
    pub fn abandon(mut self) {
        self.closed = true;
    }

    fn do_close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.h().producer.0.close();
            self.wake_consumer();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.do_close();
    }
}

impl io::Write for Producer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let free = self.wait_writable(1, None)?;
        let n = free.min(buf.len());
        self.copy_in(&buf[..n]);
        self.commit(n)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading half. `Send`, not `Sync`.
#[derive(Debug)]
pub struct Consumer {
    core: ConsumerCore<Mapped>,
    me: Me,
    watch: Watch,
    spin: Duration,
    closed: bool,
}

impl Consumer {
    fn h(&self) -> &Header {
        self.core.header()
    }

    fn data(&self) -> *mut u8 {
        self.core.handle().0.data()
    }

    /// `N`.
    pub fn capacity(&self) -> usize {
        self.core.capacity() as usize
    }

    /// Bytes consumed so far (the read position).
    pub fn position(&self) -> u64 {
        self.core.position()
    }

    /// How long a wait busy-polls before sleeping (default 20 us).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    fn slice(&self) -> &[u8] {
        let off = self.core.read_offset();
        let n = self.core.available() as usize;
        // SAFETY: off < N, n <= N: inside the 2N window. [head, tail) was
        // committed by the producer (our Acquire load of `tail` synchronized with
        // its Release store) and is not written again until we consume it; the
        // slice borrows `self`, so `consume` cannot run while it lives.
        unsafe { std::slice::from_raw_parts(self.data().add(off), n) }
    }

    /// All buffered bytes, one contiguous slice (may be empty). Read, then
    /// [`Consumer::consume`].
    pub fn readable(&mut self) -> Result<&[u8], Error> {
        self.core.refresh()?;
        Ok(self.slice())
    }

    /// Gives `n` read bytes back to the producer, and wakes it if it may be asleep.
    pub fn consume(&mut self, n: usize) -> Result<(), Error> {
        self.core.consume(n as u64)?;
        if self.core.producer_needs_wake() {
            futex::wake_all(&self.h().space_wait.0);
        }
        Ok(())
    }

    /// Moves up to `buf.len()` bytes out without blocking; returns the count.
    pub fn pop(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.core.available_at_least(buf.len() as u64)?;
        let n = self.copy_out(buf);
        Ok(n)
    }

    fn copy_out(&mut self, buf: &mut [u8]) -> usize {
        let src = self.slice();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        if n > 0 {
            // Cannot fail: n <= available.
            let _ = self.consume(n);
        }
        n
    }

    /// Exactly `buf.len()` bytes or nothing, without blocking.
    pub fn try_pop_exact(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        if (self.core.available_at_least(buf.len() as u64)? as usize) < buf.len() {
            return Err(Error::WouldBlock);
        }
        self.copy_out(buf);
        Ok(())
    }

    fn producer_state(&self) -> u32 {
        self.h().producer.0.state()
    }

    fn producer_dead(&mut self) -> Option<u32> {
        let p = &self.core.header().producer.0;
        let (owner, ns) = (
            p.owner(),
            p.pidns.load(std::sync::atomic::Ordering::Relaxed),
        );
        (p.state() == STATE_ATTACHED && self.watch.is_dead(owner, ns, self.me.pidns))
            .then_some(owner as u32)
    }

    /// Blocks until at least `min` bytes (clamped to `1..=N`) are buffered, or
    /// the stream has ended; returns the buffered count, which is below `min`
    /// only at the end of the stream (0: nothing left). If the producer died
    /// without closing, its committed bytes are still returned, then
    /// [`Error::PeerDied`]. Also [`Error::TimedOut`].
    pub fn wait_readable(&mut self, min: usize, timeout: Option<Duration>) -> Result<usize, Error> {
        let min = (min.max(1) as u64).min(self.core.capacity());
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        // Check the peer's liveness before the first sleep, then every SLICE
        // (a sleep is a syscall anyway; the fast path makes none).
        let mut checked: Option<Instant> = None;
        let mut spins = 0u32;
        loop {
            let avail = self.core.available_at_least(min)?;
            if avail >= min {
                return Ok(avail as usize);
            }
            if self.producer_state() == STATE_CLOSED {
                // The close was stored after the last commit (Release/Acquire).
                return Ok(self.core.refresh()? as usize);
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
                if let Some(pid) = self.producer_dead() {
                    return match self.core.refresh()? {
                        0 => Err(Error::PeerDied {
                            side: Side::Producer,
                            pid,
                        }),
                        n => Ok(n as usize),
                    };
                }
            }
            if self.core.prepare_sleep(min)? {
                if self.producer_state() == STATE_CLOSED {
                    self.core.cancel_sleep();
                    continue;
                }
                futex::wait(&self.h().data_wait.0, 1, slice_until(deadline, now));
            }
        }
    }

    /// Blocks for at least one byte and moves up to `buf.len()` out; 0 at the end
    /// of the stream.
    pub fn pop_blocking(
        &mut self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.wait_readable(1, timeout)?;
        Ok(self.copy_out(buf))
    }

    /// Detaches: the producer's next write fails with [`Error::Closed`].
    /// (Dropping the consumer does the same.)
    pub fn close(mut self) {
        self.do_close();
    }

    fn do_close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.h().consumer.0.close();
            if self.core.producer_needs_wake() {
                futex::wake_all(&self.h().space_wait.0);
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.do_close();
    }
}

impl io::Read for Consumer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.pop_blocking(buf, None)?)
    }
}

impl io::BufRead for Consumer {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.wait_readable(1, None)?;
        Ok(self.slice())
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.core.available() as usize);
        let _ = Consumer::consume(self, amt);
    }
}
