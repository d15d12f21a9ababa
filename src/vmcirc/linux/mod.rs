//! The Linux/Unix mirror backend: one memory file mapped twice, back to back.
//!
//! Owns [`MemfdMirror`] (a new memory file and its [`DoubleMap`]), its
//! [`MirrorOptions`] and the safe [`MirrorRing`] constructors; the mapping
//! primitives themselves ([`Reservation`], [`DoubleMap`]) are in `map.rs`, fork
//! detection in `fork.rs`. Also the host tests' backend: it is built for the
//! crate's unit tests even without feature `std`.
//!
//! Creation, in this order (each step's failure unwinds the earlier ones):
//!
//! 1. A memory file: `memfd_create(MFD_CLOEXEC)` (no directory, no disk, no SysV
//!    limits). Where memfd is missing or refused, POSIX `shm_open` with a unique
//!    name, unlinked at once. Optional `MFD_HUGETLB`.
//! 2. `ftruncate` to `N`, the requested size rounded up to the page size
//!    (checked arithmetic: zero or overflow is an error).
//! 3. [`DoubleMap`]: reserve `2N` of address space with one `PROT_NONE`
//!    anonymous mapping ([`Reservation`]), then map the file twice *over* it with
//!    `MAP_FIXED | MAP_SHARED`, checking each returned address. The reservation
//!    is never given up in between, so no other thread can take the range
//!    (unmap-then-hint races did break GNU Radio).
//! 4. `MADV_DONTFORK` on the window (Linux): the mapping is `MAP_SHARED`, so after
//!    a `fork` parent and child would write the *same* storage while each keeps its
//!    own private read/write positions, silently corrupting each other's data.
//!    With `MADV_DONTFORK` the child simply has no window; it notices through a
//!    wipe-on-fork token (`fork.rs`: one load and compare per ring operation), and
//!    its copy of the ring acts as a ring of capacity 0 (empty reads, no room, no
//!    crash), and dropping it unmaps nothing. Sharing a ring across processes needs
//!    shared indices and is a separate design.
//! 5. A self-test ([`crate::vmcirc::self_test`]): write through one copy, read
//!    through the other (at both ends), restore. A mirror that does not mirror is
//!    an error.
//! 6. The file descriptor is closed: the two mappings keep the file alive, nobody
//!    can resize it under us, and a ring costs no descriptor while it lives.
//!
//! `Drop` unmaps the whole window with one `munmap`.

use core::sync::atomic::{AtomicU64, Ordering};
use std::format;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::string::String;

use super::{Mirror, Probe, Ring};

mod fork;
mod leapfrog;
mod map;

pub use leapfrog::{LeapfrogOptions, LeapfrogRing, MemfdPages};
pub use map::{DoubleMap, OnFork, Reservation};

/// The safe mirrored ring on Linux/Unix: `Send`, not `Sync`.
///
/// ```
/// use std::io::{Read, Write};
/// use vmcirc::{ByteRing, MirrorRing};
///
/// let mut ring = MirrorRing::with_capacity(1).unwrap(); // rounded up to a page
/// assert_eq!(ring.capacity() % 4096, 0);
/// ring.write_all(b"hello, ").unwrap();
/// ring.push(b"world");
/// assert_eq!(ring.peek(), b"hello, world");
/// let mut out = String::new();
/// ring.read_to_string(&mut out).unwrap();
/// assert_eq!(out, "hello, world");
/// ```
///
/// Not `Sync`:
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<vmcirc::MirrorRing>();
/// ```
pub type MirrorRing = Ring<MemfdMirror>;

impl Ring<MemfdMirror> {
    /// A ring of at least `bytes` bytes (rounded up to the page size).
    /// Errors: `bytes == 0`, a size beyond the address space, or the system
    /// refusing the memory file or the mappings.
    pub fn with_capacity(bytes: usize) -> io::Result<Self> {
        Ok(Ring::new(MemfdMirror::new(bytes)?))
    }

    /// [`Ring::with_capacity`] with explicit [`MirrorOptions`].
    pub fn with_options(bytes: usize, options: &MirrorOptions) -> io::Result<Self> {
        Ok(Ring::new(MemfdMirror::with_config(bytes, options)?))
    }
}

/// Which kind of memory file backs the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// `memfd_create`, falling back to `shm_open` when memfd is unavailable.
    #[default]
    Auto,
    /// `memfd_create` only.
    Memfd,
    /// POSIX `shm_open` (unlinked at once) only.
    Shm,
}

/// How to create a [`MemfdMirror`].
#[derive(Debug, Clone, Default)]
pub struct MirrorOptions {
    huge_pages: bool,
    backend: Backend,
    refuse_memfd: bool,
    refuse_shm: bool,
}

impl MirrorOptions {
    /// Defaults: normal pages, [`Backend::Auto`].
    pub fn new() -> Self {
        Self::default()
    }
    /// Back the ring with huge pages (`MFD_HUGETLB`, memfd only); the capacity is
    /// then rounded up to the huge page size.
    pub fn huge_pages(mut self, on: bool) -> Self {
        self.huge_pages = on;
        self
    }
    /// Choose the memory file.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Testing hook: make `memfd_create` and/or `shm_open` fail as if the system
    /// refused them (`ENOSYS` and `EACCES`), to exercise the fallback and the
    /// error paths.
    #[doc(hidden)]
    pub fn simulate_refusal(mut self, memfd: bool, shm: bool) -> Self {
        self.refuse_memfd = memfd;
        self.refuse_shm = shm;
        self
    }
}

/// A memory file mapped twice back to back: the Linux/Unix [`Mirror`].
#[derive(Debug)]
pub struct MemfdMirror {
    map: DoubleMap,
    huge: bool,
    backend: Backend,
}

// SAFETY: every promise is the `DoubleMap`'s, over a new memory file that only
// this value maps (zero-filled by the kernel, descriptor closed after mapping).
unsafe impl Mirror for MemfdMirror {
    #[inline(always)]
    fn base(&self) -> *mut u8 {
        self.map.base()
    }
    #[inline(always)]
    fn capacity(&self) -> usize {
        self.map.len()
    }
    #[inline(always)]
    fn is_mapped(&self) -> bool {
        self.map.is_mapped()
    }
}

fn err(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

fn os_err(what: &str, e: rustix::io::Errno) -> io::Error {
    let e = io::Error::from(e);
    io::Error::new(e.kind(), format!("vmcirc: {what}: {e}"))
}

impl MemfdMirror {
    /// A mirror of at least `bytes` bytes, rounded up to the page size.
    pub fn new(bytes: usize) -> io::Result<Self> {
        Self::with_config(bytes, &MirrorOptions::default())
    }

    /// A mirror of at least `bytes` bytes, optionally on huge pages
    /// (`MFD_HUGETLB`; a clear error when the system has none).
    pub fn with_options(bytes: usize, huge_pages: bool) -> io::Result<Self> {
        Self::with_config(bytes, &MirrorOptions::new().huge_pages(huge_pages))
    }

    /// The capacity (`N`, a multiple of the page size).
    pub fn capacity(&self) -> usize {
        self.map.len()
    }

    /// Whether the storage is on huge pages.
    pub fn is_huge(&self) -> bool {
        self.huge
    }

    /// The memory file actually used ([`Backend::Memfd`] or [`Backend::Shm`]).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A mirror with explicit [`MirrorOptions`].
    pub fn with_config(bytes: usize, options: &MirrorOptions) -> io::Result<Self> {
        let page = if options.huge_pages {
            huge_page_size()?
        } else {
            rustix::param::page_size()
        };
        if bytes == 0 {
            return Err(err(
                io::ErrorKind::InvalidInput,
                "vmcirc: ring capacity must be at least 1 byte".into(),
            ));
        }
        let cap = bytes
            .checked_next_multiple_of(page)
            .filter(|&c| c.checked_mul(2).is_some_and(|t| t <= isize::MAX as usize))
            .ok_or_else(|| {
                err(
                    io::ErrorKind::InvalidInput,
                    format!("vmcirc: ring capacity {bytes} is beyond the address space"),
                )
            })?;
        let (fd, backend) = open_file(options)?;
        let huge = options.huge_pages;
        rustix::fs::ftruncate(&fd, cap as u64).map_err(|e| {
            if huge {
                os_err(
                    &format!("huge pages unavailable: sizing a {cap}-byte huge-page file failed (see /proc/sys/vm/nr_hugepages)"),
                    e,
                )
            } else {
                os_err(&format!("sizing the {cap}-byte memory file"), e)
            }
        })?;
        let map = DoubleMap::new(fd.as_fd(), 0, cap, page, Probe::Ends).map_err(|e| {
            if huge {
                let e = e.to_string();
                let e = e.trim_start_matches("vmcirc: ");
                err(
                    io::ErrorKind::Other,
                    format!("vmcirc: huge pages unavailable: {e} (are enough huge pages free? see /proc/sys/vm/nr_hugepages)"),
                )
            } else {
                e
            }
        })?;
        drop(fd);
        Ok(MemfdMirror { map, huge, backend })
    }
}

fn huge_page_size() -> io::Result<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            let kb = l.strip_prefix("Hugepagesize:")?.trim().strip_suffix("kB")?;
            kb.trim().parse::<usize>().ok()?.checked_mul(1024)
        })
        .filter(|&s| s > 0)
        .ok_or_else(|| {
            err(
                io::ErrorKind::Unsupported,
                "vmcirc: huge pages unavailable: no Hugepagesize in /proc/meminfo".into(),
            )
        })
}

fn open_file(options: &MirrorOptions) -> io::Result<(OwnedFd, Backend)> {
    if options.huge_pages && options.backend == Backend::Shm {
        return Err(err(
            io::ErrorKind::Unsupported,
            "vmcirc: huge pages need memfd (MFD_HUGETLB), not shm_open".into(),
        ));
    }
    let memfd_err = match options.backend {
        Backend::Shm => None,
        Backend::Auto | Backend::Memfd => match open_memfd(options) {
            Ok(fd) => return Ok((fd, Backend::Memfd)),
            Err(e) => Some(e),
        },
    };
    match (options.backend, memfd_err) {
        (Backend::Memfd, Some(e)) => Err(e),
        // Huge pages exist only through memfd: no fallback.
        (Backend::Auto, Some(e)) if options.huge_pages => Err(e),
        (_, memfd_err) => {
            open_shm(options)
                .map(|fd| (fd, Backend::Shm))
                .map_err(|e| match memfd_err {
                    Some(m) => err(e.kind(), format!("{m}; fallback: {e}")),
                    None => e,
                })
        }
    }
}

fn open_memfd(options: &MirrorOptions) -> io::Result<OwnedFd> {
    if options.refuse_memfd {
        return Err(os_err(
            "memfd_create refused (simulated)",
            rustix::io::Errno::NOSYS,
        ));
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use rustix::fs::MemfdFlags;
        let mut flags = MemfdFlags::CLOEXEC;
        if options.huge_pages {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                flags |= MemfdFlags::HUGETLB;
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            return Err(err(
                io::ErrorKind::Unsupported,
                "vmcirc: huge pages unavailable: MFD_HUGETLB is Linux-only".into(),
            ));
        }
        rustix::fs::memfd_create("vmcirc", flags).map_err(|e| {
            if options.huge_pages {
                os_err(
                    "huge pages unavailable: memfd_create(MFD_HUGETLB) refused",
                    e,
                )
            } else {
                os_err("memfd_create refused", e)
            }
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        Err(err(
            io::ErrorKind::Unsupported,
            "vmcirc: memfd_create is not available on this system".into(),
        ))
    }
}

fn open_shm(options: &MirrorOptions) -> io::Result<OwnedFd> {
    use rustix::shm;
    if options.refuse_shm {
        return Err(os_err(
            "shm_open refused (simulated)",
            rustix::io::Errno::ACCESS,
        ));
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = rustix::io::Errno::EXIST;
    for _ in 0..64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "/vmcirc-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        match shm::open(
            name.as_str(),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            shm::Mode::RUSR | shm::Mode::WUSR,
        ) {
            Ok(fd) => {
                // Unlink at once: the name was only needed to get a descriptor.
                shm::unlink(name.as_str()).map_err(|e| os_err("shm_unlink", e))?;
                return Ok(fd);
            }
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    Err(os_err("shm_open refused", last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors() {
        let m = MemfdMirror::new(1).unwrap();
        let n = m.capacity();
        assert_eq!(n, rustix::param::page_size());
        assert_eq!(m.backend(), Backend::Memfd);
        // SAFETY: inside the window.
        unsafe {
            m.base().add(n + 3).write_volatile(7);
            assert_eq!(m.base().add(3).read_volatile(), 7);
        }
    }

    #[test]
    fn bad_sizes() {
        let e = MemfdMirror::new(0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = MemfdMirror::new(usize::MAX).unwrap_err();
        assert!(e.to_string().contains("beyond the address space"), "{e}");
        let e = MemfdMirror::new(usize::MAX / 2).unwrap_err();
        assert!(e.to_string().contains("beyond the address space"), "{e}");
    }

    #[test]
    fn fallback_and_refusal() {
        let o = MirrorOptions::new().simulate_refusal(true, false);
        let m = MemfdMirror::with_config(100, &o).unwrap();
        assert_eq!(m.backend(), Backend::Shm);
        let o = MirrorOptions::new()
            .backend(Backend::Memfd)
            .simulate_refusal(true, false);
        let e = MemfdMirror::with_config(100, &o).unwrap_err();
        assert!(e.to_string().contains("memfd_create refused"), "{e}");
        let o = MirrorOptions::new().simulate_refusal(true, true);
        let e = MemfdMirror::with_config(100, &o).unwrap_err();
        assert!(
            e.to_string().contains("fallback: vmcirc: shm_open refused"),
            "{e}"
        );
        let m = MemfdMirror::with_config(100, &MirrorOptions::new().backend(Backend::Shm)).unwrap();
        assert_eq!(m.backend(), Backend::Shm);
    }
}
