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
/// use vmcirc::{ByteRing, ModularRing};
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
    /// An empty ring over `store` (its current contents become the "history"
    /// that [`ModularRing::history_view`] shows). Errors on an empty store.
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

    /// The decoder's window: the whole store, mutably, with the write position
    /// and the room: `(store, write_offset, room)`, where `room` is
    /// [`ByteRing::history_space`]`(history)`. For writers that produce in place
    /// and refer back to earlier bytes (an LZ77 decoder using the store as its
    /// history).
    ///
    /// `store` is all [`ByteRing::capacity`] bytes. The `len` buffered bytes start
    /// at [`ModularRing::read_offset`] and end at `write_offset`, wrapping at the
    /// end of the store; the `room` bytes from `write_offset` on (wrapping too)
    /// may be written without overwriting buffered bytes or the last `history`
    /// bytes written. Everything outside the buffered bytes is history: what was
    /// written there before (or the store's initial contents). Unlike the FIFO
    /// write side, this never moves the positions.
    ///
    /// Only the bytes change through this: the offsets are the ring's own and
    /// only move through the checked operations, so no misuse of the slice can
    /// break the ring's invariants. Bytes written at the write position become
    /// buffered data when published with [`ByteRing::commit`] (which refuses
    /// more than the free space).
    ///
    /// ```
    /// use vmcirc::{ByteRing, ModularRing};
    /// let mut ring = ModularRing::new([0u8; 4]).unwrap();
    /// ring.push(b"abc");
    /// ring.pop(2);
    /// let (store, w, room) = ring.history_view(2);
    /// assert_eq!((w, room), (3, 2));
    /// // Write two bytes at the write position (wrapping), copied from history.
    /// store[w] = store[0]; // 'a'
    /// store[(w + 1) % 4] = store[1]; // 'b'
    /// ring.commit(2).unwrap();
    /// assert_eq!(ring.peek(), (&b"ca"[..], &b"b"[..]));
    /// ```
    #[inline]
    pub fn history_view(&mut self, history: usize) -> (&mut [u8], usize, usize) {
        let room = self.history_space(history);
        let tail = self.tail();
        (self.store.as_mut(), tail, room)
    }

    #[inline(always)]
    fn advance_read(&mut self, n: usize) {
        self.head = self.wrap(self.head + n);
        self.len -= n;
        self.check();
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
    fn readable_parts(&self) -> (&[u8], &[u8]) {
        self.peek()
    }

    #[inline]
    fn consume(&mut self, n: usize) -> Result<(), RingError> {
        if n > self.len {
            return Err(RingError::Underflow {
                requested: n,
                available: self.len,
            });
        }
        self.advance_read(n);
        Ok(())
    }

    /// On an empty ring the read position first moves back to 0.
    #[inline]
    fn writable_parts(&mut self) -> (&mut [u8], &mut [u8]) {
        if self.len == 0 {
            self.head = 0;
        }
        let tail = self.tail();
        let free = self.cap - self.len;
        let first = free.min(self.cap - tail);
        let (low, high) = self.store.as_mut().split_at_mut(tail);
        (&mut high[..first], &mut low[..free - first])
    }

    /// Two copies at most (the split at the end of the store). The same
    /// result as the default method, written out because building both
    /// `writable_parts` slices costs the Pi about 10% at 1-byte chunks (`make
    /// bench-pi`: 9.43 instead of 10.63 MB/s), and this ring is the baseline
    /// the mirrored one is measured against.
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.len);
        // The FIFO rewind (the free space does not change).
        if self.len == 0 {
            self.head = 0;
        }
        let tail = self.tail();
        self.len += n;
        self.check();
        let first = n.min(self.cap - tail);
        let buf = self.store.as_mut();
        buf[tail..tail + first].copy_from_slice(&data[..first]);
        buf[..n - first].copy_from_slice(&data[first..n]);
        n
    }

    /// Two copies at most, straight from the store (see `push` for why it is
    /// written out).
    #[inline]
    fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len);
        let head = self.head;
        self.advance_read(n);
        let first = n.min(self.cap - head);
        let store = self.store.as_ref();
        buf[..first].copy_from_slice(&store[head..head + first]);
        buf[first..n].copy_from_slice(&store[..n - first]);
        n
    }

    #[inline]
    fn commit(&mut self, n: usize) -> Result<(), RingError> {
        let available = self.cap - self.len;
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
        // Drained: the next write starts at 0 again.
        assert_eq!(r.read_offset(), 3);
        assert_eq!(r.push(b"q"), 1);
        assert_eq!((r.read_offset(), r.write_offset()), (0, 1));
    }

    #[test]
    fn writable_parts_split_at_the_end() {
        let mut r = ModularRing::new([0u8; 6]).unwrap();
        r.push(b"abcd");
        r.pop(3);
        // 'd' at 3; free space 4..6 then 0..3.
        let (a, b) = r.writable_parts();
        assert_eq!((a.len(), b.len()), (2, 3));
        a.copy_from_slice(b"ef");
        b[..1].copy_from_slice(b"g");
        r.commit(3).unwrap();
        assert_eq!(r.peek(), (&b"def"[..], &b"g"[..]));
    }

    #[test]
    fn history_view_writes_then_commits() {
        let mut r = ModularRing::new([0u8; 6]).unwrap();
        r.push(b"abcde");
        r.pop(4);
        // One buffered byte ('e' at 4), write position 5, five bytes free.
        let (store, w, room) = r.history_view(0);
        assert_eq!((store.len(), w, room), (6, 5, 5));
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
        // The room keeps the history asked for.
        let (_, w, room) = r.history_view(5);
        assert_eq!((w, room), (2, 1));
        let mut out = [0u8; 6];
        assert_eq!(r.pop_into(&mut out), 4);
        assert_eq!(&out[..4], b"exyz");
        // Drained, but a history view keeps the place.
        let (store, w, _) = r.history_view(6);
        assert_eq!((w, &store[..2]), (2, &b"yz"[..]));
        assert_eq!(r.history_view(0).1, r.read_offset());
    }
}
