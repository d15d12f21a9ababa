//! The plain modular ring: indices taken modulo the capacity, two-part copies.
//!
//! Owns [`ModularRing`], the comparison point for the mirrored [`super::Ring`]:
//! the same operations over any `AsRef<[u8]> + AsMut<[u8]>` store of any length
//! from 1 up (no power-of-two requirement). It uses no `unsafe`: every access is
//! a bounds-checked slice of the store.

use super::{ByteRing, RingError};

/// A byte ring over a plain store; the buffered bytes may be split in two at the
/// end of the store.
///
/// ```
/// use vmcirc::vmcirc::ModularRing;
/// let mut ring = ModularRing::new([0u8; 8]).unwrap();
/// ring.push(b"abcdef");
/// ring.pop(4);
/// ring.push(b"ghij"); // wraps
/// assert_eq!(ring.peek(), (&b"efgh"[..], &b"ij"[..]));
/// ```
#[derive(Clone)]
pub struct ModularRing<S: AsRef<[u8]> + AsMut<[u8]>> {
    store: S,
    cap: usize,
    head: usize,
    len: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> ModularRing<S> {
    /// An empty ring over `store` (its current contents become the "history" that
    /// [`ModularRing::copy_back`] may read). Errors on an empty store.
    pub fn new(store: S) -> Result<Self, RingError> {
        let cap = store.as_ref().len();
        if cap == 0 {
            return Err(RingError::ZeroCapacity);
        }
        Ok(ModularRing {
            store,
            cap,
            head: 0,
            len: 0,
        })
    }

    #[inline(always)]
    fn check(&self) {
        debug_assert!(self.head < self.cap);
        debug_assert!(self.len <= self.cap);
    }

    #[inline(always)]
    fn wrap(&self, i: usize) -> usize {
        // i < 2 * cap everywhere this is used.
        if i >= self.cap {
            i - self.cap
        } else {
            i
        }
    }

    #[inline(always)]
    fn tail(&self) -> usize {
        self.wrap(self.head + self.len)
    }

    /// Bytes of storage.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Bytes buffered.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    /// Free bytes.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.cap - self.len
    }
    /// No bytes buffered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// No free space.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.cap
    }
    /// Read position in the store, `0..capacity`.
    #[inline]
    pub fn read_offset(&self) -> usize {
        self.head
    }
    /// Write position in the store, `0..capacity`.
    #[inline]
    pub fn write_offset(&self) -> usize {
        self.tail()
    }
    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The whole store, mutably, with the write offset and the buffered length:
    /// `(store, write_offset, len)`. For writers that produce in place and refer
    /// back to earlier bytes (such as an LZ decoder using the store as its
    /// history).
    ///
    /// `store` is all [`ModularRing::capacity`] bytes. The `len` buffered bytes
    /// start at [`ModularRing::read_offset`] and end at `write_offset`, wrapping at
    /// the end of the store; the [`ModularRing::remaining`] free bytes start at
    /// `write_offset` and wrap too. Everything outside the buffered bytes is
    /// history: what was written there before (or the store's initial contents).
    ///
    /// Only the bytes change through this: the offsets are the ring's own and can
    /// only move through the checked operations, so no misuse of the slice can
    /// break the ring's invariants. Bytes written at the write position become
    /// buffered data when published with [`ModularRing::commit`] (which refuses
    /// more than `remaining()`). Writing over buffered bytes is allowed but
    /// changes what the reader gets, so writers should stay in the free space.
    ///
    /// ```
    /// use vmcirc::vmcirc::ModularRing;
    /// let mut ring = ModularRing::new([0u8; 4]).unwrap();
    /// ring.push(b"abc");
    /// ring.pop(2);
    /// let (store, w, len) = ring.raw_parts_mut();
    /// assert_eq!((w, len), (3, 1));
    /// // Write two bytes at the write position (wrapping), copied from history.
    /// store[w] = store[0]; // 'a'
    /// store[(w + 1) % 4] = store[1]; // 'b'
    /// ring.commit(2).unwrap();
    /// assert_eq!(ring.peek(), (&b"ca"[..], &b"b"[..]));
    /// ```
    #[inline]
    pub fn raw_parts_mut(&mut self) -> (&mut [u8], usize, usize) {
        let (tail, len) = (self.tail(), self.len);
        (self.store.as_mut(), tail, len)
    }

    /// Appends as much of `data` as fits; returns the count appended.
    #[inline]
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.remaining());
        let tail = self.tail();
        self.len += n;
        self.check();
        let first = n.min(self.cap - tail);
        let buf = self.store.as_mut();
        buf[tail..tail + first].copy_from_slice(&data[..first]);
        buf[..n - first].copy_from_slice(&data[first..n]);
        n
    }

    /// Discards up to `n` buffered bytes; returns the count discarded.
    #[inline]
    pub fn pop(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        self.advance_read(n);
        n
    }

    /// Moves up to `buf.len()` buffered bytes into `buf`; returns the count.
    #[inline]
    pub fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len);
        let head = self.head;
        self.advance_read(n);
        let first = n.min(self.cap - head);
        let store = self.store.as_ref();
        buf[..first].copy_from_slice(&store[head..head + first]);
        buf[first..n].copy_from_slice(&store[..n - first]);
        n
    }

    /// The buffered bytes in order, as two slices (the second is empty unless
    /// the data wraps).
    #[inline]
    pub fn peek(&self) -> (&[u8], &[u8]) {
        let first = self.len.min(self.cap - self.head);
        let store = self.store.as_ref();
        (
            &store[self.head..self.head + first],
            &store[..self.len - first],
        )
    }

    /// Same as [`ModularRing::peek`].
    #[inline]
    pub fn readable(&self) -> (&[u8], &[u8]) {
        self.peek()
    }

    /// The first contiguous part of the free space (up to the end of the store).
    #[inline]
    pub fn writable(&mut self) -> &mut [u8] {
        let tail = self.tail();
        let n = self.remaining().min(self.cap - tail);
        &mut self.store.as_mut()[tail..tail + n]
    }

    /// Publishes `n` bytes at the write position (up to [`ModularRing::remaining`]).
    #[inline]
    pub fn commit(&mut self, n: usize) -> Result<(), RingError> {
        let available = self.remaining();
        if n > available {
            return Err(RingError::Overflow {
                requested: n,
                available,
            });
        }
        self.len += n;
        self.check();
        Ok(())
    }

    /// Discards exactly `n` buffered bytes.
    #[inline]
    pub fn consume(&mut self, n: usize) -> Result<(), RingError> {
        if n > self.len {
            return Err(RingError::Underflow {
                requested: n,
                available: self.len,
            });
        }
        self.advance_read(n);
        Ok(())
    }

    /// Discards all buffered bytes; history stays for `copy_back`.
    #[inline]
    pub fn clear(&mut self) {
        self.head = self.tail();
        self.len = 0;
        self.check();
    }

    #[inline(always)]
    fn advance_read(&mut self, n: usize) {
        self.head = self.wrap(self.head + n);
        self.len -= n;
        self.check();
    }

    /// `capacity - max(len, reserve)` (`reserve` capped at `capacity`).
    #[inline]
    pub fn history_space(&self, reserve: usize) -> usize {
        self.cap - self.len.max(reserve.min(self.cap))
    }

    /// Appends `count` bytes copied from `distance` bytes behind the write
    /// position (byte-at-a-time semantics); see [`super::Ring::copy_back`].
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
        let mut dst = self.tail();
        let mut src = self.wrap(dst + self.cap - distance);
        self.len += count;
        self.check();
        let cap = self.cap;
        let buf = self.store.as_mut();
        let mut left = count;
        while left > 0 {
            // Each piece is at most `distance` long, so its source is complete
            // before it is copied; a source that runs ahead into the piece (source
            // after destination) is what memmove's forward copy handles.
            let k = left.min(cap - src).min(cap - dst).min(distance);
            buf.copy_within(src..src + k, dst);
            src += k;
            if src == cap {
                src = 0;
            }
            dst += k;
            if dst == cap {
                dst = 0;
            }
            left -= k;
        }
        Ok(())
    }
}

/// Shows the positions, not the store (which may be large).
impl<S: AsRef<[u8]> + AsMut<[u8]>> core::fmt::Debug for ModularRing<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ModularRing")
            .field("capacity", &self.cap)
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> ByteRing for ModularRing<S> {
    #[inline]
    fn capacity(&self) -> usize {
        self.cap
    }
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn remaining(&self) -> usize {
        ModularRing::remaining(self)
    }
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        ModularRing::push(self, data)
    }
    #[inline]
    fn pop(&mut self, n: usize) -> usize {
        ModularRing::pop(self, n)
    }
    #[inline]
    fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        ModularRing::pop_into(self, buf)
    }
    #[inline]
    fn readable_parts(&self) -> (&[u8], &[u8]) {
        self.peek()
    }
    #[inline]
    fn writable(&mut self) -> &mut [u8] {
        ModularRing::writable(self)
    }
    #[inline]
    fn commit(&mut self, n: usize) -> Result<(), RingError> {
        ModularRing::commit(self, n)
    }
    #[inline]
    fn consume(&mut self, n: usize) -> Result<(), RingError> {
        ModularRing::consume(self, n)
    }
    #[inline]
    fn clear(&mut self) {
        ModularRing::clear(self)
    }
    #[inline]
    fn copy_back(&mut self, distance: usize, count: usize) -> Result<(), RingError> {
        ModularRing::copy_back(self, distance, count)
    }
    #[inline]
    fn history_space(&self, reserve: usize) -> usize {
        ModularRing::history_space(self, reserve)
    }
    #[inline]
    fn read_offset(&self) -> usize {
        self.head
    }
    #[inline]
    fn write_offset(&self) -> usize {
        self.tail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_errors() {
        assert_eq!(
            ModularRing::new([0u8; 0]).unwrap_err(),
            RingError::ZeroCapacity
        );
        let mut r = ModularRing::new([0u8; 5]).unwrap();
        assert_eq!(r.push(b"abcdefg"), 5);
        assert!(r.is_full());
        assert_eq!(r.pop(3), 3);
        assert_eq!(r.push(b"xyz"), 3);
        assert_eq!(r.peek(), (&b"de"[..], &b"xyz"[..]));
        let mut out = [0u8; 9];
        assert_eq!(r.pop_into(&mut out), 5);
        assert_eq!(&out[..5], b"dexyz");
        assert_eq!(
            r.consume(1),
            Err(RingError::Underflow {
                requested: 1,
                available: 0
            })
        );
        assert_eq!(
            r.commit(6),
            Err(RingError::Overflow {
                requested: 6,
                available: 5
            })
        );
        assert_eq!(
            r.copy_back(0, 1),
            Err(RingError::BadDistance {
                distance: 0,
                capacity: 5
            })
        );
        assert_eq!(
            r.copy_back(6, 1),
            Err(RingError::BadDistance {
                distance: 6,
                capacity: 5
            })
        );
    }

    #[test]
    fn raw_parts_mut_writes_then_commits() {
        let mut r = ModularRing::new([0u8; 6]).unwrap();
        r.push(b"abcde");
        r.pop(4);
        // One buffered byte ('e' at 4), write position 5, five bytes free.
        let (store, w, len) = r.raw_parts_mut();
        assert_eq!((store.len(), w, len), (6, 5, 1));
        assert_eq!(store, b"abcde\0");
        // Produce three bytes in place, wrapping at the end of the store.
        for (i, &b) in b"xyz".iter().enumerate() {
            store[(w + i) % 6] = b;
        }
        // Nothing is published until committed.
        assert_eq!(r.len(), 1);
        r.commit(3).unwrap();
        assert_eq!(r.peek(), (&b"ex"[..], &b"yz"[..]));
        assert_eq!(r.write_offset(), 2);
        // The offsets only move through the checked operations.
        assert_eq!(
            r.commit(3),
            Err(RingError::Overflow {
                requested: 3,
                available: 2
            })
        );
        let (_, w, len) = r.raw_parts_mut();
        assert_eq!((w, len), (2, 4));
        let mut out = [0u8; 6];
        assert_eq!(r.pop_into(&mut out), 4);
        assert_eq!(&out[..4], b"exyz");
        assert_eq!(r.raw_parts_mut().1, r.read_offset());
    }

    #[test]
    fn copy_back_repeats() {
        let mut r = ModularRing::new([0u8; 7]).unwrap();
        r.push(b"ab");
        r.pop(2);
        r.copy_back(2, 5).unwrap();
        let mut out = [0u8; 7];
        assert_eq!(r.pop_into(&mut out), 5);
        assert_eq!(&out[..5], b"ababa");
    }
}
