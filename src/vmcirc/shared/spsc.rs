//! The single-producer single-consumer byte protocol: two monotonic `u64`
//! positions in a shared [`Header`], no locks, no syscalls. `no_std`.
//!
//! The producer owns `tail` (the write position), the consumer owns `head` (the
//! read position); each keeps its own copy of its counter and a cached copy of
//! the peer's, so the fast path touches the peer's cache line only when the
//! cached value says the ring is full (producer) or empty (consumer). The bytes
//! `[head, tail)` are buffered, `[tail, head + N)` are free; with the store mapped
//! twice back to back, each is one slice starting at offset `pos % N`.
//!
//! Every value read from the peer is validated (`old <= new` and
//! `head <= tail <= head + N`) and a violation is [`Error::Corrupt`]; offsets are
//! computed from this side's own counter modulo its own capacity, so a hostile
//! peer can garble bytes but never make this side read or write out of bounds.
//!
//! Sleeping and waking (the caller supplies the futex, see `futex.rs`): a side
//! that wants to sleep announces it with an RMW on the wait word
//! (`data_wait` for the consumer, `space_wait` for the producer), re-checks the
//! peer's counter, and only then sleeps while the word is still 1. The peer,
//! after every publication, clears the word with an RMW (`swap(0)`) and makes
//! the wake syscall only if it was 1. Both RMWs act on one location, so they are
//! totally ordered: either the sleeper's `swap(1)` comes first (the publisher
//! reads 1 and wakes it), or the publisher's `swap(0)` comes first, and then the
//! sleeper's AcqRel `swap(1)` reads from it, synchronizes with it, and its
//! re-check sees the publication. No wake-up is lost, and nobody makes a syscall
//! while nobody sleeps. (`make test-loom` checks this in `loom_tests.rs`.)
//! A Dekker store/fence/load on plain flags would need SeqCst fences, which cost
//! more than the RMW on x86 and which loom does not model fully.

use core::ops::Deref;

use super::header::{check_positions, Header};
use super::sync::Ordering;
use super::Error;

/// The producer half of the protocol, over any handle to the header (`&Header`
/// in the kernel and the loom models, a mapping handle on Linux).
pub struct ProducerCore<H: Deref<Target = Header>> {
    h: H,
    cap: u64,
    tail: u64,
    head: u64,
}

/// The consumer half of the protocol.
pub struct ConsumerCore<H: Deref<Target = Header>> {
    h: H,
    cap: u64,
    head: u64,
    tail: u64,
}

impl<H: Deref<Target = Header>> ProducerCore<H> {
    /// Starts producing at the header's positions, checked against `capacity`
    /// (the validated capacity this process mapped, never re-read).
    pub fn new(h: H, capacity: u64) -> Result<Self, Error> {
        // Acquire: a producer taking over (or starting after the creator) sees
        // the state that came with these values.
        let head = h.head.0.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        check_positions(head, tail, capacity)?;
        Ok(ProducerCore {
            h,
            cap: capacity,
            tail,
            head,
        })
    }

    /// The shared header.
    pub fn header(&self) -> &Header {
        &self.h
    }

    /// The handle the header was given by.
    pub fn handle(&self) -> &H {
        &self.h
    }

    /// `N`.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// The write position (bytes committed so far).
    pub fn position(&self) -> u64 {
        self.tail
    }

    /// Free bytes as last seen (may be fewer than there really are).
    pub fn free(&self) -> u64 {
        self.cap - (self.tail - self.head)
    }

    /// Offset of the write position in the data area.
    pub fn write_offset(&self) -> usize {
        (self.tail % self.cap) as usize
    }

    /// Reloads the consumer's position; returns the free space.
    pub fn refresh(&mut self) -> Result<u64, Error> {
        // Acquire: pairs with the consumer's Release store in `consume`, so its
        // reads of the bytes it gave back happen before we overwrite them.
        let head = self.h.head.0.load(Ordering::Acquire);
        if head < self.head {
            return Err(Error::corrupt(
                "read position moved backwards",
                head,
                self.head,
            ));
        }
        if head > self.tail {
            return Err(Error::corrupt(
                "read position ahead of the write position",
                head,
                self.tail,
            ));
        }
        self.head = head;
        Ok(self.free())
    }

    /// Free space, reloading the consumer's position only when the cached value
    /// is below `want`.
    pub fn free_at_least(&mut self, want: u64) -> Result<u64, Error> {
        let free = self.free();
        if free >= want {
            Ok(free)
        } else {
            self.refresh()
        }
    }

    /// Publishes `n` bytes written at the write position.
    pub fn commit(&mut self, n: u64) -> Result<(), Error> {
        let free = self.free();
        if n > free {
            return Err(Error::Overflow {
                requested: n,
                available: free,
            });
        }
        self.tail += n;
        // Release: the bytes written before are visible to a consumer that loads
        // this position with Acquire.
        self.h.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// After a commit or close: whether the consumer may be asleep and needs a
    /// wake-up on `data_wait` (clears the word; see the module doc).
    pub fn consumer_needs_wake(&self) -> bool {
        self.h.data_wait.0.swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that this producer wants to sleep until `want` bytes are free,
    /// and re-checks. `Ok(true)`: sleep on `space_wait` while it is 1 (then call
    /// again); `Ok(false)`: the space is there (the announcement is withdrawn).
    pub fn prepare_sleep(&mut self, want: u64) -> Result<bool, Error> {
        self.h.space_wait.0.swap(1, Ordering::AcqRel);
        if self.refresh()? >= want {
            self.cancel_sleep();
            return Ok(false);
        }
        Ok(true)
    }

    /// Withdraws an announcement from [`ProducerCore::prepare_sleep`] (a wake-up
    /// that still arrives is harmless).
    pub fn cancel_sleep(&self) {
        // An RMW, not a plain store: the peer's `swap(0)` may come between our
        // `swap(1)` and this, and our next `swap(1)` must still synchronize with
        // it. It does only through a chain of RMWs (a release sequence); a
        // Relaxed store here would break the chain and lose a wake-up (loom
        // found exactly that).
        self.h.space_wait.0.swap(0, Ordering::AcqRel);
    }
}

impl<H: Deref<Target = Header>> ConsumerCore<H> {
    /// Starts consuming at the header's positions, checked against `capacity`.
    pub fn new(h: H, capacity: u64) -> Result<Self, Error> {
        let head = h.head.0.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        check_positions(head, tail, capacity)?;
        Ok(ConsumerCore {
            h,
            cap: capacity,
            head,
            tail,
        })
    }

    /// The shared header.
    pub fn header(&self) -> &Header {
        &self.h
    }

    /// The handle the header was given by.
    pub fn handle(&self) -> &H {
        &self.h
    }

    /// `N`.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// The read position (bytes consumed so far).
    pub fn position(&self) -> u64 {
        self.head
    }

    /// Buffered bytes as last seen.
    pub fn available(&self) -> u64 {
        self.tail - self.head
    }

    /// Offset of the read position in the data area.
    pub fn read_offset(&self) -> usize {
        (self.head % self.cap) as usize
    }

    /// Reloads the producer's position; returns the buffered byte count.
    pub fn refresh(&mut self) -> Result<u64, Error> {
        // Acquire: pairs with the producer's Release store in `commit`: the bytes
        // up to `tail` are written.
        let tail = self.h.tail.0.load(Ordering::Acquire);
        if tail < self.tail {
            return Err(Error::corrupt(
                "write position moved backwards",
                tail,
                self.tail,
            ));
        }
        if tail - self.head > self.cap {
            return Err(Error::corrupt(
                "more bytes buffered than the capacity",
                tail - self.head,
                self.cap,
            ));
        }
        self.tail = tail;
        Ok(self.available())
    }

    /// Buffered bytes, reloading the producer's position only when the cached
    /// count is below `want`.
    pub fn available_at_least(&mut self, want: u64) -> Result<u64, Error> {
        let n = self.available();
        if n >= want {
            Ok(n)
        } else {
            self.refresh()
        }
    }

    /// Gives `n` bytes at the read position back to the producer.
    pub fn consume(&mut self, n: u64) -> Result<(), Error> {
        let avail = self.available();
        if n > avail {
            return Err(Error::Underflow {
                requested: n,
                available: avail,
            });
        }
        self.head += n;
        // Release: our reads of those bytes happen before the producer, which
        // loads this with Acquire, overwrites them.
        self.h.head.0.store(self.head, Ordering::Release);
        Ok(())
    }

    /// After a consume or close: whether a producer may be asleep and needs a
    /// wake-up on `space_wait` (clears the word).
    pub fn producer_needs_wake(&self) -> bool {
        self.h.space_wait.0.swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that this consumer wants to sleep until `want` bytes are
    /// buffered, and re-checks. `Ok(true)`: sleep on `data_wait` while it is 1.
    pub fn prepare_sleep(&mut self, want: u64) -> Result<bool, Error> {
        self.h.data_wait.0.swap(1, Ordering::AcqRel);
        if self.refresh()? >= want {
            self.cancel_sleep();
            return Ok(false);
        }
        Ok(true)
    }

    /// Withdraws an announcement from [`ConsumerCore::prepare_sleep`].
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
    use super::super::header::KIND_SPSC;
    use super::*;

    fn header(cap: u64) -> Header {
        let h = Header::zeroed();
        h.init(KIND_SPSC, cap, 4096, 0);
        h
    }

    #[test]
    fn positions_and_offsets() {
        let h = header(16);
        let mut p = ProducerCore::new(&h, 16).unwrap();
        let mut c = ConsumerCore::new(&h, 16).unwrap();
        assert_eq!(p.free(), 16);
        p.commit(10).unwrap();
        assert_eq!(c.available(), 0, "cached until refreshed");
        assert_eq!(c.available_at_least(1).unwrap(), 10);
        c.consume(7).unwrap();
        assert_eq!(p.free(), 6, "cached until refreshed");
        assert_eq!(p.free_at_least(7).unwrap(), 13);
        p.commit(13).unwrap();
        assert_eq!(p.write_offset(), 7);
        assert!(matches!(p.commit(1), Err(Error::Overflow { .. })));
        c.refresh().unwrap();
        assert_eq!(c.read_offset(), 7);
        assert!(matches!(c.consume(17), Err(Error::Underflow { .. })));
        c.consume(16).unwrap();
        assert_eq!((c.position(), p.position()), (23, 23));
    }

    #[test]
    fn wake_words() {
        let h = header(16);
        let mut p = ProducerCore::new(&h, 16).unwrap();
        let mut c = ConsumerCore::new(&h, 16).unwrap();
        assert!(!p.consumer_needs_wake(), "nobody asleep: no wake");
        assert!(c.prepare_sleep(1).unwrap(), "empty: may sleep");
        p.commit(1).unwrap();
        assert!(p.consumer_needs_wake());
        assert!(!p.consumer_needs_wake(), "one wake per sleep");
        assert!(!c.prepare_sleep(1).unwrap(), "data there: no sleep");
        assert!(!p.consumer_needs_wake(), "withdrawn");
        p.commit(15).unwrap();
        assert!(p.prepare_sleep(1).unwrap());
        c.refresh().unwrap();
        c.consume(3).unwrap();
        assert!(c.producer_needs_wake());
    }

    #[test]
    fn hostile_positions_are_corruption() {
        let h = header(16);
        let mut p = ProducerCore::new(&h, 16).unwrap();
        let mut c = ConsumerCore::new(&h, 16).unwrap();
        p.commit(8).unwrap();
        c.refresh().unwrap();
        // The "producer" jumps ahead by more than the capacity.
        h.tail.0.store(100, Ordering::Relaxed);
        assert!(matches!(c.refresh(), Err(Error::Corrupt { .. })));
        // ... or moves backwards.
        h.tail.0.store(4, Ordering::Relaxed);
        assert!(matches!(c.refresh(), Err(Error::Corrupt { .. })));
        // The "consumer" reads past the write position, or moves backwards.
        h.head.0.store(9, Ordering::Relaxed);
        assert!(matches!(p.refresh(), Err(Error::Corrupt { .. })));
        h.head.0.store(5, Ordering::Relaxed);
        p.refresh().unwrap();
        h.head.0.store(4, Ordering::Relaxed);
        assert!(matches!(p.refresh(), Err(Error::Corrupt { .. })));
        // Errors changed nothing on our side.
        assert_eq!((p.position(), c.position(), c.available()), (8, 0, 8));
        // Attaching to a header with impossible positions fails.
        h.head.0.store(0, Ordering::Relaxed);
        h.tail.0.store(17, Ordering::Relaxed);
        assert!(ProducerCore::new(&h, 16).is_err());
        assert!(ConsumerCore::new(&h, 16).is_err());
    }
}
