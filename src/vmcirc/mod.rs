//! vmcirc: the one ring implementation, shared by the Pi kernel and Linux.
//!
//! This module owns the byte rings, the interface they share and the contract a
//! memory backend must meet. It is the only place that does pointer arithmetic
//! into a ring's memory: everyone else gets slices from a ring.
//!
//! | file | what |
//! |---|---|
//! | `byte_ring.rs` | [`ByteRing`]: the FIFO interface; a kind supplies the read side (`readable_parts` + `consume`) and the write side (`writable_parts` + `commit`), everything else is a default method |
//! | `mirror.rs` | [`Mirror`]: the backend contract (a `2N` window over `N` bytes), `impl Mirror for &mut M`, the one [`self_test`] every backend runs |
//! | `mirrored.rs` | [`Ring`]: the mirrored ring; the buffered bytes and the free space are always one slice each; the LZ77 [`Ring::history_view`] |
//! | `leapfrog.rs` | [`Leapfrog`]: the leapfrogging ring, one endless contiguous stream over `K` pages that leap forward through a large window of address space (absolute stream positions, counters); [`PageWindow`]: what its backends supply (Linux [`MemfdPages`], the Pi's page tables) |
//! | `modular.rs` | [`ModularRing`]: a plain modular ring over any `AsRef<[u8]> + AsMut<[u8]>` store (two-part reads), for comparisons and targets without a mirror |
//! | `io.rs` | `std::io` impls (feature `std`) |
//! | `linux/` | the Linux/Unix backend (feature `std`, and the host tests): [`MemfdMirror`] and [`MirrorRing`]; the primitives [`Reservation`] (address space held with `PROT_NONE`, pages mapped over it and released) and [`DoubleMap`] (any file descriptor mapped twice back to back, self-tested); fork detection |
//!
//! The Pi kernel's backend, sections mapped twice, is `crate::mmu::SectionMirror`.
//!
//! A new ring kind is a new file here implementing [`ByteRing`] (six methods);
//! a new backend implements [`Mirror`] (two, plus `is_mapped` if its window can
//! disappear) and runs [`self_test`] on a new window.
//!
//! # FIFO and history
//!
//! A drained ring starts over at the beginning of its store on the next write,
//! as `VecDeque` does ([`ByteRing`] docs). History (the bytes behind the write
//! position) is kept only where it is asked for: an LZ77 decoder writes through
//! [`Ring::history_view`] / [`ModularRing::history_view`], which never move the
//! positions (see `crate::heatshrink`).
//!
//! Every operation takes any caller input: impossible requests return a
//! [`RingError`] (or a short count) and leave the ring unchanged; nothing panics.

use core::fmt;

mod byte_ring;
mod leapfrog;
mod mirror;
mod mirrored;
mod modular;
pub mod shared;

#[cfg(all(unix, any(feature = "std", test)))]
mod io;
#[cfg(all(unix, any(feature = "std", test)))]
mod linux;

pub use byte_ring::ByteRing;
pub use leapfrog::{LeapError, LeapLayout, LeapStats, Leapfrog, PageWindow};
pub use mirror::{self_test, Mirror, Probe, SelfTestFailure};
pub use mirrored::Ring;
pub use modular::ModularRing;

#[cfg(all(unix, any(feature = "std", test)))]
pub use linux::{Backend, DoubleMap, MemfdMirror, MirrorOptions, MirrorRing, OnFork, Reservation};
#[cfg(all(unix, any(feature = "std", test)))]
pub use linux::{LeapfrogOptions, LeapfrogRing, MemfdPages};

/// Why a ring operation was refused. The ring is unchanged when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// `commit` asked to add more bytes than there is room for.
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
            RingError::ZeroCapacity => f.write_str("ring capacity must be at least 1 byte"),
        }
    }
}

#[cfg(any(feature = "std", test))]
impl std::error::Error for RingError {}
