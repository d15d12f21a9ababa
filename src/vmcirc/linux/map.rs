//! Address-space reservations and file mappings over them: the Linux/Unix
//! memory primitives every ring backend builds on.
//!
//! Owns [`Reservation`] (a range of address space held with one `PROT_NONE`
//! mapping; parts of it are mapped over with `MAP_FIXED` and handed back to
//! `PROT_NONE`, never unmapped until the reservation is dropped, so no other
//! thread can take a gap) and [`DoubleMap`] (`len` bytes of a file mapped twice
//! back to back inside one reservation, self-tested: a [`Mirror`] for any
//! descriptor, including one this process did not create).
//!
//! By default ([`OnFork::Detach`]) both mark their mappings `MADV_DONTFORK` where
//! a fork can be detected (`super::fork`): a forked child has no such mapping, a
//! ring over it behaves as a ring of capacity 0 ([`Mirror::is_mapped`] is false)
//! and `Drop` leaves the range alone (the child may have mapped something else
//! there since). A protocol whose positions live in the shared memory itself (a
//! ring shared between processes) asks for [`OnFork::Share`] instead: the child
//! inherits the mappings and owns its copy of them.

use core::ptr::{self, NonNull};
use std::ffi::c_void;
use std::format;
use std::io;
use std::os::fd::BorrowedFd;

use rustix::mm::{self, MapFlags, ProtFlags};

use super::fork::ForkToken;
use super::{err, os_err};
use crate::vmcirc::{self_test, Mirror, Probe};

/// What a forked child gets of a [`Reservation`] (and the mappings in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFork {
    /// Nothing (`MADV_DONTFORK`, where a fork is detected): for memory whose
    /// positions are private to the process, such as a local ring's.
    #[default]
    Detach,
    /// The same shared mappings: for memory whose positions are shared too.
    Share,
}

/// A reserved range of address space: `PROT_NONE` until parts of it are mapped.
///
/// For a ring that maps pages as it goes (the leapfrog ring): reserve once, then
/// [`Reservation::map_file`] and [`Reservation::release`] page ranges inside it.
/// Raw pointers into it (from [`Reservation::base`]) are valid only while the
/// range they point at stays mapped and the reservation lives.
#[derive(Debug)]
pub struct Reservation {
    base: NonNull<u8>,
    len: usize,
    fork: ForkToken,
    on_fork: OnFork,
}

// SAFETY: the reservation owns its address range; nothing in it is tied to a thread.
unsafe impl Send for Reservation {}

impl Reservation {
    /// Reserves `len` bytes (a nonzero multiple of the page size) aligned to
    /// `align` (a power of two, at least the page size; huge-page files need
    /// huge-page aligned addresses); see [`OnFork`] for what a forked child gets.
    pub fn new(len: usize, align: usize, on_fork: OnFork) -> io::Result<Self> {
        let page = rustix::param::page_size();
        if len == 0 || !len.is_multiple_of(page) || !align.is_power_of_two() || align < page {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!("vmcirc: cannot reserve {len} bytes aligned to {align}"),
            ));
        }
        let slack = align - page;
        let total = len
            .checked_add(slack)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or_else(|| {
                err(
                    io::ErrorKind::InvalidInput,
                    format!("vmcirc: {len} bytes are beyond the address space"),
                )
            })?;
        // SAFETY: a fresh anonymous PROT_NONE mapping at an address of the kernel's
        // choosing; it touches no existing memory.
        let raw = unsafe {
            mm::mmap_anonymous(
                ptr::null_mut(),
                total,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|e| os_err(&format!("reserving {total} bytes of address space"), e))?;
        let addr = raw as usize;
        let start = addr.next_multiple_of(align);
        // Give back the slack on both sides of the aligned range (our own pages,
        // never referenced; the aligned range itself stays reserved throughout).
        let (head, tail) = (start - addr, total - (start - addr) - len);
        for (at, n) in [(addr, head), (start + len, tail)] {
            if n > 0 {
                // SAFETY: [at, at + n) is part of the mapping just made, outside
                // the range we keep.
                let _ = unsafe { mm::munmap(at as *mut c_void, n) };
            }
        }
        let base = NonNull::new(start as *mut u8)
            .ok_or_else(|| err(io::ErrorKind::Other, "vmcirc: mmap returned null".into()))?;
        let fork = ForkToken::current();
        let r = Reservation {
            base,
            len,
            fork,
            on_fork,
        };
        r.dont_fork(0, len)?;
        Ok(r)
    }

    /// The start of the range.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true (a reservation has at least one page); for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// False in a forked child that did not inherit the range ([`OnFork::Detach`]).
    #[inline(always)]
    pub fn is_mapped(&self) -> bool {
        self.on_fork == OnFork::Share || self.fork.holds()
    }

    /// Checks that `[at, at + len)` is a page-aligned part of the range.
    fn check_range(&self, at: usize, len: usize) -> io::Result<()> {
        let page = rustix::param::page_size();
        let inside = at.checked_add(len).is_some_and(|e| e <= self.len);
        if !inside || len == 0 || !at.is_multiple_of(page) || !len.is_multiple_of(page) {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!(
                    "vmcirc: range {at}+{len} is not a page-aligned part of a {}-byte reservation",
                    self.len
                ),
            ));
        }
        if !self.is_mapped() {
            return Err(err(
                io::ErrorKind::Other,
                "vmcirc: the reservation belongs to the parent process (used after fork)".into(),
            ));
        }
        Ok(())
    }

    /// Marks `[at, at + len)` `MADV_DONTFORK` where a fork is detected (each new
    /// mapping needs it again: `MAP_FIXED` makes a new one without the flag).
    fn dont_fork(&self, at: usize, len: usize) -> io::Result<()> {
        if self.on_fork == OnFork::Share || !self.fork.detects_fork() {
            return Ok(());
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: advice on part of our own range; changes nothing in this process.
            let p = unsafe { self.base.as_ptr().add(at) }.cast::<c_void>();
            // SAFETY: as above.
            unsafe { mm::madvise(p, len, mm::Advice::LinuxDontFork) }
                .map_err(|e| os_err("madvise(MADV_DONTFORK)", e))?;
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = (at, len);
        Ok(())
    }

    /// Maps `len` bytes of `fd` from `offset` at `at` in the range, shared and
    /// read/write, replacing what was there (`MAP_FIXED` inside our own range
    /// only), and checks the address the system chose. `at` and `len` must be
    /// page aligned (huge-page aligned for a huge-page file).
    pub fn map_file(
        &mut self,
        at: usize,
        len: usize,
        fd: BorrowedFd<'_>,
        offset: u64,
    ) -> io::Result<*mut u8> {
        self.check_range(at, len)?;
        // SAFETY: at < self.len: inside the range.
        let want = unsafe { self.base.as_ptr().add(at) }.cast::<c_void>();
        // SAFETY: MAP_FIXED replaces only pages of our own range [want, want +
        // len); raw pointers into them are the caller's to stop using (see the
        // type docs), no reference into the range is handed out by this type.
        let got = unsafe {
            mm::mmap(
                want,
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::FIXED,
                fd,
                offset,
            )
        }
        .map_err(|e| {
            os_err(
                &format!("mapping {len} bytes of the file at offset {offset}"),
                e,
            )
        })?;
        if got != want {
            return Err(err(
                io::ErrorKind::Other,
                format!("vmcirc: mmap put a mapping at {got:p}, not at {want:p}"),
            ));
        }
        self.dont_fork(at, len)?;
        Ok(want.cast())
    }

    /// Returns `[at, at + len)` to `PROT_NONE` (the memory behind it is released;
    /// the addresses stay reserved).
    pub fn release(&mut self, at: usize, len: usize) -> io::Result<()> {
        self.check_range(at, len)?;
        // SAFETY: at < self.len: inside the range.
        let p = unsafe { self.base.as_ptr().add(at) }.cast::<c_void>();
        // SAFETY: MAP_FIXED over our own range only, as in `map_file`.
        let got = unsafe {
            mm::mmap_anonymous(
                p,
                len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::FIXED | MapFlags::NORESERVE,
            )
        }
        .map_err(|e| os_err(&format!("releasing {len} bytes of a reservation"), e))?;
        if got != p {
            return Err(err(
                io::ErrorKind::Other,
                format!("vmcirc: mmap put a reservation at {got:p}, not at {p:p}"),
            ));
        }
        self.dont_fork(at, len)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.is_mapped() {
            // A forked child: the range was not inherited, and the child may have
            // mapped something of its own there since. Leave it alone.
            return;
        }
        // SAFETY: [base, base + len) is our own range; raw pointers into it die
        // with it (type docs).
        let _ = unsafe { mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// `len` bytes of a file mapped twice back to back, self-tested: a [`Mirror`].
///
/// The memfd ring ([`super::MemfdMirror`]) is one over a file it creates; a
/// ring shared between processes makes one over a descriptor it was given.
#[derive(Debug)]
pub struct DoubleMap {
    res: Reservation,
    len: usize,
}

impl DoubleMap {
    /// Maps `len` bytes of `fd` from `offset` twice back to back and runs
    /// [`self_test`] with `probe` ([`Probe::Ends`] for a file nobody else uses
    /// yet; [`Probe::None`] for one others are using, such as a live shared
    /// ring, relying on the checked addresses and file size). `len` must be a nonzero multiple of `align`, the page size of the
    /// file (the system page size, or the huge page size for a huge-page file);
    /// the file must be at least `offset + len` bytes long (checked with `fstat`;
    /// a file that another process truncates later is that protocol's concern).
    /// A forked child gets nothing ([`OnFork::Detach`]); see [`DoubleMap::with`].
    ///
    /// Errors name the step that failed; nothing stays mapped after an error.
    pub fn new(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        align: usize,
        probe: Probe,
    ) -> io::Result<Self> {
        Self::with(fd, offset, len, align, probe, OnFork::Detach)
    }

    /// [`DoubleMap::new`] with a choice of what a forked child gets.
    pub fn with(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        align: usize,
        probe: Probe,
        on_fork: OnFork,
    ) -> io::Result<Self> {
        let total = len
            .checked_mul(2)
            .filter(|&t| {
                t <= isize::MAX as usize && len > 0 && align > 0 && len.is_multiple_of(align)
            })
            .ok_or_else(|| {
                err(
                    io::ErrorKind::InvalidInput,
                    format!("vmcirc: cannot map {len} bytes twice (page size {align})"),
                )
            })?;
        let size = rustix::fs::fstat(fd)
            .map_err(|e| os_err("fstat of the file to map", e))?
            .st_size;
        let needed = offset.checked_add(len as u64);
        if needed.is_none_or(|n| u64::try_from(size).map_or(true, |s| s < n)) {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!(
                    "vmcirc: the file has {size} bytes, fewer than offset {offset} + {len} to map"
                ),
            ));
        }
        let mut res = Reservation::new(total, align, on_fork)?;
        for half in 0..2 {
            res.map_file(half * len, len, fd, offset).map_err(|e| {
                err(
                    e.kind(),
                    format!("vmcirc: mapping copy {half} of the ring: {e}"),
                )
            })?;
        }
        let map = DoubleMap { res, len };
        // SAFETY: both halves were just mapped read/write to the same `len` bytes
        // of the file; the probed bytes are the caller's (`probe` docs).
        unsafe { self_test(map.res.base(), len, probe) }
            .map_err(|f| err(io::ErrorKind::Other, format!("vmcirc: {f}")))?;
        Ok(map)
    }

    /// `N`: the bytes of file mapped (the window is `2N`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// SAFETY: `with` only returns a map whose window [base, base + 2 * len) is two
// MAP_SHARED read/write mappings of the same `len` bytes of one file (checked
// addresses, self-tested), inside a reservation this value owns until Drop;
// 0 < len and 2 * len <= isize::MAX are checked. The file's bytes are initialised
// (file contents; a new file reads as zeros). `is_mapped` is false exactly in a
// forked child that did not inherit the mappings (OnFork::Detach), where they do
// not exist. (Exclusive use of the window is the owner's promise: a map of a
// file other processes also map is for protocols that share it on purpose.)
unsafe impl Mirror for DoubleMap {
    #[inline(always)]
    fn base(&self) -> *mut u8 {
        self.res.base()
    }
    #[inline(always)]
    fn capacity(&self) -> usize {
        self.len
    }
    #[inline(always)]
    fn is_mapped(&self) -> bool {
        self.res.is_mapped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn memfd(len: u64) -> std::os::fd::OwnedFd {
        let fd = rustix::fs::memfd_create("vmcirc-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, len).unwrap();
        fd
    }

    #[test]
    fn reservation_maps_and_releases_pages() {
        let page = rustix::param::page_size();
        let mut r = Reservation::new(4 * page, page, OnFork::Detach).unwrap();
        assert_eq!(r.len(), 4 * page);
        let fd = memfd(page as u64);
        // The same file page at two places: a one-page rolling mirror.
        let a = r.map_file(page, page, fd.as_fd(), 0).unwrap();
        let b = r.map_file(2 * page, page, fd.as_fd(), 0).unwrap();
        // SAFETY: both pages were just mapped read/write.
        unsafe {
            a.add(5).write_volatile(9);
            assert_eq!(b.add(5).read_volatile(), 9);
        }
        r.release(page, page).unwrap();
        // Bad ranges are refused and change nothing.
        for (at, len) in [(1, page), (0, 0), (3 * page, 2 * page), (usize::MAX, page)] {
            assert!(r.map_file(at, len, fd.as_fd(), 0).is_err(), "{at}+{len}");
            assert!(r.release(at, len).is_err());
        }
        // SAFETY: still mapped.
        assert_eq!(unsafe { b.add(5).read_volatile() }, 9);
        assert!(Reservation::new(page + 1, page, OnFork::Detach).is_err());
        assert!(Reservation::new(page, 3 * page, OnFork::Share).is_err());
        // Aligned to more than a page.
        let big = Reservation::new(page, 64 * page, OnFork::Share).unwrap();
        assert!(big.is_mapped());
        assert!((big.base() as usize).is_multiple_of(64 * page));
    }

    #[test]
    fn double_map_of_a_file_at_an_offset() {
        let page = rustix::param::page_size();
        let fd = memfd(3 * page as u64);
        let m = DoubleMap::new(fd.as_fd(), page as u64, 2 * page, page, Probe::At(7)).unwrap();
        let n = m.capacity();
        assert_eq!(n, 2 * page);
        // SAFETY: inside the window.
        unsafe {
            m.base().add(n + 3).write_volatile(7);
            assert_eq!(m.base().add(3).read_volatile(), 7);
        }
        // Read-only probe of bytes nobody writes.
        DoubleMap::new(
            fd.as_fd(),
            0,
            page,
            page,
            Probe::Compare {
                offset: 0,
                len: page,
            },
        )
        .unwrap();
        // Past the end of the file (an access there would be SIGBUS): refused.
        let e =
            DoubleMap::new(fd.as_fd(), 2 * page as u64, 2 * page, page, Probe::Ends).unwrap_err();
        assert!(e.to_string().contains("fewer than offset"), "{e}");
        assert!(DoubleMap::new(fd.as_fd(), 0, page + 1, page, Probe::Ends).is_err());
        assert!(DoubleMap::new(fd.as_fd(), 0, 0, page, Probe::Ends).is_err());
        let e = DoubleMap::new(fd.as_fd(), 0, page, page, Probe::At(page)).unwrap_err();
        assert!(e.to_string().contains("self-test failed"), "{e}");
    }
}
