//! The shared memory file of a ring: creating it, attaching to it (validating
//! everything), mapping the header page and the data area twice, and passing the
//! descriptor to another process. (Linux)
//!
//! Ways to share a ring:
//!
//! - **Inheritance**: [`crate::vmcirc::shared::SpscRing::dup_inheritable`] gives a
//!   descriptor without `FD_CLOEXEC` for a child to pick up (`from_fd`).
//! - **`SCM_RIGHTS`**: [`send_fd`] / [`recv_fd`] over a Unix socket.
//! - **By name**: `shm_open` names (`create_named`, `open_named`,
//!   `open_or_create_named`), or a memfd published by path: another process
//!   opens `/proc/PID/fd/N` ([`Region::proc_path`], `open_path`).
//!
//! Truncation: an anonymous ring is a memfd sealed with `F_SEAL_SHRINK |
//! F_SEAL_GROW | F_SEAL_SEAL`, so no process holding it can resize it. A named
//! (`shm_open`) file cannot be sealed; attaching checks that the file has exactly
//! the size its header implies ([`super::Error::Truncated`] otherwise), but a
//! process with write access that truncates it *after* we attached makes our
//! next access to the lost pages raise SIGBUS: shm names are for cooperating
//! processes of one user (the file is created 0600); use a sealed memfd when
//! the peer is not trusted.
//!
//! Mapping: the header page(s) over a [`Reservation`], the data area (zero-filled
//! at creation) twice back to back with the ring core's [`DoubleMap`] (one
//! `PROT_NONE` reservation, both copies `MAP_FIXED | MAP_SHARED` over it, the
//! addresses and the file size checked). The creator self-tests the fresh
//! mirror ([`Probe::Ends`]) before the header's magic is published, so before
//! anyone can attach; an attacher must not write test bytes into a live ring and
//! relies on those checks ([`Probe::None`]).
//!
//! Fork: as for the ring core's mappings, the header and the window are
//! `MADV_DONTFORK` where the fork can be detected (`MADV_WIPEONFORK`, Linux
//! 4.14+). A forked child then has neither: it must attach from the descriptor
//! (`from_fd` on a duplicate of the inherited one), not use the handles it
//! inherited (they would fault); dropping them unmaps nothing (the child may
//! have mapped something else at those addresses). Halves copied by `fork`
//! would share the parent's private positions, so even where the fork is not
//! detected (the child keeps the mappings) using them breaks the protocol.

use core::ptr::{self, NonNull};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

use super::header::{Header, Layout, FLAG_SEALED, MAX_CAPACITY};
use super::Error;
use crate::vmcirc::linux::{DoubleMap, Reservation};
use crate::vmcirc::{Mirror, Probe};

/// How to create a ring.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) capacity: usize,
    pub(crate) init_wait: Duration,
    pub(crate) mode: u32,
}

impl Options {
    /// A ring of at least `capacity` bytes (rounded up to the page size).
    pub fn new(capacity: usize) -> Self {
        Options {
            capacity,
            init_wait: Duration::from_secs(5),
            mode: 0o600,
        }
    }

    /// `open_or_create_named`: how long to wait for another process that created
    /// the file to finish initialising it (default 5 s).
    pub fn init_wait(mut self, wait: Duration) -> Self {
        self.init_wait = wait;
        self
    }

    /// The capacity asked for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Permission bits of a named ring (default `0o600`: this user only).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }
}

fn os(what: &str, e: rustix::io::Errno) -> Error {
    let e = io::Error::from(e);
    Error::Os(io::Error::new(e.kind(), format!("{what}: {e}")))
}

/// An attached ring file: the descriptor, the header mapping and the mirrored
/// data window. Shared (`Arc`) by the halves of one process.
#[derive(Debug)]
pub(crate) struct Region {
    // Field order is drop order: the mappings go before the descriptor.
    header: NonNull<Header>,
    _header_map: Reservation,
    data: DoubleMap,
    fd: OwnedFd,
    layout: Layout,
    cap: usize,
}

// SAFETY: the header is all atomics; the data window is accessed only through
// the halves, whose protocol gives each byte range to one side at a time.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` hands out only the header (atomics) and raw pointers.
unsafe impl Sync for Region {}

impl Region {
    pub fn header(&self) -> &Header {
        // SAFETY: `header` points at the start of `_header_map`, at least
        // `size_of::<Header>()` bytes of the file mapped read/write (checked in
        // `map_header`), page aligned, for the life of `self` (the halves hold an
        // `Arc` to it); every field is an atomic, valid for any bit pattern and
        // for concurrent access.
        unsafe { self.header.as_ref() }
    }

    /// Start of the `2 * capacity` mirrored data window.
    pub fn data(&self) -> *mut u8 {
        self.data.base()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn is_sealed(&self) -> bool {
        self.layout.flags & FLAG_SEALED != 0
            && rustix::fs::fcntl_get_seals(&self.fd)
                .is_ok_and(|s| s.contains(SealFlags::SHRINK | SealFlags::GROW))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `/proc/PID/fd/N`: a path another process of this user can open to attach.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    /// A new anonymous ring: a sealed memfd.
    pub fn create(kind: u32, opts: &Options) -> Result<Region, Error> {
        let fd = rustix::fs::memfd_create(
            "vmcirc-shared",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| os("memfd_create", e))?;
        Self::init_file(fd, kind, opts, true)
    }

    /// A new named ring (`shm_open` with `O_EXCL`): fails if the name exists.
    pub fn create_named(name: &str, kind: u32, opts: &Options) -> Result<Region, Error> {
        check_name(name)?;
        let fd = rustix::shm::open(
            name,
            rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL | rustix::shm::OFlags::RDWR,
            Mode::from_bits_truncate(opts.mode),
        )
        .map_err(|e| os(&format!("shm_open({name}) for creating"), e))?;
        Self::init_file(fd, kind, opts, false).inspect_err(|_| {
            let _ = rustix::shm::unlink(name);
        })
    }

    /// Attaches to an existing named ring.
    pub fn open_named(name: &str, kind: u32) -> Result<Region, Error> {
        check_name(name)?;
        let fd = rustix::shm::open(name, rustix::shm::OFlags::RDWR, Mode::empty())
            .map_err(|e| os(&format!("shm_open({name})"), e))?;
        Self::attach(fd, kind)
    }

    /// Creates the named ring, or attaches to it if it exists, waiting up to
    /// `opts.init_wait` for a concurrent creator to finish initialising it.
    pub fn open_or_create_named(name: &str, kind: u32, opts: &Options) -> Result<Region, Error> {
        check_name(name)?;
        let deadline = Instant::now() + opts.init_wait;
        loop {
            match Self::create_named(name, kind, opts) {
                Err(Error::Os(e)) if e.kind() == io::ErrorKind::AlreadyExists => {}
                r => return r,
            }
            match Self::open_named(name, kind) {
                Ok(r) => return Ok(r),
                // Created but not initialised yet (size 0 or no magic), or unlinked
                // between our two calls: try again.
                Err(Error::NotInitialised) => {}
                Err(Error::Truncated { file_len: 0, .. }) => {}
                Err(Error::Os(e)) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(Error::NotInitialised);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes a ring's name (attached processes keep their mappings).
    pub fn unlink_named(name: &str) -> Result<(), Error> {
        check_name(name)?;
        rustix::shm::unlink(name).map_err(|e| os(&format!("shm_unlink({name})"), e))
    }

    /// Attaches to the ring file at `path` (e.g. another process's
    /// `/proc/PID/fd/N`, or a file under `/dev/shm`).
    pub fn open_path(path: &Path, kind: u32) -> Result<Region, Error> {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| os(&format!("open {}", path.display()), e))?;
        Self::attach(fd, kind)
    }

    fn init_file(fd: OwnedFd, kind: u32, opts: &Options, seal: bool) -> Result<Region, Error> {
        let page = rustix::param::page_size();
        if opts.capacity == 0 {
            return Err(Error::Os(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring capacity must be at least 1 byte",
            )));
        }
        let cap = opts
            .capacity
            .checked_next_multiple_of(page)
            .filter(|&c| c as u64 <= MAX_CAPACITY && c <= isize::MAX as usize / 2)
            .ok_or_else(|| {
                Error::Os(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("ring capacity {} is too large", opts.capacity),
                ))
            })?;
        // The header takes the first page(s).
        let data_offset = core::mem::size_of::<Header>().next_multiple_of(page);
        rustix::fs::ftruncate(&fd, (data_offset + cap) as u64)
            .map_err(|e| os(&format!("sizing the {cap}-byte ring file"), e))?;
        let mut flags = 0;
        if seal {
            rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
                .map_err(|e| os("sealing the ring file", e))?;
            flags |= FLAG_SEALED;
        }
        let (header_map, header) = map_header(fd.as_fd(), data_offset)?;
        // Nobody can attach before the magic is published, so the data area is
        // ours to test destructively (the probed bytes are restored).
        let data = DoubleMap::new(fd.as_fd(), data_offset as u64, cap, page, Probe::Ends)?;
        let region = Region {
            header,
            _header_map: header_map,
            data,
            fd,
            layout: Layout {
                kind,
                capacity: cap as u64,
                data_offset: data_offset as u64,
                flags,
            },
            cap,
        };
        region
            .header()
            .init(kind, cap as u64, data_offset as u64, flags);
        Ok(region)
    }

    /// Attaches to a ring file: size, then the header (untrusted), then the data.
    pub fn attach(fd: OwnedFd, kind: u32) -> Result<Region, Error> {
        let page = rustix::param::page_size();
        let file_len = rustix::fs::fstat(&fd)
            .map_err(|e| os("fstat of the ring file", e))?
            .st_size as u64;
        if file_len == 0 {
            return Err(Error::NotInitialised);
        }
        let need = core::mem::size_of::<Header>().next_multiple_of(page) as u64;
        if file_len < need {
            return Err(Error::Truncated {
                file_len,
                expected: need,
            });
        }
        // Map just the header page first: the data offset it gives is untrusted.
        // (Dropping `header_map` on an error below unmaps it.)
        let (header_map, header) = map_header(fd.as_fd(), need as usize)?;
        // SAFETY: as in `Region::header` (`header_map` lives to the end).
        let layout = unsafe { header.as_ref() }.validate(kind, file_len, page as u64)?;
        // validate() bounds capacity by MAX_CAPACITY; on a 32-bit system it may
        // still exceed the address space.
        let cap = match usize::try_from(layout.capacity) {
            Ok(c) if c <= isize::MAX as usize / 2 => c,
            _ => {
                return Err(Error::corrupt(
                    "capacity beyond the address space",
                    layout.capacity,
                    isize::MAX as u64 / 2,
                ))
            }
        };
        // A live ring: no test bytes (the producer may be writing any of them),
        // only DoubleMap's checked addresses and file size.
        let data = DoubleMap::new(fd.as_fd(), layout.data_offset, cap, page, Probe::None)?;
        Ok(Region {
            header,
            _header_map: header_map,
            data,
            fd,
            layout,
            cap,
        })
    }
}

/// POSIX shm names: `/` then 1..=250 characters, none of them `/`.
fn check_name(name: &str) -> Result<(), Error> {
    let ok = name.len() >= 2
        && name.len() <= 251
        && name.starts_with('/')
        && !name[1..].contains('/')
        && name != "/."
        && name != "/.."
        && !name.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(Error::Os(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad ring name {name:?}: expected '/' followed by 1 to 250 characters other than '/'"),
        )))
    }
}

/// Maps the first `len` bytes of the file (the header page(s)) over a
/// reservation of their own; returns it and the header's address in it.
fn map_header(fd: BorrowedFd<'_>, len: usize) -> Result<(Reservation, NonNull<Header>), Error> {
    debug_assert!(len >= core::mem::size_of::<Header>());
    let page = rustix::param::page_size();
    let mut res = Reservation::new(len, page, crate::vmcirc::OnFork::Detach)?;
    // The file is at least `len` bytes (checked by the callers), so every page of
    // the mapping is backed.
    let p = res.map_file(0, len, fd, 0).map_err(|e| {
        Error::Os(io::Error::new(
            e.kind(),
            format!("mapping the ring header: {e}"),
        ))
    })?;
    let header = NonNull::new(p.cast::<Header>()).ok_or(Error::NotInitialised)?;
    Ok((res, header))
}

/// Sends a descriptor over a Unix socket (`SCM_RIGHTS`, with one data byte).
pub fn send_fd(socket: impl AsFd, fd: BorrowedFd<'_>) -> io::Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("SCM_RIGHTS control buffer too small"));
    }
    let n = sendmsg(
        socket,
        &[io::IoSlice::new(b"R")],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if n != 1 {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "sendmsg sent nothing",
        ));
    }
    Ok(())
}

/// Receives a descriptor sent with [`send_fd`] (close-on-exec).
pub fn recv_fd(socket: impl AsFd) -> io::Result<OwnedFd> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let msg = recvmsg(
        socket,
        &mut [io::IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut got = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for fd in fds {
                // Keep the first; any extra descriptor is closed when dropped.
                got.get_or_insert(fd);
            }
        }
    }
    got.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            if msg.bytes == 0 {
                "the socket closed before a descriptor arrived"
            } else {
                "message without a descriptor"
            },
        )
    })
}

/// A handle to an attached region that the protocol cores hold: derefs to the
/// header, and gives the MPSC core the data area's words.
#[derive(Debug, Clone)]
pub(crate) struct Mapped(pub std::sync::Arc<Region>);

impl core::ops::Deref for Mapped {
    type Target = Header;
    fn deref(&self) -> &Header {
        self.0.header()
    }
}

impl super::mpsc::Words for Mapped {
    fn word(&self, offset: usize) -> &core::sync::atomic::AtomicU64 {
        // Clamp to the window so that even a wrong offset cannot leave it: the
        // cores only pass `pos % N (+ 8)`, which is always inside.
        let last = 2 * self.0.cap - 8;
        let off = offset.min(last) & !7;
        // SAFETY: off + 8 <= 2N, inside the window; the window is page aligned,
        // so `off` is 8-aligned; an AtomicU64 may alias bytes that are otherwise
        // accessed non-atomically at other times (the protocol orders those).
        unsafe {
            &*self
                .0
                .data()
                .add(off)
                .cast::<core::sync::atomic::AtomicU64>()
        }
    }

    fn zero(&self, offset: usize, len: usize) {
        let off = offset.min(self.0.cap - 1);
        let len = len.min(self.0.cap);
        // SAFETY: off < N and len <= N, so the range ends inside the 2N window;
        // the consumer owns these bytes until it advances `head`.
        unsafe { ptr::write_bytes(self.0.data().add(off), 0, len) };
    }
}

/// The constructors and sharing methods both ring handles have.
macro_rules! ring_handle {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            fn wrap(region: Region) -> Self {
                $ty {
                    region: std::sync::Arc::new(region),
                }
            }

            /// A new anonymous ring of at least `capacity` bytes (rounded up to the
            /// page size): a memfd sealed against resizing. Share it by
            /// inheritance ([`Self::dup_inheritable`]), `SCM_RIGHTS`
            /// ([`super::send_fd`]) or path ([`Self::proc_path`]).
            pub fn create(capacity: usize) -> Result<Self, Error> {
                Self::create_with(&Options::new(capacity))
            }

            /// [`Self::create`] with [`Options`].
            pub fn create_with(opts: &Options) -> Result<Self, Error> {
                Ok(Self::wrap(Region::create($kind, opts)?))
            }

            /// A new ring under a POSIX shm `name` (`/name`); fails if it exists.
            /// Not sealable: see the module doc on truncation.
            pub fn create_named(name: &str, opts: &Options) -> Result<Self, Error> {
                Ok(Self::wrap(Region::create_named(name, $kind, opts)?))
            }

            /// Attaches to the ring called `name`, validating its header.
            pub fn open_named(name: &str) -> Result<Self, Error> {
                Ok(Self::wrap(Region::open_named(name, $kind)?))
            }

            /// Creates the ring called `name`, or attaches to it if another process
            /// did (either may come first).
            pub fn open_or_create_named(name: &str, opts: &Options) -> Result<Self, Error> {
                Ok(Self::wrap(Region::open_or_create_named(name, $kind, opts)?))
            }

            /// Removes the name (attached processes keep the ring).
            pub fn unlink_named(name: &str) -> Result<(), Error> {
                Region::unlink_named(name)
            }

            /// Attaches to a ring file received by inheritance or `SCM_RIGHTS`.
            pub fn from_fd(fd: std::os::fd::OwnedFd) -> Result<Self, Error> {
                Ok(Self::wrap(Region::attach(fd, $kind)?))
            }

            /// Attaches to the ring file at `path` (e.g. `/proc/PID/fd/N`).
            pub fn open_path(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
                Ok(Self::wrap(Region::open_path(path.as_ref(), $kind)?))
            }

            /// `N`, the data area's size.
            pub fn capacity(&self) -> usize {
                self.region.capacity()
            }

            /// Whether the file is sealed against shrinking and growing.
            pub fn is_sealed(&self) -> bool {
                self.region.is_sealed()
            }

            /// A path (`/proc/PID/fd/N`) another process of this user can open
            /// with `open_path` while this handle lives.
            pub fn proc_path(&self) -> std::path::PathBuf {
                self.region.proc_path()
            }

            /// A duplicate of the descriptor *without* close-on-exec, for a child
            /// to inherit across `exec` (pass its number, e.g. in an argument).
            /// Other threads that spawn processes meanwhile inherit it too: drop
            /// it as soon as the child is started.
            pub fn dup_inheritable(&self) -> std::io::Result<std::os::fd::OwnedFd> {
                let fd = rustix::io::fcntl_dupfd_cloexec(self.region.fd(), 3)?;
                rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty())?;
                Ok(fd)
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.region.fd()
            }
        }
    };
}
