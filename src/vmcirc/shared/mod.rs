//! A lock-free mirrored ring shared by processes: the counter protocol (`no_std`)
//! and, on Linux (feature `std`), the shared memory file, blocking and liveness.
//!
//! One memory file holds a header page followed by the data area of `N` bytes,
//! which every attached process maps twice back to back (its own mirror of the
//! same file), so buffered bytes and free space are always one slice:
//!
//! ```text
//!  file:     [ header page | data (N bytes) ]
//!  process:  header -> [ header page ]      window -> [ data | data ] (2N, mirrored)
//! ```
//!
//! - [`header`]: the header layout (magic, version, capacity, the producer and
//!   consumer counters on separate cache lines, futex words, per-side liveness)
//!   and its validation: everything read from it is treated as untrusted.
//! - [`spsc`]: the single-producer single-consumer byte protocol over monotonic
//!   `u64` positions (`offset = pos % N`): [`spsc::ProducerCore`] /
//!   [`spsc::ConsumerCore`]. `no_std`, no syscalls: the kernel's UART receive
//!   queue can run on it with a mirrored store and no futex.
//! - [`mpsc`]: variable-size records from many producers, reserved by CAS on a
//!   reserve counter, published by a commit flag in the record header, read in
//!   reservation order; a dead producer's slot is skipped and reported.
//! - With feature `std` on Linux: [`SpscRing`] / [`MpscRing`] (create, share by
//!   inheritance, `SCM_RIGHTS` or name, attach with validation), the
//!   [`Producer`]/[`Consumer`] halves with blocking waits on futexes, `std::io`
//!   impls, and peer-death detection (pidfd, see `liveness`).
//!
//! The atomics come from `sync`, which is `loom`'s under `cfg(loom)`: the loom
//! models in `loom_tests` check this very protocol code (`make test-loom`).
//!
//! For the kernel (not wired up yet): the UART receive queue would be a
//! [`header::Header`] (a static, `Header::zeroed()` + `init`) and a mirrored
//! store (1 MiB sections mapped twice by `crate::mmu`). The interrupt handler
//! holds a [`spsc::ProducerCore`]: `free_at_least(1)`, write the FIFO bytes at
//! `write_offset()`, `commit(n)`; when `free()` is 0 it leaves the bytes in the
//! FIFO and masks RX (today's backpressure). The shell holds a
//! [`spsc::ConsumerCore`]: `available_at_least(1)`, read one contiguous slice at
//! `read_offset()` (`rx`, `push rx`, `hs` take it straight from there),
//! `consume(n)`, then unmask RX. No futex: `consumer_needs_wake` and
//! `prepare_sleep` are simply not called (the `spsc_polling` loom model). `info`
//! reads `position()` of both halves as the byte counters.

pub mod header;
pub mod mpsc;
pub mod spsc;
mod sync;

#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
mod futex;
#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
mod liveness;
#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
#[macro_use]
mod region;
#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
mod records;
#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
mod stream;

#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
pub use records::{MpscConsumer, MpscProducer, MpscRing, Record, Reservation};
#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
pub use region::{recv_fd, send_fd, Options};
#[cfg(all(target_os = "linux", any(feature = "std", test), not(loom)))]
pub use stream::{Consumer, Producer, SpscRing};

#[cfg(all(test, loom))]
mod loom_tests;

use core::fmt;

/// Which side of a ring a process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The writing side (one of several for MPSC).
    Producer,
    /// The reading side.
    Consumer,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Producer => "producer",
            Side::Consumer => "consumer",
        })
    }
}

/// Why a shared-ring operation failed. Nothing is changed when one is returned,
/// except where a variant says otherwise ([`Error::Lost`] reports a skip done).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The header does not start with the magic: not a vmcirc ring, or its creator
    /// has not finished initialising it.
    NotInitialised,
    /// A format version this build does not read.
    BadVersion(u32),
    /// A ring of the other kind (SPSC vs MPSC).
    WrongKind {
        /// The kind asked for.
        expected: u32,
        /// The kind in the header.
        found: u32,
    },
    /// The file is smaller (or larger) than its header says: truncated or not a ring.
    Truncated {
        /// The file's size.
        file_len: u64,
        /// The size the header implies.
        expected: u64,
    },
    /// Something read from shared memory is impossible: a field out of range or a
    /// counter that moved the wrong way. The peer is broken or hostile.
    Corrupt {
        /// What is wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// What it was checked against.
        limit: u64,
    },
    /// `commit` of more bytes than are free.
    Overflow {
        /// Bytes asked for.
        requested: u64,
        /// Free bytes.
        available: u64,
    },
    /// `consume` of more bytes than are buffered.
    Underflow {
        /// Bytes asked for.
        requested: u64,
        /// Buffered bytes.
        available: u64,
    },
    /// A record longer than the ring can ever hold.
    TooLarge {
        /// The length asked for.
        len: u64,
        /// The largest possible.
        max: u64,
    },
    /// The side is in use by a live process (or, for a one-stream SPSC ring, was
    /// used before).
    SideTaken {
        /// Which side.
        side: Side,
        /// The process holding it (0: finished).
        pid: u32,
    },
    /// All producer slots of an MPSC ring are held by live or unresolved producers.
    NoProducerSlot,
    /// The peer closed its side cleanly: the end of the stream for a consumer, a
    /// broken pipe for a producer.
    Closed(Side),
    /// The peer process died without closing its side.
    PeerDied {
        /// Which side died.
        side: Side,
        /// Its process id.
        pid: u32,
    },
    /// The wait timed out.
    TimedOut,
    /// A non-blocking (`try_`) call found no room or no data.
    WouldBlock,
    /// MPSC: a record reserved by a producer that died before committing it was
    /// skipped (the consumer carries on with the next record).
    Lost {
        /// The dead producer's process id.
        pid: u32,
        /// The record's size in the ring (header and padding included).
        bytes: u64,
    },
    /// An operating-system call failed.
    #[cfg(any(feature = "std", test))]
    Os(std::io::Error),
}

impl Error {
    pub(crate) fn corrupt(what: &'static str, value: u64, limit: u64) -> Self {
        Error::Corrupt { what, value, limit }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInitialised => {
                f.write_str("not an initialised vmcirc shared ring (bad magic)")
            }
            Error::BadVersion(v) => write!(
                f,
                "shared ring format version {v} is not supported (this build reads {})",
                header::VERSION
            ),
            Error::WrongKind { expected, found } => write!(
                f,
                "shared ring is of kind {} ({found}), expected {} ({expected})",
                header::kind_name(*found),
                header::kind_name(*expected)
            ),
            Error::Truncated { file_len, expected } => write!(
                f,
                "shared ring file is {file_len} bytes but its header needs {expected} (truncated?)"
            ),
            Error::Corrupt { what, value, limit } => {
                write!(f, "shared ring corrupt: {what} ({value} vs {limit})")
            }
            Error::Overflow {
                requested,
                available,
            } => write!(
                f,
                "shared ring overflow: {requested} bytes requested, {available} free"
            ),
            Error::Underflow {
                requested,
                available,
            } => write!(
                f,
                "shared ring underflow: {requested} bytes requested, {available} buffered"
            ),
            Error::TooLarge { len, max } => {
                write!(f, "record of {len} bytes is too large (at most {max})")
            }
            Error::SideTaken { side, pid: 0 } => {
                write!(f, "the {side} side of this ring was already used")
            }
            Error::SideTaken { side, pid } => {
                write!(f, "the {side} side is held by process {pid}")
            }
            Error::NoProducerSlot => f.write_str("all producer slots are in use"),
            Error::Closed(side) => write!(f, "the {side} closed the ring"),
            Error::PeerDied { side, pid } => {
                write!(f, "the {side} (process {pid}) died without closing")
            }
            Error::TimedOut => f.write_str("timed out"),
            Error::WouldBlock => f.write_str("operation would block"),
            Error::Lost { pid, bytes } => write!(
                f,
                "skipped a {bytes}-byte record of producer {pid}, which died before committing it"
            ),
            #[cfg(any(feature = "std", test))]
            Error::Os(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(any(feature = "std", test))]
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(any(feature = "std", test))]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Os(e)
    }
}

#[cfg(any(feature = "std", test))]
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match &e {
            Error::Os(e) => e.kind(),
            Error::Closed(_) => K::BrokenPipe,
            Error::PeerDied {
                side: Side::Producer,
                ..
            } => K::UnexpectedEof,
            Error::PeerDied { .. } => K::BrokenPipe,
            Error::TimedOut => K::TimedOut,
            Error::WouldBlock => K::WouldBlock,
            Error::Overflow { .. } | Error::Underflow { .. } | Error::TooLarge { .. } => {
                K::InvalidInput
            }
            Error::SideTaken { .. } | Error::NoProducerSlot => K::ResourceBusy,
            _ => K::InvalidData,
        };
        match e {
            Error::Os(e) => e,
            e => std::io::Error::new(kind, e),
        }
    }
}
