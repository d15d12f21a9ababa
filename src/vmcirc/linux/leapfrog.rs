//! The Linux/Unix leapfrog backend: pages of one memory file mapped one run at
//! a time into a large reservation of address space.
//!
//! Owns [`MemfdPages`] (a [`PageWindow`] over a [`Reservation`] and a memory
//! file of `K` pages), its [`LeapfrogOptions`] and the safe [`LeapfrogRing`]
//! constructors. The ring's bookkeeping is `crate::vmcirc::Leapfrog`, shared
//! with the Pi.
//!
//! Creation: the memory file as for the mirrored ring (`memfd_create` with
//! close-on-exec, `shm_open` fallback, optional `MFD_HUGETLB`; `super::open_file`),
//! sized to `K` pages; one `PROT_NONE` reservation of `V` pages (64 GiB by
//! default on 64-bit systems, 256 MiB on 32-bit; never less than `2 * (K + 1)`
//! pages), aligned to the page size of the file. A page is mapped with
//! `mmap(MAP_FIXED | MAP_SHARED)` of the file over the reservation and returned
//! with `mmap(PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)` over it: the
//! reservation is never unmapped while the ring lives, so no other thread can
//! take a gap. Each new mapping is marked `MADV_DONTFORK` (the reservation's
//! fork rule, `super::fork`): a forked child's copy of the ring has no window
//! and acts as a ring of capacity 0.
//!
//! Mapped pages are prefaulted in the same step (`MADV_POPULATE_WRITE`, Linux
//! 5.14+; skipped where missing): one call fills the page table entries of a
//! whole run instead of one page fault per page.
//!
//! Unlike the mirrored ring, the descriptor stays open (pages are mapped all the
//! time): one descriptor per ring.
//!
//! `/proc/self/maps` shows a ring as at most a handful of entries (reservation
//! before, one or two runs of file pages, reservation after): returned pages
//! merge with the reservation around them again.

use std::format;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

#[cfg(any(target_os = "linux", target_os = "android"))]
use rustix::mm;

use super::{err, huge_page_size, open_file, os_err, Backend, MirrorOptions, Reservation};
use crate::vmcirc::{LeapError, Leapfrog, PageWindow};

/// The leapfrogging ring on Linux/Unix: `Send`, not `Sync`.
///
/// ```
/// use vmcirc::vmcirc::LeapfrogRing;
/// use vmcirc::ByteRing;
///
/// let mut ring = LeapfrogRing::with_capacity(1).unwrap(); // one page
/// let page = ring.capacity();
/// let mut total = 0u64;
/// for i in 0..10 * page {
///     // Bytes straddling a page boundary are still one slice.
///     ring.push(&[i as u8; 3]);
///     assert_eq!(ring.peek().len(), 3);
///     total += ring.pop(3) as u64;
/// }
/// assert_eq!(ring.read_position(), total);
/// assert!(ring.stats().remaps >= 30);
/// fn send<T: Send>(_: &T) {}
/// send(&ring);
/// ```
///
/// Not `Sync`:
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<vmcirc::vmcirc::LeapfrogRing>();
/// ```
pub type LeapfrogRing = Leapfrog<MemfdPages>;

/// The default reservation: 64 GiB where the address space is 64-bit.
#[cfg(target_pointer_width = "64")]
const DEFAULT_RESERVE: usize = 64 << 30;
/// The default reservation on 32-bit systems.
#[cfg(not(target_pointer_width = "64"))]
const DEFAULT_RESERVE: usize = 256 << 20;

/// How to create a [`LeapfrogRing`].
#[derive(Debug, Clone, Default)]
pub struct LeapfrogOptions {
    reserve: Option<usize>,
    huge_pages: bool,
    backend: Backend,
    lookahead: usize,
    lazy_faults: bool,
}

impl LeapfrogOptions {
    /// Defaults: normal pages, [`Backend::Auto`], the default reservation.
    pub fn new() -> Self {
        Self::default()
    }
    /// Bytes of address space to reserve (rounded up to the page size). The
    /// ring re-bases each time its pages reach the end, so a small reservation
    /// costs re-bases; it must hold at least `2 * (K + 1)` pages.
    pub fn reserve(mut self, bytes: usize) -> Self {
        self.reserve = Some(bytes);
        self
    }
    /// Huge pages (`MFD_HUGETLB`, memfd only): the capacity, the reservation and
    /// every remap are in huge pages (2 MiB on x86-64).
    pub fn huge_pages(mut self, on: bool) -> Self {
        self.huge_pages = on;
        self
    }
    /// Choose the memory file.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Let mapped pages fault in on first use instead of prefaulting them in the
    /// call that maps them (`MADV_POPULATE_WRITE`, the default where the kernel
    /// has it). For comparisons: prefaulting is faster (see the README).
    pub fn lazy_faults(mut self, on: bool) -> Self {
        self.lazy_faults = on;
        self
    }
    /// Pages mapped ahead of the free space ([`Leapfrog::set_lookahead`]):
    /// fewer, larger `mmap` calls for a few more mapped pages.
    pub fn lookahead(mut self, pages: usize) -> Self {
        self.lookahead = pages;
        self
    }
}

impl Leapfrog<MemfdPages> {
    /// A ring of at least `bytes` bytes (rounded up to whole pages) with the
    /// default options.
    pub fn with_capacity(bytes: usize) -> io::Result<Self> {
        Self::with_options(bytes, &LeapfrogOptions::new())
    }

    /// A ring of at least `bytes` bytes with explicit [`LeapfrogOptions`].
    /// Errors: `bytes == 0`, sizes beyond the address space, a reservation too
    /// small for the ring, or the system refusing the file or the mappings.
    pub fn with_options(bytes: usize, options: &LeapfrogOptions) -> io::Result<Self> {
        let pages = MemfdPages::new(bytes, options)?;
        let mut ring = Leapfrog::new(pages).map_err(|e| {
            let kind = match &e {
                LeapError::Map(e) => e.kind(),
                _ => io::ErrorKind::Other,
            };
            if options.huge_pages {
                // A huge-page file takes its pages when they are first mapped.
                err(
                    kind,
                    format!("vmcirc: huge pages unavailable: {e} (are enough huge pages free? see /proc/sys/vm/nr_hugepages)"),
                )
            } else {
                err(kind, format!("vmcirc: {e}"))
            }
        })?;
        ring.set_lookahead(options.lookahead);
        Ok(ring)
    }
}

/// `K` pages of a memory file, mapped into a [`Reservation`] of `V` pages on
/// demand: the Linux/Unix [`PageWindow`].
#[derive(Debug)]
pub struct MemfdPages {
    res: Reservation,
    fd: OwnedFd,
    page: usize,
    pages: usize,
    huge: bool,
    backend: Backend,
    /// Prefault mapped pages (`MADV_POPULATE_WRITE`) while the kernel takes it.
    populate: bool,
}

impl MemfdPages {
    /// `bytes` rounded up to whole pages of a new memory file, and a reservation.
    pub fn new(bytes: usize, options: &LeapfrogOptions) -> io::Result<Self> {
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
        let beyond = || {
            err(
                io::ErrorKind::InvalidInput,
                format!("vmcirc: ring capacity {bytes} is beyond the address space"),
            )
        };
        let cap = bytes.checked_next_multiple_of(page).ok_or_else(beyond)?;
        let pages = cap / page;
        // The smallest window that works: 2 * (K + 1) pages.
        let least = pages
            .checked_add(1)
            .and_then(|k| k.checked_mul(2 * page))
            .filter(|&l| l <= isize::MAX as usize)
            .ok_or_else(beyond)?;
        let reserve = match options.reserve {
            Some(r) => {
                let r = r.checked_next_multiple_of(page).unwrap_or(usize::MAX);
                if r < least {
                    return Err(err(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "vmcirc: a reservation of {r} bytes is too small for a leapfrog ring of {cap} bytes: it needs at least {least} (2 * (pages + 1))"
                        ),
                    ));
                }
                if r > isize::MAX as usize {
                    return Err(err(
                        io::ErrorKind::InvalidInput,
                        format!("vmcirc: a reservation of {r} bytes is beyond the address space"),
                    ));
                }
                r
            }
            None => DEFAULT_RESERVE.next_multiple_of(page).max(least),
        };
        let huge = options.huge_pages;
        let (fd, backend) = open_file(
            &MirrorOptions::new()
                .huge_pages(huge)
                .backend(options.backend),
        )?;
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
        let res = Reservation::new(reserve, page, super::OnFork::Detach)?;
        Ok(MemfdPages {
            res,
            fd,
            page,
            pages,
            huge,
            backend,
            populate: cfg!(any(target_os = "linux", target_os = "android")) && !options.lazy_faults,
        })
    }

    /// Whether the pages are huge pages.
    pub fn is_huge(&self) -> bool {
        self.huge
    }

    /// The memory file actually used ([`Backend::Memfd`] or [`Backend::Shm`]).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Bytes of address space reserved.
    pub fn reserved(&self) -> usize {
        self.res.len()
    }
}

impl MemfdPages {
    /// Fills in the page table entries of `len` bytes just mapped at `at` now,
    /// in one call, rather than one page fault per page on the first write (a
    /// fault costs more than a page's share of this call: see the README's
    /// leapfrog figures). Only a hint: where the kernel lacks it (before 5.14)
    /// the pages fault in as usual, and we stop asking.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn prefault(&mut self, at: *mut u8, len: usize) {
        if self.populate {
            // SAFETY: advice on pages this value just mapped; it changes no
            // contents and no mapping.
            let r = unsafe { mm::madvise(at.cast(), len, mm::Advice::LinuxPopulateWrite) };
            if r == Err(rustix::io::Errno::INVAL) {
                self.populate = false;
            }
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn prefault(&mut self, _at: *mut u8, _len: usize) {}
}

// SAFETY: 1. all four values are fixed at creation. 2. The window is the
// reservation, which this value owns (it is only mapped over by `map` and
// `release`, inside its bounds: `Reservation` checks them) and which is at most
// isize::MAX bytes. 3. `map` maps `count` pages of the file from page `ppage`
// read/write and shared over the named virtual pages, at the address checked by
// `Reservation::map_file`; shared mappings of one file page see each other's
// writes. 4. The file is private to this value (descriptor kept here, never
// handed out), zero-filled by the kernel, `K` pages long, and outlives every
// mapping of it. 5. Both calls pass only the named range to the reservation.
// 6. `is_mapped` is the reservation's: false for good in a forked child, where
// the range was not inherited (MADV_DONTFORK).
unsafe impl PageWindow for MemfdPages {
    type Error = io::Error;

    #[inline(always)]
    fn base(&self) -> *mut u8 {
        self.res.base()
    }

    #[inline(always)]
    fn page_size(&self) -> usize {
        self.page
    }

    #[inline(always)]
    fn pages(&self) -> usize {
        self.pages
    }

    #[inline(always)]
    fn window_pages(&self) -> usize {
        self.res.len() / self.page
    }

    fn map(&mut self, vpage: usize, ppage: usize, count: usize) -> io::Result<()> {
        if ppage.checked_add(count).is_none_or(|e| e > self.pages) {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!(
                    "vmcirc: pages {ppage}+{count} are not in a {}-page file",
                    self.pages
                ),
            ));
        }
        // No overflow: vpage + count <= V and ppage + count <= K, checked by the
        // reservation and above; V * P and K * P fit in isize.
        let p = self.page;
        let at = self
            .res
            .map_file(vpage * p, count * p, self.fd.as_fd(), (ppage * p) as u64)?;
        self.prefault(at, count * p);
        Ok(())
    }

    fn release(&mut self, vpage: usize, count: usize) -> io::Result<()> {
        let p = self.page;
        let (at, len) = vpage
            .checked_mul(p)
            .zip(count.checked_mul(p))
            .ok_or_else(|| {
                err(
                    io::ErrorKind::InvalidInput,
                    "vmcirc: page range overflows".into(),
                )
            })?;
        self.res.release(at, len)
    }

    #[inline(always)]
    fn is_mapped(&self) -> bool {
        self.res.is_mapped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmcirc::ByteRing;

    #[test]
    fn sizes_and_reservations() {
        let page = rustix::param::page_size();
        let r = LeapfrogRing::with_capacity(1).unwrap();
        assert_eq!(r.capacity(), page);
        assert_eq!(r.window().reserved(), DEFAULT_RESERVE);
        assert_eq!(r.window().backend(), Backend::Memfd);
        let o = LeapfrogOptions::new().reserve(4 * page);
        let r = LeapfrogRing::with_options(page, &o).unwrap();
        assert_eq!(r.window().window_pages(), 4);
        let e = LeapfrogRing::with_options(page + 1, &o).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        let e = LeapfrogRing::with_capacity(0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        for huge in [usize::MAX, usize::MAX / 2] {
            let e = LeapfrogRing::with_capacity(huge).unwrap_err();
            assert!(e.to_string().contains("beyond the address space"), "{e}");
        }
        let o = LeapfrogOptions::new().reserve(usize::MAX);
        let e = LeapfrogRing::with_options(page, &o).unwrap_err();
        assert!(e.to_string().contains("beyond the address space"), "{e}");
        let o = LeapfrogOptions::new().backend(Backend::Shm);
        let r = LeapfrogRing::with_options(page, &o).unwrap();
        assert_eq!(r.window().backend(), Backend::Shm);
    }

    #[test]
    fn bad_page_ranges_are_refused() {
        let page = rustix::param::page_size();
        let o = LeapfrogOptions::new().reserve(8 * page);
        let mut w = MemfdPages::new(2 * page, &o).unwrap();
        assert!(w.map(0, 1, 2).is_err());
        assert!(w.map(7, 0, 2).is_err());
        assert!(w.map(0, usize::MAX, 2).is_err());
        assert!(w.release(usize::MAX, 1).is_err());
        assert!(w.release(7, 2).is_err());
        w.map(6, 0, 2).unwrap();
        w.release(6, 2).unwrap();
    }
}
