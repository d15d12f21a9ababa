//! Decode windows: where decoded bytes land and where the history lives.
//!
//! The decoder asks a [`Window`] for a [`View`] of its memory, writes tokens into it,
//! then [`Window::publish`]es the bytes it wrote. Two kinds of view exist:
//!
//! - [`View::Linear`]: the history and the free space as *one* slice. This is what a
//!   mirrored ring gives: whatever the write position, the `2^W` bytes behind it and
//!   the free space ahead of it are contiguous addresses of the mirror, so a
//!   back-reference is one plain copy and nothing ever wraps.
//! - [`View::Modular`]: the whole store of a plain ring, with its write position;
//!   every write and every copy has to handle the wrap at the end of the store.
//!
//! Implementations here: the mirrored [`Ring`] (linear) and the plain
//! [`ModularRing`] (modular, over its store). Both are the vmcirc rings themselves:
//! the decoder only writes bytes, and the ring's own checked `commit` publishes them.

use core::sync::atomic::{compiler_fence, Ordering};

use crate::vmcirc::{Mirror, ModularRing, Ring};

/// The decoder's access to a window's memory for one call; see the module docs.
pub enum View<'a> {
    /// `buf[..pos]` ends with at least the requested history (the `history` bytes
    /// just before the write position), `buf[pos..]` is free space to write. The
    /// slice must not contain two addresses of the same storage.
    Linear {
        /// History then free space.
        buf: &'a mut [u8],
        /// The write position in `buf` (`>= history`).
        pos: usize,
    },
    /// `buf` is the whole store of a modular ring.
    Modular {
        /// The store (its length is the capacity).
        buf: &'a mut [u8],
        /// The write position, `< buf.len()`.
        pos: usize,
        /// Bytes that may be written from `pos` on (wrapping at the end of `buf`)
        /// without overwriting unread data or the requested history:
        /// `<= buf.len() - history`.
        room: usize,
    },
}

/// Memory a [`super::Decoder`] decodes into: `2^W` bytes of history behind the write
/// position plus free space for new bytes.
///
/// Bytes before the start of the stream read as zero whatever the window holds (the
/// decoder takes care of that), so a window need not be zeroed between streams.
pub trait Window {
    /// Bytes of storage; the decoder needs more than `2^W`.
    fn capacity(&self) -> usize;
    /// Opens the window for writing, keeping the last `history` bytes written.
    fn view(&mut self, history: usize) -> View<'_>;
    /// Publishes `n` bytes written at the write position of the last view.
    fn publish(&mut self, n: usize);
    /// Bytes decoded and not yet read.
    fn buffered(&self) -> usize;
    /// Copies up to `out.len()` unread bytes into `out` and consumes them.
    fn drain_into(&mut self, out: &mut [u8]) -> usize;
}

/// The mirrored ring: a [`View::Linear`] straight over the mirror. Decoded bytes are
/// read with [`Ring::readable`] (one slice) and released with [`Ring::consume`].
impl<M: Mirror> Window for Ring<M> {
    #[inline]
    fn capacity(&self) -> usize {
        Ring::capacity(self)
    }

    #[inline]
    fn view(&mut self, history: usize) -> View<'_> {
        let cap = Ring::capacity(self);
        let history = history.min(cap);
        let room = self.history_space(history);
        // `write` is in [read, read + N] with read < N, so below 2N.
        let write = self.write_offset();
        // Start `history` bytes behind the write position, in whichever copy of the
        // mirror keeps that address inside the window.
        let start = if write >= history {
            write - history
        } else {
            write + cap - history
        };
        let len = history + room;
        debug_assert!(len <= cap && start + len <= 2 * cap);
        // SAFETY: the window is 2N readable, writable, initialised bytes from
        // `base` (Mirror contract). The range [start, start + len) lies inside it:
        // if write >= history, start + len = write + room <= read + N < 2N (room
        // <= remaining = read + N - write); otherwise write < history and start +
        // len = write + N + room <= write + N + (N - history) < 2N. It is at most N
        // bytes long (history + room <= max(len, history) + room = N), so no two of
        // its addresses are the same storage and the slice is an honest `&mut
        // [u8]`. We hold `&mut self`, so no slice handed out by the ring is alive.
        let buf = unsafe { core::slice::from_raw_parts_mut(self.mirror().base().add(start), len) };
        View::Linear { buf, pos: history }
    }

    #[inline]
    fn publish(&mut self, n: usize) {
        // The bytes may have been written through the other copy of the mirror than
        // the one the ring reads them through.
        compiler_fence(Ordering::SeqCst);
        let done = self.commit(n);
        debug_assert!(done.is_ok());
    }

    #[inline]
    fn buffered(&self) -> usize {
        self.len()
    }

    #[inline]
    fn drain_into(&mut self, out: &mut [u8]) -> usize {
        self.pop_into(out)
    }
}

/// The vmcirc modular ring: a [`View::Modular`] over its whole store, lent by
/// [`ModularRing::raw_parts_mut`]; the decoded bytes are published with the ring's
/// checked [`ModularRing::commit`]. Read them with [`ModularRing::peek`] (two
/// slices) and release them with [`ModularRing::consume`]. This is the baseline
/// the mirrored ring is compared with, and the window for targets without a
/// mirror.
///
/// ```
/// use vmcirc::heatshrink::{StreamDecoder, Status};
/// use vmcirc::vmcirc::ModularRing;
/// let mut dec = StreamDecoder::new(8, 4, ModularRing::new([0u8; 512]).unwrap()).unwrap();
/// let mut out = [0u8; 4];
/// let (used, n, status) = dec.decode_into(&[0x00, 0x08], &mut out).unwrap();
/// assert_eq!((used, n, status), (2, 2, Status::NeedInput));
/// assert_eq!(out[..2], [0, 0]);
/// ```
impl<S: AsRef<[u8]> + AsMut<[u8]>> Window for ModularRing<S> {
    #[inline]
    fn capacity(&self) -> usize {
        ModularRing::capacity(self)
    }

    #[inline]
    fn view(&mut self, history: usize) -> View<'_> {
        let room = self.history_space(history);
        let (buf, pos, _) = self.raw_parts_mut();
        View::Modular { buf, pos, room }
    }

    #[inline]
    fn publish(&mut self, n: usize) {
        // `n <= room <= remaining()`; a bad count is refused, not applied.
        let done = self.commit(n);
        debug_assert!(done.is_ok());
    }

    #[inline]
    fn buffered(&self) -> usize {
        self.len()
    }

    #[inline]
    fn drain_into(&mut self, out: &mut [u8]) -> usize {
        self.pop_into(out)
    }
}
