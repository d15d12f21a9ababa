//! [`ByteRing`]: the byte-FIFO interface every ring kind implements.
//!
//! Owns the operations written once for all kinds. A kind supplies two
//! primitives, each a view plus an index move:
//!
//! - the read side: [`ByteRing::readable_parts`] (the buffered bytes) and
//!   [`ByteRing::consume`];
//! - the write side: [`ByteRing::writable_parts`] (the free space) and
//!   [`ByteRing::commit`];
//!
//! plus the two counts, [`ByteRing::capacity`] and [`ByteRing::len`]. Everything
//! else (`push`, `pop`, `pop_into`, `peek_into`, `clear`, `history_space`, the
//! `std::io` helpers ...) is a default method built on them; a kind overrides one
//! only to be faster (the mirrored ring's `push` and `pop_into` are single copies).
//!
//! # FIFO positions and history
//!
//! A ring that drains does not keep its place: the next write-side call
//! (`writable_parts`, `writable`, `push`) on an empty ring first moves both
//! positions back to the start of the store, as `VecDeque` does, so a ring that
//! is emptied as fast as it is filled stays in the same few cache lines. (The
//! mirrored ring's `push` starts within the first 4 KiB, at the source's offset
//! in its page, to keep its copy free of 4K-aliasing stalls; see `mirrored.rs`.)
//! The bytes written before stay in the store but are no longer "behind" the
//! write position. A user that needs them there (an LZ77 decoder's window, see
//! `crate::heatshrink`) writes through the kind's `history_view` instead, which
//! never moves the positions.

use super::RingError;

/// A byte FIFO over a fixed store; see the module docs for what an implementor
/// supplies. Every method takes any input: an impossible request returns a
/// [`RingError`] or a short count and changes nothing; nothing panics.
///
/// ```
/// use vmcirc::{ByteRing, ModularRing};
/// let mut ring = ModularRing::new([0u8; 8]).unwrap();
/// assert_eq!(ring.push(b"abcdef"), 6);
/// assert_eq!(ring.pop(4), 4);
/// assert_eq!(ring.push(b"ghijk"), 5); // wraps at the end of the store
/// let mut out = [0u8; 16];
/// assert_eq!(ring.pop_into(&mut out), 7);
/// assert_eq!(&out[..7], b"efghijk");
/// ```
pub trait ByteRing {
    /// Bytes of storage.
    fn capacity(&self) -> usize;

    /// Bytes buffered.
    fn len(&self) -> usize;

    /// Read primitive: the buffered bytes in order, as (up to) two slices. A
    /// contiguous ring (the mirrored one) returns everything in the first.
    fn readable_parts(&self) -> (&[u8], &[u8]);

    /// Read primitive: discards exactly `n` buffered bytes (after reading them
    /// through [`ByteRing::readable_parts`]). Errors with
    /// [`RingError::Underflow`] when fewer are buffered.
    fn consume(&mut self, n: usize) -> Result<(), RingError>;

    /// Write primitive: the free space in order, as (up to) two slices, to be
    /// filled from the start and published with [`ByteRing::commit`]. The bytes
    /// are initialised (zeros or old data). On an empty ring this first moves the
    /// positions back to the start of the store (see the module docs).
    fn writable_parts(&mut self) -> (&mut [u8], &mut [u8]);

    /// Write primitive: publishes the first `n` bytes of the free space as
    /// buffered. Errors with [`RingError::Overflow`] when fewer are free.
    fn commit(&mut self, n: usize) -> Result<(), RingError>;

    /// Free bytes (`capacity - len`).
    #[inline]
    fn remaining(&self) -> usize {
        self.capacity() - self.len()
    }

    /// No bytes buffered.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No free space.
    #[inline]
    fn is_full(&self) -> bool {
        self.remaining() == 0
    }

    /// The first contiguous part of the free space (all of it for a contiguous
    /// ring); like [`ByteRing::writable_parts`].
    #[inline]
    fn writable(&mut self) -> &mut [u8] {
        self.writable_parts().0
    }

    /// Appends what fits of `data`; returns the count appended.
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        let (a, b) = self.writable_parts();
        let na = data.len().min(a.len());
        a[..na].copy_from_slice(&data[..na]);
        let nb = (data.len() - na).min(b.len());
        b[..nb].copy_from_slice(&data[na..na + nb]);
        // Cannot fail: na + nb bytes of free space were just filled.
        let _ = self.commit(na + nb);
        na + nb
    }

    /// Discards up to `n` buffered bytes; returns the count discarded.
    #[inline]
    fn pop(&mut self, n: usize) -> usize {
        let n = n.min(self.len());
        // Cannot fail: n <= len.
        let _ = self.consume(n);
        n
    }

    /// Copies up to `buf.len()` buffered bytes without consuming them; returns
    /// the count copied.
    #[inline]
    fn peek_into(&self, buf: &mut [u8]) -> usize {
        let (a, b) = self.readable_parts();
        let na = a.len().min(buf.len());
        buf[..na].copy_from_slice(&a[..na]);
        let nb = b.len().min(buf.len() - na);
        buf[na..na + nb].copy_from_slice(&b[..nb]);
        na + nb
    }

    /// Moves up to `buf.len()` bytes out; returns the count moved.
    #[inline]
    fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        let n = self.peek_into(buf);
        // Cannot fail: n bytes were buffered.
        let _ = self.consume(n);
        n
    }

    /// Discards all buffered bytes.
    #[inline]
    fn clear(&mut self) {
        let n = self.len();
        let _ = self.consume(n);
    }

    /// How much may be written without overwriting the last `reserve` bytes
    /// written (LZ77 history, written through a kind's `history_view`):
    /// `capacity - max(len, reserve)`, with `reserve` capped at `capacity`.
    #[inline]
    fn history_space(&self, reserve: usize) -> usize {
        let cap = self.capacity();
        cap - self.len().max(reserve.min(cap))
    }

    /// One `read` call from `src` straight into the free space (its first part);
    /// returns the byte count (0 at end of input, or when the ring is full:
    /// check [`ByteRing::is_full`]). Retries on `Interrupted`.
    ///
    /// ```
    /// use vmcirc::{ByteRing, MirrorRing};
    /// let mut ring = MirrorRing::with_capacity(4096).unwrap();
    /// let mut src: &[u8] = b"abc";
    /// assert_eq!(ring.fill_from(&mut src).unwrap(), 3);
    /// let mut out = Vec::new();
    /// assert_eq!(ring.drain_to(&mut out).unwrap(), 3);
    /// assert_eq!(out, b"abc");
    /// ```
    #[cfg(any(feature = "std", test))]
    fn fill_from<R: std::io::Read + ?Sized>(&mut self, src: &mut R) -> std::io::Result<usize> {
        use std::io;
        let buf = self.writable();
        if buf.is_empty() {
            return Ok(0);
        }
        let n = loop {
            match src.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.commit(n)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }

    /// One `write` call from the buffered bytes (their first part) into `dst`;
    /// returns the count written and consumed (0 when the ring is empty). A
    /// writer that accepts nothing is a `WriteZero` error. Retries on
    /// `Interrupted`.
    #[cfg(any(feature = "std", test))]
    fn drain_to<W: std::io::Write + ?Sized>(&mut self, dst: &mut W) -> std::io::Result<usize> {
        use std::io;
        let buf = self.readable_parts().0;
        if buf.is_empty() {
            return Ok(0);
        }
        let n = loop {
            match dst.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.consume(n)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }
}
