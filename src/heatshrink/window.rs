//! Decode windows: where decoded bytes land and where the history lives.
//!
//! The decoder asks a [`Window`] for a [`View`] of its memory, writes tokens into it,
//! then commits the bytes it wrote ([`ByteRing::commit`]). Two kinds of view exist:
//!
//! - [`View::Linear`]: the history and the free space as *one* slice. This is what a
//!   mirrored ring gives: whatever the write position, the `2^W` bytes behind it and
//!   the free space ahead of it are contiguous addresses of the mirror, so a
//!   back-reference is one plain copy and nothing ever wraps.
//! - [`View::Modular`]: the whole store of a plain ring, with its write position;
//!   every write and every copy has to handle the wrap at the end of the store.
//!
//! Implementations here: the mirrored [`Ring`] (linear) and the plain
//! [`ModularRing`] (modular, over its store). Both are the vmcirc rings themselves,
//! lending their memory through their safe `history_view` (which, unlike the FIFO
//! write side, never moves the positions, so the history survives reads that
//! drain the ring): the decoder only writes bytes into the slice it is handed,
//! and the ring's own checked `commit` publishes them. No pointer arithmetic here.

use crate::vmcirc::{ByteRing, Mirror, ModularRing, Ring};

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
/// position plus free space for new bytes. A window is a ring ([`ByteRing`]): the
/// decoder publishes what it wrote with [`ByteRing::commit`], and the caller reads
/// and releases the decoded bytes through the ring's read side.
///
/// Bytes before the start of the stream read as zero whatever the window holds (the
/// decoder takes care of that), so a window need not be zeroed between streams.
pub trait Window: ByteRing {
    /// Opens the window for writing, keeping the last `history` bytes written
    /// (the ring's `history_view`, which never moves its positions).
    fn view(&mut self, history: usize) -> View<'_>;
}

/// The mirrored ring: a [`View::Linear`] straight over the mirror
/// ([`Ring::history_view`]). Decoded bytes are read with [`Ring::readable`] (one
/// slice) and released with [`Ring::consume`].
impl<M: Mirror> Window for Ring<M> {
    #[inline]
    fn view(&mut self, history: usize) -> View<'_> {
        let (buf, pos) = self.history_view(history);
        View::Linear { buf, pos }
    }
}

/// The vmcirc modular ring: a [`View::Modular`] over its whole store, lent by
/// [`ModularRing::history_view`]; the decoded bytes are published with the ring's
/// checked [`ByteRing::commit`]. Read them with [`ModularRing::peek`] (two
/// slices) and release them with [`ByteRing::consume`]. This is the baseline
/// the mirrored ring is compared with, and the window for targets without a
/// mirror.
///
/// ```
/// use vmcirc::heatshrink::{StreamDecoder, Status};
/// use vmcirc::ModularRing;
/// let mut dec = StreamDecoder::new(8, 4, ModularRing::new([0u8; 512]).unwrap()).unwrap();
/// let mut out = [0u8; 4];
/// let (used, n, status) = dec.decode_into(&[0x00, 0x08], &mut out).unwrap();
/// assert_eq!((used, n, status), (2, 2, Status::NeedInput));
/// assert_eq!(out[..2], [0, 0]);
/// ```
impl<S: AsRef<[u8]> + AsMut<[u8]>> Window for ModularRing<S> {
    #[inline]
    fn view(&mut self, history: usize) -> View<'_> {
        let (buf, pos, room) = self.history_view(history);
        View::Modular { buf, pos, room }
    }
}
