//! The mirrored ring: read/write positions over a [`Mirror`] window.
//!
//! Owns [`Ring`], its invariant and all pointer arithmetic into a window: every
//! slice of window memory anyone else sees (the buffered bytes, the free space,
//! the decoder's history view, the store, the whole window) is made here.
//!
//! # Invariant
//!
//! With `N = capacity`, the positions satisfy `read <= write <= read + N` and
//! `read < N` (checked with `debug_assert!` after every change). The buffered bytes
//! are window bytes `[read, write)`, the free space is `[write, read + N)`; both lie
//! inside the `2N` window, so each is one contiguous slice. When `read` reaches `N`
//! both positions move back by `N` (same storage, the other copy). `read == write`
//! is empty and `write == read + N` is full: no slot is sacrificed. A write-side
//! call on an empty ring moves both positions back to the start first (see
//! [`super::ByteRing`]): to 0, or for `push` to the source's offset in its 4 KiB
//! page (`rewind_start`); [`Ring::history_view`] never moves them.
//!
//! # Aliasing
//!
//! The two copies are different addresses for the compiler. Bytes written through
//! one copy are later read through the other after the positions move by `N` (a
//! wrap of `read`) or when a history view starts in the upper copy; a
//! `compiler_fence` on the wrap, around a history view and in `commit` keeps the
//! compiler from reordering accesses across the switch. (The FIFO rewind to 0
//! happens only when the ring is empty, with both positions in the lower copy
//! already.)
//!
//! # After `fork`
//!
//! A backend whose window is not inherited by a forked child (the Linux memfd
//! mirror is `MADV_DONTFORK`) says so through [`Mirror::is_mapped`]. The ring
//! checks it before every access and then behaves as a ring of capacity 0: empty
//! slices, `push` and `pop` move nothing, `commit`/`consume` of more than 0 bytes
//! are errors. Nothing touches the missing window, so no call can crash.

use core::ptr;
use core::slice;
use core::sync::atomic::{compiler_fence, Ordering};

use super::{ByteRing, Mirror, RingError};

/// A byte ring over a mirrored window: the buffered bytes are always one slice.
///
/// The FIFO operations are those of [`ByteRing`] (bring it into scope); the
/// mirror-specific ones (one-slice [`Ring::peek`] and [`Ring::writable`], the
/// decoder's [`Ring::history_view`], the store, the window) are inherent.
///
/// ```
/// # #[cfg(all(unix, feature = "std"))] {
/// use vmcirc::{ByteRing, MirrorRing};
/// let mut ring = MirrorRing::with_capacity(4096).unwrap();
/// let n = ring.capacity();
/// ring.push(&vec![b'.'; n - 2]);
/// ring.pop(n - 4); // two bytes left, just before the end of the store
/// ring.push(b"wraps around"); // crosses the end of the store ...
/// assert_eq!(ring.peek(), b"..wraps around"); // ... and is still one slice
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

    /// Whether the window may be touched (see "After `fork`" in the module docs).
    /// The other answer is the cold path.
    #[inline(always)]
    fn live(&self) -> bool {
        let live = self.mirror.is_mapped();
        if !live {
            core::hint::cold_path();
        }
        live
    }

    /// Read position within the window, `0..N` (0 when the window is gone).
    #[inline]
    pub fn read_offset(&self) -> usize {
        if self.live() {
            self.read
        } else {
            0
        }
    }

    /// Write position within the window, `read..=read + N` (below `2N`).
    #[inline]
    pub fn write_offset(&self) -> usize {
        if self.live() {
            self.write
        } else {
            0
        }
    }

    /// The backend.
    pub fn mirror(&self) -> &M {
        &self.mirror
    }

    /// Gives the backend back (the buffered bytes stay in its storage).
    pub fn into_mirror(self) -> M {
        self.mirror
    }

    /// All buffered bytes, oldest first, as one slice.
    #[inline]
    pub fn peek(&self) -> &[u8] {
        if !self.live() {
            return &[];
        }
        // SAFETY: [read, write) is inside the window, initialised, and only written
        // through &mut self, which this borrow excludes.
        unsafe { slice::from_raw_parts(self.base.add(self.read), self.write - self.read) }
    }

    /// Same as [`Ring::peek`]: the zero-copy read side, paired with [`Ring::consume`].
    #[inline]
    pub fn readable(&self) -> &[u8] {
        self.peek()
    }

    /// Moves both positions to 0 when the ring is empty (the FIFO rewind). No
    /// fence: an empty ring's positions are in the lower copy already (`read <
    /// N`), so this never switches copies.
    #[inline(always)]
    fn rewind_if_empty(&mut self) {
        if self.read == self.write {
            self.read = 0;
            self.write = 0;
        }
    }

    /// All free space as one slice (initialised: zeroes or old data), to be filled
    /// and then published with [`Ring::commit`]. On an empty ring the positions
    /// first move back to 0.
    #[inline]
    pub fn writable(&mut self) -> &mut [u8] {
        if !self.live() {
            return &mut [];
        }
        self.rewind_if_empty();
        let n = self.cap - (self.write - self.read);
        // SAFETY: [write, read + N) is inside the window and initialised; it does
        // not overlap the buffered bytes even through the other copy (the two
        // ranges together are at most N bytes long), and &mut self is held.
        unsafe { slice::from_raw_parts_mut(self.base.add(self.write), n) }
    }

    /// Publishes `n` bytes written into [`Ring::writable`] (or a history view).
    #[inline]
    pub fn commit(&mut self, n: usize) -> Result<(), RingError> {
        let available = if self.live() {
            self.cap - (self.write - self.read)
        } else {
            0
        };
        if n > available {
            return Err(RingError::Overflow {
                requested: n,
                available,
            });
        }
        // The bytes may have been written through the other copy than the one
        // they will be read through (a history view starting in the upper copy).
        compiler_fence(Ordering::SeqCst);
        self.write += n;
        self.check();
        Ok(())
    }

    /// Discards exactly `n` bytes after reading them through [`Ring::readable`].
    #[inline]
    pub fn consume(&mut self, n: usize) -> Result<(), RingError> {
        let available = if self.live() {
            self.write - self.read
        } else {
            0
        };
        if n > available {
            return Err(RingError::Underflow {
                requested: n,
                available,
            });
        }
        self.advance_read(n);
        Ok(())
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

    /// The decoder's window: the last `history` bytes written (capped at `N`),
    /// then the free space that keeps them, as one slice; returns it with the
    /// write position in it (`history`, capped).
    ///
    /// `buf[..pos]` is history: the bytes written before the write position, in
    /// order, whether or not they were consumed since (bytes never written read
    /// as the store's initial zeros or older data). `buf[pos..]` is
    /// [`ByteRing::history_space`]`(history)` bytes of free space: writing them
    /// overwrites neither buffered bytes nor that history. Publish what was
    /// written at `pos` with [`Ring::commit`]. Unlike the FIFO write side, this
    /// never moves the positions, so an LZ77 decoder can refer back across
    /// reads that drained the ring. The slice is at most `N` bytes, so no two
    /// of its bytes are the same storage.
    ///
    /// ```
    /// # #[cfg(all(unix, feature = "std"))] {
    /// use vmcirc::{ByteRing, MirrorRing};
    /// let mut ring = MirrorRing::with_capacity(4096).unwrap();
    /// let (buf, pos) = ring.history_view(3);
    /// buf[pos..pos + 3].copy_from_slice(b"abc");
    /// ring.commit(3).unwrap();
    /// assert_eq!(ring.pop(3), 3); // drained: the history stays behind the write position
    /// let (buf, pos) = ring.history_view(3);
    /// assert_eq!(&buf[..pos], b"abc");
    /// buf.copy_within(0..3, pos); // an LZ77 copy, distance 3
    /// ring.commit(3).unwrap();
    /// assert_eq!(ring.peek(), b"abc");
    /// # }
    /// ```
    #[inline]
    pub fn history_view(&mut self, history: usize) -> (&mut [u8], usize) {
        if !self.live() {
            return (&mut [], 0);
        }
        let cap = self.cap;
        let history = history.min(cap);
        let room = cap - (self.write - self.read).max(history);
        // `write` is in [read, read + N] with read < N, so below 2N. Start
        // `history` bytes behind it, in whichever copy keeps that inside the window.
        let start = if self.write >= history {
            self.write - history
        } else {
            self.write + cap - history
        };
        let len = history + room;
        debug_assert!(len <= cap && start + len <= 2 * cap);
        // The caller may write through the upper copy what the ring then reads
        // through the lower one (and the other way round); `commit` has the
        // matching fence.
        compiler_fence(Ordering::SeqCst);
        // SAFETY: the window is 2N readable, writable, initialised bytes from
        // `base` (Mirror contract). [start, start + len) lies inside it: if write
        // >= history, start + len = write + room <= read + N < 2N (room <=
        // remaining = read + N - write); otherwise write < history and start + len
        // = write + N + room <= write + N + (N - history) < 2N. It is at most N
        // bytes long (history + room <= max(len, history) + room = N), so no two
        // of its addresses are the same storage and the slice is an honest `&mut
        // [u8]`. We hold `&mut self`, so no slice handed out by the ring is alive.
        let buf = unsafe { slice::from_raw_parts_mut(self.base.add(start), len) };
        (buf, history)
    }

    /// The store (`N` bytes, the lower copy of the window), mutably: for running
    /// another ring over the same memory, such as a [`super::ModularRing`] for
    /// comparisons. Writing it changes buffered bytes but never the positions.
    #[inline]
    pub fn store_mut(&mut self) -> &mut [u8] {
        if !self.live() {
            return &mut [];
        }
        // SAFETY: [0, N) is inside the window and initialised; it is N bytes, so
        // no two of them are the same storage; &mut self excludes every other
        // slice the ring hands out.
        unsafe { slice::from_raw_parts_mut(self.base, self.cap) }
    }

    /// The whole window, both copies (`2N` bytes, byte `i` and byte `i + N` the
    /// same storage), read only: what is at which address, for a memory viewer.
    /// Offsets in it are [`Ring::read_offset`] and [`Ring::write_offset`].
    #[inline]
    pub fn window(&self) -> &[u8] {
        if !self.live() {
            return &[];
        }
        // SAFETY: the 2N window bytes are readable and initialised (Mirror
        // contract); shared references may alias each other, and &self excludes
        // every `&mut` the ring hands out.
        unsafe { slice::from_raw_parts(self.base, 2 * self.cap) }
    }
}

/// Where `push` starts over in an empty ring of capacity `cap`: the offset of
/// `src` within its 4 KiB page (when the store is that large), so the copy's
/// source and destination are equal modulo 4 KiB. On out-of-order cores such
/// as the x86-64 hosts a load whose address matches an earlier, still pending
/// store in bits 11:0 waits for it ("4K aliasing"); a copy whose destination
/// runs 64 to ~800 bytes ahead of its source modulo 4 KiB then takes about
/// twice as long (measured on the bench machine's Xeon: 4 KiB copies in L1 at
/// 85 instead of 160 GB/s), and a store that always restarted at offset 0
/// would pay that for every source sitting just below a page boundary. Any
/// start works for a mirrored ring: the free space is contiguous from anywhere
/// in the lower copy. The ARMv6 kernel target is in order and starts at 0 (no
/// extra instruction per push).
#[inline(always)]
fn rewind_start(src: *const u8, cap: usize) -> usize {
    #[cfg(not(target_arch = "arm"))]
    {
        let start = src as usize & 4095;
        if start < cap {
            start
        } else {
            0
        }
    }
    #[cfg(target_arch = "arm")]
    {
        let _ = (src, cap);
        0
    }
}

impl<M: Mirror> core::fmt::Debug for Ring<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring")
            .field("base", &self.base)
            .field("capacity", &self.cap)
            .field("read", &self.read)
            .field("write", &self.write)
            .field("mapped", &self.live())
            .finish()
    }
}

impl<M: Mirror> ByteRing for Ring<M> {
    #[inline]
    fn capacity(&self) -> usize {
        if self.live() {
            self.cap
        } else {
            0
        }
    }

    #[inline]
    fn len(&self) -> usize {
        if self.live() {
            self.write - self.read
        } else {
            0
        }
    }

    #[inline]
    fn readable_parts(&self) -> (&[u8], &[u8]) {
        (self.peek(), &[])
    }

    #[inline]
    fn consume(&mut self, n: usize) -> Result<(), RingError> {
        Ring::consume(self, n)
    }

    #[inline]
    fn writable_parts(&mut self) -> (&mut [u8], &mut [u8]) {
        (self.writable(), &mut [])
    }

    #[inline]
    fn commit(&mut self, n: usize) -> Result<(), RingError> {
        Ring::commit(self, n)
    }

    /// One copy, no split.
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        if !self.live() {
            return 0;
        }
        let len = self.write - self.read;
        let n = data.len().min(self.cap - len);
        // The FIFO rewind (the free space does not change).
        if len == 0 {
            let start = rewind_start(data.as_ptr(), self.cap);
            self.read = start;
            self.write = start;
        }
        let at = self.write;
        self.write = at + n;
        self.check();
        // SAFETY: [at, at + n) lies in the free space [write, read + N) of the
        // window (n <= remaining), which is valid for writes (Mirror contract) and
        // not borrowed (we hold &mut self). `data` cannot be part of the window: the
        // only safe ways to see window bytes borrow `self`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(at), n) };
        n
    }

    /// One copy, no split.
    #[inline]
    fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        if !self.live() {
            return 0;
        }
        let n = buf.len().min(self.write - self.read);
        // SAFETY: [read, read + n) is buffered, initialised window memory; `buf` is a
        // distinct &mut borrow so cannot overlap it.
        unsafe { ptr::copy_nonoverlapping(self.base.add(self.read), buf.as_mut_ptr(), n) };
        self.advance_read(n);
        n
    }

    #[inline]
    fn peek_into(&self, buf: &mut [u8]) -> usize {
        let src = self.peek();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        n
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

    /// `push` through the write side, whose rewind of an empty ring is to 0
    /// (positions in these tests do not depend on where `data` lives).
    fn put(r: &mut Ring<MemfdMirror>, data: &[u8]) -> usize {
        let w = r.writable();
        let n = data.len().min(w.len());
        w[..n].copy_from_slice(&data[..n]);
        r.commit(n).unwrap();
        n
    }

    #[test]
    fn exact_capacity_and_wrap() {
        let mut r = ring();
        let n = r.capacity();
        assert_eq!(put(&mut r, &std::vec![7u8; n + 1]), n);
        assert!(r.is_full());
        assert_eq!(r.push(b"x"), 0);
        assert_eq!(r.pop(n + 10), n);
        assert!(r.is_empty());
        assert_eq!((r.read_offset(), r.write_offset()), (0, 0));
        put(&mut r, &std::vec![0u8; n - 3]);
        r.push(b"abc");
        r.pop(n - 3);
        assert_eq!(r.push(b"def"), 3);
        assert_eq!(r.peek(), b"abcdef");
        assert_eq!(r.write_offset(), n + 3);
        // The wrapped bytes are at the start of the lower copy too.
        assert_eq!(&r.window()[..3], b"def");
        assert_eq!(r.window().len(), 2 * n);
        assert_eq!(&r.store_mut()[..3], b"def");
        r.pop(3);
        assert_eq!((r.read_offset(), r.write_offset()), (0, 3));
        assert_eq!(r.peek(), b"def");
    }

    #[test]
    fn a_drained_ring_starts_over_at_zero() {
        let mut r = ring();
        put(&mut r, b"hello");
        let mut out = [0u8; 5];
        assert_eq!(r.pop_into(&mut out), 5);
        // Drained: the positions stay until the next write-side call ...
        assert_eq!((r.read_offset(), r.write_offset()), (5, 5));
        // ... which starts at the beginning of the store again: `push` at the
        // source's offset in its page (x86-64), `writable` at 0.
        let src = *b"xy";
        r.push(&src);
        let start = if cfg!(target_arch = "arm") {
            0
        } else {
            src.as_ptr() as usize % 4096
        };
        assert_eq!((r.read_offset(), r.write_offset()), (start, start + 2));
        assert_eq!(r.peek(), b"xy");
        r.clear();
        assert_eq!(r.writable().len(), r.capacity());
        assert_eq!((r.read_offset(), r.write_offset()), (0, 0));
        // A history view keeps the place (and the history).
        put(&mut r, b"abc");
        r.pop(3);
        let n = r.capacity();
        let (buf, pos) = r.history_view(3);
        assert_eq!((&buf[..pos], buf.len()), (&b"abc"[..], n));
        assert_eq!((r.read_offset(), r.write_offset()), (3, 3));
    }

    #[test]
    fn errors_leave_ring_unchanged() {
        let mut r = ring();
        let n = r.capacity();
        put(&mut r, b"hello");
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
        assert_eq!(r.peek(), b"hello");
        assert_eq!((r.read_offset(), r.write_offset()), (0, 5));
        assert_eq!(
            std::format!("{}", RingError::ZeroCapacity),
            "ring capacity must be at least 1 byte"
        );
    }

    #[test]
    fn history_view_across_the_end_of_the_window() {
        let mut r = ring();
        let n = r.capacity();
        let hist: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        put(&mut r, &hist);
        r.pop(n - 10);
        // write == N: a view with history N starts at offset 0 of the window.
        let (buf, pos) = r.history_view(n);
        assert_eq!((pos, buf.len()), (n, n));
        assert_eq!(buf, &hist[..]);
        r.pop(10);
        // Drained at read == 0 (wrapped), write == 0: the history is in the upper copy.
        assert_eq!((r.read_offset(), r.write_offset()), (0, 0));
        let (buf, pos) = r.history_view(100);
        assert_eq!((pos, buf.len()), (100, n));
        assert_eq!(&buf[..100], &hist[n - 100..]);
        // Write 200 bytes copied from 100 back (overlapping, byte by byte).
        for i in 0..200 {
            buf[pos + i] = buf[i];
        }
        r.commit(200).unwrap();
        let want: Vec<u8> = hist[n - 100..]
            .iter()
            .chain(&hist[n - 100..])
            .copied()
            .collect();
        assert_eq!(r.peek(), &want[..]);
        // The history view never reaches the buffered bytes.
        let (buf, pos) = r.history_view(50);
        assert_eq!((pos, buf.len()), (50, n - 150));
        let (buf, pos) = r.history_view(2 * n);
        assert_eq!((pos, buf.len()), (n, n));
        let _ = buf;
        assert_eq!(r.history_space(n), 0);
        assert_eq!(r.history_space(0), n - 200);
    }
}
