//! The mirrored ring: read/write positions over a [`Mirror`] window.
//!
//! Owns [`Ring`], its invariant and all pointer arithmetic into the window.
//!
//! # Invariant
//!
//! With `N = capacity`, the positions satisfy `read <= write <= read + N` and
//! `read < N` (checked with `debug_assert!` after every change). The buffered bytes
//! are window bytes `[read, write)`, the free space is `[write, read + N)`; both lie
//! inside the `2N` window, so each is one contiguous slice. When `read` reaches `N`
//! both positions move back by `N` (same storage, the other copy). `read == write`
//! is empty and `write == read + N` is full: no slot is sacrificed.
//!
//! # Aliasing
//!
//! The two copies are different addresses for the compiler. Bytes written through
//! the upper copy are later read through the lower copy after the positions move
//! back by `N`; a `compiler_fence` on that path keeps the compiler from reordering
//! accesses across the switch. [`Ring::copy_back`] is the one operation that reads
//! and writes storage in one go: it picks addresses such that any physical overlap
//! of source and destination is also a virtual overlap, so `memmove` (or a plain
//! non-overlapping copy) sees the truth.

use core::ptr;
use core::slice;
use core::sync::atomic::{compiler_fence, Ordering};

use super::{ByteRing, Mirror, RingError};

/// A byte ring over a mirrored window: the buffered bytes are always one slice.
///
/// ```
/// # #[cfg(all(unix, feature = "std"))] {
/// use vmcirc::vmcirc::MirrorRing;
/// let mut ring = MirrorRing::with_capacity(4096).unwrap();
/// let n = ring.capacity();
/// ring.push(&vec![0u8; n - 2]);
/// ring.pop(n - 2);
/// ring.push(b"wraps around"); // crosses the end of the storage
/// assert_eq!(ring.peek(), b"wraps around"); // ... and is still one slice
/// # }
/// ```
pub struct Ring<M: Mirror> {
    base: *mut u8,
    cap: usize,
    read: usize,
    write: usize,
    mirror: M,
}

// SAFETY: the ring owns its mirror and its window exclusively (Mirror contract);
// moving both to another thread is fine when the mirror itself may move.
unsafe impl<M: Mirror + Send> Send for Ring<M> {}

impl<M: Mirror> Ring<M> {
    /// An empty ring over `mirror`'s window.
    pub fn new(mirror: M) -> Self {
        let base = mirror.base();
        let cap = mirror.capacity();
        let ring = Ring {
            base,
            cap,
            read: 0,
            write: 0,
            mirror,
        };
        ring.check();
        ring
    }

    #[inline(always)]
    fn check(&self) {
        debug_assert!(self.cap > 0);
        debug_assert!(self.read < self.cap, "read {} >= N {}", self.read, self.cap);
        debug_assert!(
            self.read <= self.write,
            "read {} > write {}",
            self.read,
            self.write
        );
        debug_assert!(
            self.write - self.read <= self.cap,
            "write {} > read {} + N {}",
            self.write,
            self.read,
            self.cap
        );
    }

    /// Bytes of storage (`N`).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes buffered.
    #[inline]
    pub fn len(&self) -> usize {
        self.write - self.read
    }

    /// Free bytes.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.cap - (self.write - self.read)
    }

    /// No bytes buffered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.write == self.read
    }

    /// No free space.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.write - self.read == self.cap
    }

    /// Read position within the window, `0..N`.
    #[inline]
    pub fn read_offset(&self) -> usize {
        self.read
    }

    /// Write position within the window, `read..=read + N` (below `2N`).
    #[inline]
    pub fn write_offset(&self) -> usize {
        self.write
    }

    /// The backend.
    pub fn mirror(&self) -> &M {
        &self.mirror
    }

    /// Gives the backend back (the buffered bytes stay in its storage).
    pub fn into_mirror(self) -> M {
        self.mirror
    }

    /// Appends as much of `data` as fits; returns the count appended.
    #[inline]
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.remaining());
        let at = self.write;
        self.write += n;
        self.check();
        // SAFETY: [at, at + n) lies in the free space [write, read + N) of the
        // window (n <= remaining), which is valid for writes (Mirror contract) and
        // not borrowed (we hold &mut self). `data` cannot be part of the window: the
        // only safe ways to see window bytes borrow `self`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(at), n) };
        n
    }

    /// Discards up to `n` buffered bytes; returns the count discarded.
    #[inline]
    pub fn pop(&mut self, n: usize) -> usize {
        let n = n.min(self.len());
        self.advance_read(n);
        n
    }

    /// Moves up to `buf.len()` buffered bytes into `buf`; returns the count.
    #[inline]
    pub fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len());
        // SAFETY: [read, read + n) is buffered, initialised window memory; `buf` is a
        // distinct &mut borrow so cannot overlap it.
        unsafe { ptr::copy_nonoverlapping(self.base.add(self.read), buf.as_mut_ptr(), n) };
        self.advance_read(n);
        n
    }

    /// All buffered bytes, oldest first, as one slice.
    #[inline]
    pub fn peek(&self) -> &[u8] {
        // SAFETY: [read, write) is inside the window, initialised, and only written
        // through &mut self, which this borrow excludes.
        unsafe { slice::from_raw_parts(self.base.add(self.read), self.write - self.read) }
    }

    /// Same as [`Ring::peek`]: the zero-copy read side, paired with [`Ring::consume`].
    #[inline]
    pub fn readable(&self) -> &[u8] {
        self.peek()
    }

    /// All free space as one slice (initialised: zeroes or old data), to be filled
    /// and then published with [`Ring::commit`].
    #[inline]
    pub fn writable(&mut self) -> &mut [u8] {
        let n = self.remaining();
        // SAFETY: [write, read + N) is inside the window and initialised; it does
        // not overlap the buffered bytes even through the other copy (the two
        // ranges together are at most N bytes long), and &mut self is held.
        unsafe { slice::from_raw_parts_mut(self.base.add(self.write), n) }
    }

    /// Publishes `n` bytes written into [`Ring::writable`].
    #[inline]
    pub fn commit(&mut self, n: usize) -> Result<(), RingError> {
        let available = self.remaining();
        if n > available {
            return Err(RingError::Overflow {
                requested: n,
                available,
            });
        }
        self.write += n;
        self.check();
        Ok(())
    }

    /// Discards exactly `n` bytes after reading them through [`Ring::readable`].
    #[inline]
    pub fn consume(&mut self, n: usize) -> Result<(), RingError> {
        let available = self.len();
        if n > available {
            return Err(RingError::Underflow {
                requested: n,
                available,
            });
        }
        self.advance_read(n);
        Ok(())
    }

    /// Discards all buffered bytes. The history (the last `N` bytes written) stays
    /// where it is, so [`Ring::copy_back`] keeps working across a `clear`.
    #[inline]
    pub fn clear(&mut self) {
        let w = if self.write >= self.cap {
            compiler_fence(Ordering::SeqCst);
            self.write - self.cap
        } else {
            self.write
        };
        self.read = w;
        self.write = w;
        self.check();
    }

    #[inline(always)]
    fn advance_read(&mut self, n: usize) {
        // Caller guarantees n <= len.
        self.read += n;
        if self.read >= self.cap {
            self.read -= self.cap;
            self.write -= self.cap;
            // Later reads go through the lower copy; keep them after the writes
            // made through the upper copy.
            compiler_fence(Ordering::SeqCst);
        }
        self.check();
    }

    /// How much may be written without overwriting the last `reserve` bytes of
    /// history: `capacity - max(len, reserve)` (`reserve` is capped at `capacity`).
    #[inline]
    pub fn history_space(&self, reserve: usize) -> usize {
        self.cap - self.len().max(reserve.min(self.cap))
    }

    /// Appends `count` bytes copied from `distance` bytes behind the write
    /// position, as an LZ77 decoder does.
    ///
    /// The result is as if bytes were copied one at a time, so `distance < count`
    /// repeats the last `distance` bytes. History is read even if it was already
    /// consumed; storage that was never written reads as zero.
    ///
    /// Errors (ring unchanged): `distance` is 0 or beyond the capacity, or `count`
    /// is more than [`Ring::remaining`].
    #[inline]
    pub fn copy_back(&mut self, distance: usize, count: usize) -> Result<(), RingError> {
        if distance == 0 || distance > self.cap {
            return Err(RingError::BadDistance {
                distance,
                capacity: self.cap,
            });
        }
        let available = self.remaining();
        if count > available {
            return Err(RingError::Overflow {
                requested: count,
                available,
            });
        }
        if distance >= count {
            self.copy_back_run(distance, count);
        } else {
            self.copy_back_repeat(distance, count);
        }
        Ok(())
    }

    /// `copy_back` where the source does not run into the bytes being written.
    /// Requires `count <= distance <= N` and `count <= remaining`.
    #[inline(always)]
    fn copy_back_run(&mut self, distance: usize, count: usize) {
        let n = self.cap;
        let w = self.write;
        self.write += count;
        self.check();
        if distance + count <= n {
            // Source and destination are disjoint in the storage.
            let src = if w >= distance {
                w - distance
            } else {
                w + n - distance
            };
            // SAFETY: dst [w, w + count) is free window space (count <= remaining).
            // src + count <= 2N: if w >= distance, src + count <= w; otherwise
            // src + count = w + N - distance + count <= w + N < 2N (count <=
            // distance and w < distance <= N). The two ranges are
            // disjoint modulo N (distance >= count and N - distance >= count), so
            // they are disjoint storage.
            unsafe { ptr::copy_nonoverlapping(self.base.add(src), self.base.add(w), count) };
        } else if distance < n {
            // The source runs ahead (by N - distance) into storage being written:
            // express that overlap in one copy of the window so memmove sees it.
            let dst = if w >= n { w - n } else { w };
            let src = dst + (n - distance);
            // SAFETY: dst < N and dst + count <= 2N; src + count = dst + N -
            // distance + count <= dst + N < 2N because count <= distance. Storage
            // [dst, dst + count) is the free space (same storage as [w, w + count));
            // the source is history. With src > dst, memmove copies forwards,
            // which is the byte-at-a-time order.
            compiler_fence(Ordering::SeqCst);
            unsafe { ptr::copy(self.base.add(src), self.base.add(dst), count) };
            compiler_fence(Ordering::SeqCst);
        }
        // distance == N: every byte is copied onto itself; nothing to do.
    }

    /// `copy_back` with `distance < count`: the last `distance` bytes repeat.
    /// Doubles the copied run each step, each step a `copy_back_run`.
    #[cold]
    fn copy_back_repeat(&mut self, distance: usize, count: usize) {
        let mut done = 0;
        while done < count {
            // The output is periodic with period `distance`, so any multiple of it
            // up to what is already written (or `distance` itself at first) works.
            let d = if done < distance {
                distance
            } else {
                done - done % distance
            };
            let step = d.min(count - done);
            self.copy_back_run(d, step);
            done += step;
        }
    }
}

impl<M: Mirror> core::fmt::Debug for Ring<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring")
            .field("base", &self.base)
            .field("capacity", &self.cap)
            .field("read", &self.read)
            .field("write", &self.write)
            .finish()
    }
}

impl<M: Mirror> ByteRing for Ring<M> {
    #[inline]
    fn capacity(&self) -> usize {
        Ring::capacity(self)
    }
    #[inline]
    fn len(&self) -> usize {
        Ring::len(self)
    }
    #[inline]
    fn remaining(&self) -> usize {
        Ring::remaining(self)
    }
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        Ring::push(self, data)
    }
    #[inline]
    fn pop(&mut self, n: usize) -> usize {
        Ring::pop(self, n)
    }
    #[inline]
    fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        Ring::pop_into(self, buf)
    }
    #[inline]
    fn peek_into(&self, buf: &mut [u8]) -> usize {
        let src = self.peek();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        n
    }
    #[inline]
    fn readable_parts(&self) -> (&[u8], &[u8]) {
        (self.peek(), &[])
    }
    #[inline]
    fn writable(&mut self) -> &mut [u8] {
        Ring::writable(self)
    }
    #[inline]
    fn commit(&mut self, n: usize) -> Result<(), RingError> {
        Ring::commit(self, n)
    }
    #[inline]
    fn consume(&mut self, n: usize) -> Result<(), RingError> {
        Ring::consume(self, n)
    }
    #[inline]
    fn clear(&mut self) {
        Ring::clear(self)
    }
    #[inline]
    fn copy_back(&mut self, distance: usize, count: usize) -> Result<(), RingError> {
        Ring::copy_back(self, distance, count)
    }
    #[inline]
    fn history_space(&self, reserve: usize) -> usize {
        Ring::history_space(self, reserve)
    }
    #[inline]
    fn read_offset(&self) -> usize {
        self.read
    }
    #[inline]
    fn write_offset(&self) -> usize {
        self.write
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::super::MemfdMirror;
    use super::*;
    use std::vec::Vec;

    fn ring() -> Ring<MemfdMirror> {
        Ring::new(MemfdMirror::new(1).unwrap())
    }

    #[test]
    fn exact_capacity_and_wrap() {
        let mut r = ring();
        let n = r.capacity();
        assert_eq!(r.push(&std::vec![7u8; n + 1]), n);
        assert!(r.is_full());
        assert_eq!(r.push(b"x"), 0);
        assert_eq!(r.pop(n + 10), n);
        assert!(r.is_empty());
        assert_eq!((r.read_offset(), r.write_offset()), (0, 0));
        r.push(&std::vec![0u8; n - 3]);
        r.pop(n - 3);
        assert_eq!(r.push(b"abcdef"), 6);
        assert_eq!(r.peek(), b"abcdef");
        assert_eq!(r.write_offset(), n + 3);
        // The wrapped bytes are at the start of the lower copy too.
        // SAFETY: reading window bytes 0..3, initialised.
        let low = unsafe { core::slice::from_raw_parts(r.mirror().base(), 3) };
        assert_eq!(low, b"def");
        r.pop(3);
        assert_eq!((r.read_offset(), r.write_offset()), (0, 3));
        assert_eq!(r.peek(), b"def");
    }

    #[test]
    fn errors_leave_ring_unchanged() {
        let mut r = ring();
        let n = r.capacity();
        r.push(b"hello");
        assert_eq!(
            r.commit(n),
            Err(RingError::Overflow {
                requested: n,
                available: n - 5
            })
        );
        assert_eq!(
            r.consume(6),
            Err(RingError::Underflow {
                requested: 6,
                available: 5
            })
        );
        assert_eq!(
            r.copy_back(0, 1),
            Err(RingError::BadDistance {
                distance: 0,
                capacity: n
            })
        );
        assert_eq!(
            r.copy_back(n + 1, 1),
            Err(RingError::BadDistance {
                distance: n + 1,
                capacity: n
            })
        );
        assert_eq!(
            r.copy_back(1, n),
            Err(RingError::Overflow {
                requested: n,
                available: n - 5
            })
        );
        assert_eq!(r.peek(), b"hello");
        assert_eq!(
            std::format!("{}", RingError::ZeroCapacity),
            "ring capacity must be at least 1 byte"
        );
    }

    #[test]
    fn copy_back_cases() {
        let mut r = ring();
        let n = r.capacity();
        r.push(b"abc");
        r.copy_back(3, 7).unwrap(); // repeat
        assert_eq!(r.peek(), b"abcabcabca");
        r.copy_back(2, 2).unwrap(); // plain run
        assert_eq!(r.peek(), b"abcabcabcaca");
        r.copy_back(n, 4).unwrap(); // beyond anything written: zeroes
        assert_eq!(&r.peek()[12..], &[0, 0, 0, 0]);
        r.clear();
        // Source running ahead into the bytes being written (distance + count > N).
        let hist: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        r.push(&hist);
        r.pop(n);
        let d = n - 10;
        r.copy_back(d, 100).unwrap();
        let want: Vec<u8> = (0..100).map(|i| hist[(n - d + i) % n]).collect();
        assert_eq!(r.peek(), &want[..]);
        // distance == N copies the storage onto itself.
        let mut r = ring();
        r.push(b"xyz");
        r.pop(3);
        r.copy_back(n, 5).unwrap();
        assert_eq!(r.peek(), &[0, 0, 0, 0, 0]);
        assert_eq!(r.history_space(0), n - 5);
        assert_eq!(r.history_space(n * 2), 0);
    }
}
