//! vmcirc: the one ring implementation, shared by the Pi kernel and Linux.
//!
//! This module owns the byte rings and the contract a memory backend must meet:
//!
//! - [`Mirror`]: a *window* of `2 * N` bytes of address space over `N` bytes of
//!   storage, mapped twice back to back. Backends: the Pi kernel maps 1 MiB sections
//!   twice (`crate::mmu`), Linux and the host tests map a memfd twice
//!   ([`MemfdMirror`], feature `std` or `cfg(test)`).
//! - [`Ring`]: the mirrored ring. Because byte `i` and byte `i + N` of the window
//!   are the same storage, the buffered bytes always have one contiguous preimage
//!   ([`Ring::peek`]) and so has the free space ([`Ring::writable`]).
//! - [`ModularRing`]: a plain modular ring over any `AsRef<[u8]> + AsMut<[u8]>`
//!   store, with the same API except that [`ModularRing::peek`] returns two parts.
//!   It exists for comparisons (shell, benchmarks, tests).
//! - [`ByteRing`]: the operations both rings share, so one sequence (a shell
//!   command, a benchmark, a property test) can drive either.
//!
//! Both rings also keep the last `N` bytes written as LZ77 *history*:
//! [`Ring::copy_back`] appends bytes copied from `distance` bytes behind the write
//! position (what a heatshrink/LZSS decoder needs), and [`Ring::history_space`] says
//! how much may be written before a given amount of history is overwritten.
//!
//! Every operation takes any caller input: impossible requests return a
//! [`RingError`] (or a short count) and leave the ring unchanged; nothing panics.
//!
//! With feature `std` the module adds the Linux backend ([`MemfdMirror`]), the safe
//! [`MirrorRing`] alias and `std::io` impls.

use core::fmt;

mod mirrored;
mod modular;
pub mod shared;

#[cfg(all(unix, any(feature = "std", test)))]
mod io;
#[cfg(all(unix, any(feature = "std", test)))]
mod linux;

pub use mirrored::Ring;
pub use modular::ModularRing;

#[cfg(all(unix, any(feature = "std", test)))]
pub use linux::{Backend, MemfdMirror, MirrorOptions, MirrorRing};

/// A window of `2 * capacity` bytes whose two halves are the same storage.
///
/// # Safety
///
/// An implementation promises, for as long as the value lives (and across moves
/// of it: the window must not live inside the value itself):
///
/// - `base()` and `capacity()` return the same values on every call;
/// - `capacity() > 0` and `2 * capacity()` does not overflow `isize`;
/// - the `2 * capacity()` bytes from `base()` are readable and writable, and no
///   one else reads or writes them while a [`Ring`] owns the mirror;
/// - for every `i < capacity()`, byte `base + i` and byte `base + i + capacity()`
///   are the same storage (a write through one is seen by a read through the other);
/// - the storage is initialised (the backends zero it at creation).
pub unsafe trait Mirror {
    /// The start of the window.
    fn base(&self) -> *mut u8;
    /// `N`: the number of bytes of storage (the window is `2 * N` bytes).
    fn capacity(&self) -> usize;
}

/// Why a ring operation was refused. The ring is unchanged when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// `commit` or `copy_back` asked to add more bytes than there is room for.
    Overflow {
        /// Bytes asked for.
        requested: usize,
        /// Free space at the time.
        available: usize,
    },
    /// `consume` asked to remove more bytes than are buffered.
    Underflow {
        /// Bytes asked for.
        requested: usize,
        /// Bytes buffered at the time.
        available: usize,
    },
    /// `copy_back` with a distance of 0 or beyond the capacity.
    BadDistance {
        /// The distance asked for.
        distance: usize,
        /// The ring's capacity (the largest valid distance).
        capacity: usize,
    },
    /// A ring over an empty store was asked for.
    ZeroCapacity,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RingError::Overflow {
                requested,
                available,
            } => write!(
                f,
                "ring overflow: {requested} bytes requested, {available} free"
            ),
            RingError::Underflow {
                requested,
                available,
            } => write!(
                f,
                "ring underflow: {requested} bytes requested, {available} buffered"
            ),
            RingError::BadDistance { distance, capacity } => {
                write!(f, "bad copy distance {distance}: must be 1..={capacity}")
            }
            RingError::ZeroCapacity => f.write_str("ring capacity must be at least 1 byte"),
        }
    }
}

#[cfg(any(feature = "std", test))]
impl std::error::Error for RingError {}

/// The operations the mirrored and the modular ring share.
///
/// Each method has the meaning of the inherent method of the same name on
/// [`Ring`] and [`ModularRing`].
pub trait ByteRing {
    /// Bytes of storage.
    fn capacity(&self) -> usize;
    /// Bytes buffered.
    fn len(&self) -> usize;
    /// Free bytes (`capacity - len`).
    fn remaining(&self) -> usize {
        self.capacity() - self.len()
    }
    /// No bytes buffered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// No free space.
    fn is_full(&self) -> bool {
        self.remaining() == 0
    }
    /// Appends what fits of `data`; returns the count appended.
    fn push(&mut self, data: &[u8]) -> usize;
    /// Discards up to `n` buffered bytes; returns the count discarded.
    fn pop(&mut self, n: usize) -> usize;
    /// Moves up to `buf.len()` bytes out; returns the count moved.
    fn pop_into(&mut self, buf: &mut [u8]) -> usize;
    /// Copies up to `buf.len()` buffered bytes without consuming them.
    fn peek_into(&self, buf: &mut [u8]) -> usize {
        let (a, b) = self.readable_parts();
        let na = a.len().min(buf.len());
        buf[..na].copy_from_slice(&a[..na]);
        let nb = b.len().min(buf.len() - na);
        buf[na..na + nb].copy_from_slice(&b[..nb]);
        na + nb
    }
    /// The buffered bytes in order, as (up to) two slices; the mirrored ring
    /// always returns everything in the first one.
    fn readable_parts(&self) -> (&[u8], &[u8]);
    /// Contiguous free space at the write position (all of it for the mirrored ring).
    fn writable(&mut self) -> &mut [u8];
    /// Marks `n` bytes at the write position as buffered.
    fn commit(&mut self, n: usize) -> Result<(), RingError>;
    /// Discards exactly `n` buffered bytes.
    fn consume(&mut self, n: usize) -> Result<(), RingError>;
    /// Discards all buffered bytes (history is kept for `copy_back`).
    fn clear(&mut self);
    /// Appends `count` bytes copied from `distance` bytes behind the write position.
    fn copy_back(&mut self, distance: usize, count: usize) -> Result<(), RingError>;
    /// Bytes that may be written without overwriting the last `reserve` bytes of history.
    fn history_space(&self, reserve: usize) -> usize {
        self.capacity() - self.len().max(reserve.min(self.capacity()))
    }
    /// Read position within the storage (window for the mirrored ring).
    fn read_offset(&self) -> usize;
    /// Write position within the storage (window for the mirrored ring).
    fn write_offset(&self) -> usize;
}
