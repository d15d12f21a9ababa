//! The leapfrogging ring: a FIFO that reads as one endless contiguous stream.
//!
//! Owns [`Leapfrog`] (the position and page bookkeeping, and every slice into its
//! window), the backend contract [`PageWindow`] and the counters
//! [`LeapStats`]. `no_std`: the Pi kernel (`crate::mmu`) and Linux
//! (`linux/leapfrog.rs`, a memory file mapped page by page into a
//! [`super::Reservation`]) supply only the pages.
//!
//! # The idea
//!
//! A backend has `K` physical pages of `P` bytes and a window of `V` virtual
//! pages (`V` much larger than `K`) in which any virtual page can be mapped to
//! any physical page, or left inaccessible. Stream byte `s` (read and write
//! positions only ever grow) lives in physical page `(s / P) mod K` at offset
//! `s mod P`, and is seen at virtual offset `s - origin`. The ring keeps the
//! virtual pages covering `[read, read + K*P)` (the buffered bytes and the free
//! space) mapped, so both are one slice. When the reader has left a page, the
//! page is returned (made inaccessible) and its physical page is mapped again
//! just past the free space: pages leapfrog forward through the window. With
//! `K = 1` the ring still works: while the buffered bytes straddle a page
//! boundary the one physical page is mapped at two consecutive virtual pages,
//! a rolling mirror.
//!
//! When the next page would fall off the end of the window, the ring *re-bases*:
//! it maps the live pages again at the start of the window (`origin` moves
//! forward) and returns the old ones. The stream positions do not change; the
//! addresses of the bytes do. Every slice the ring hands out borrows the ring,
//! and re-basing needs `&mut self`, so no slice can outlive the addresses it
//! points at in safe code.
//!
//! # When the pages move
//!
//! Only in a write-side call ([`ByteRing::writable_parts`], [`Leapfrog::writable`],
//! [`ByteRing::push`], [`Leapfrog::prepare`]) that needs free space the mapped
//! pages do not cover yet. That call first returns the pages wholly behind the
//! reader (one backend call for the run), then maps the missing pages ahead (one
//! call per run of consecutive physical pages: at most two), re-basing first
//! when they would not fit. A `push` enters that path only when its bytes reach
//! the end of the mapped pages, so with `K > 1` pages move in runs; a
//! look-ahead ([`Leapfrog::set_lookahead`]) maps further ahead for longer
//! runs. `consume` is bookkeeping only, so the read side never fails and never
//! calls the backend. A backend error is kept
//! ([`Leapfrog::last_error`]) and the write side then offers the free space that
//! is mapped (possibly none); the next write-side call tries again. The buffered
//! bytes are always mapped.
//!
//! # Invariant
//!
//! In virtual byte offsets, with `N = K*P` and `W = V*P`:
//! `mapped_start <= floor_P(read) <= read <= write <= read + N` and
//! `write <= mapped_end <= W`, `mapped_start` and `mapped_end` multiples of `P`;
//! every virtual page in `[mapped_start, mapped_end)` is mapped to physical page
//! `(origin / P + v) mod K`. Pages behind `floor_P(read)` are mapped but no
//! slice covers them; pages past `read + N` may be mapped (the look-ahead, the
//! creation's self-test page) but no slice covers them either. A page mapped
//! outside `[mapped_start, mapped_end)` (left by a failed call) is never
//! touched, and is mapped over before it is used again.
//!
//! # Positions
//!
//! Unlike the mirrored ring, a drained leapfrog ring keeps its place (its
//! positions are stream positions; moving back would cost a re-base), so it
//! does not do the FIFO rewind the [`ByteRing`] docs describe.
//! [`Leapfrog::read_position`] and [`Leapfrog::write_position`] count bytes
//! since creation (as `u64`, wrapping after 2^64 bytes).

use core::fmt;
use core::ptr;
use core::slice;
use core::sync::atomic::{compiler_fence, Ordering};

use super::{self_test, ByteRing, Probe, RingError, SelfTestFailure};

/// A window of `V` virtual pages in which any page can show any of `K`
/// physical pages: what a [`Leapfrog`] ring needs from a backend.
///
/// # Safety
///
/// An implementation promises, for as long as the value lives (and across moves
/// of it: the window must not live inside the value itself):
///
/// 1. `base()`, `page_size()`, `pages()` and `window_pages()` return the same
///    values on every call;
/// 2. the window `[base, base + window_pages * page_size)` does not overflow
///    `isize` and belongs to this value: nobody else maps, reads or writes it;
/// 3. after `map(v, p, n)` returns `Ok`, virtual pages `v..v + n` are readable
///    and writable and show physical pages `p..p + n`, until they are mapped
///    again or released (a write through one virtual page is seen through
///    every other page mapped to the same physical page);
/// 4. the physical pages keep their contents whatever is mapped where, and
///    start initialised (zeros);
/// 5. `map` and `release` touch only the pages named (a failed call may leave
///    those pages in any state, but no other);
/// 6. once [`PageWindow::is_mapped`] has returned false it returns false for
///    good, and nothing may touch the window any more (a forked child that did
///    not inherit it).
pub unsafe trait PageWindow {
    /// Why a `map` or `release` failed.
    type Error: fmt::Debug + fmt::Display;
    /// The start of the window (page aligned).
    fn base(&self) -> *mut u8;
    /// `P`: bytes per page.
    fn page_size(&self) -> usize;
    /// `K`: physical pages (the ring holds up to `K * P` bytes).
    fn pages(&self) -> usize;
    /// `V`: virtual pages in the window.
    fn window_pages(&self) -> usize;
    /// Maps virtual pages `vpage..vpage + count` to physical pages
    /// `ppage..ppage + count` (the ring keeps `ppage + count <= K` and `vpage +
    /// count <= V`), replacing whatever was there.
    fn map(&mut self, vpage: usize, ppage: usize, count: usize) -> Result<(), Self::Error>;
    /// Makes virtual pages `vpage..vpage + count` inaccessible again (the
    /// addresses stay the window's).
    fn release(&mut self, vpage: usize, count: usize) -> Result<(), Self::Error>;
    /// Whether the window exists in this process; see promise 6. The ring
    /// checks it before every access and acts as a ring of capacity 0 when it
    /// does not.
    #[inline(always)]
    fn is_mapped(&self) -> bool {
        true
    }
}

/// What a [`Leapfrog`] ring has done to its window since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeapStats {
    /// Pages mapped at a new virtual address (a page leaping forward, the
    /// initial pages, and every page a re-base moved).
    pub remaps: u64,
    /// Pages returned to the inaccessible state.
    pub releases: u64,
    /// Backend `map` calls (each maps a run of pages).
    pub map_calls: u64,
    /// Backend `release` calls.
    pub release_calls: u64,
    /// Times the live pages were moved back to the start of the window.
    pub rebases: u64,
    /// Backend calls that failed.
    pub failures: u64,
}

/// Why a [`Leapfrog`] ring could not be made.
#[derive(Debug)]
pub enum LeapError<E> {
    /// The window's geometry is unusable (the text says which rule it breaks).
    Geometry(&'static str),
    /// Mapping the first pages failed.
    Map(E),
    /// The first pages did not show the same storage where they should.
    SelfTest(SelfTestFailure),
}

impl<E: fmt::Display> fmt::Display for LeapError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeapError::Geometry(why) => write!(f, "leapfrog window: {why}"),
            LeapError::Map(e) => write!(f, "leapfrog window: mapping the first pages: {e}"),
            LeapError::SelfTest(t) => write!(f, "leapfrog window: {t}"),
        }
    }
}

/// The leapfrogging ring over a [`PageWindow`]; see the module docs.
///
/// The FIFO operations are those of [`ByteRing`]; the buffered bytes
/// ([`Leapfrog::peek`]) and the free space ([`Leapfrog::writable`]) are always
/// one slice each. A slice borrows the ring, so the pages cannot move under it:
///
/// ```compile_fail
/// # fn f<W: vmcirc::vmcirc::PageWindow>(ring: &mut vmcirc::vmcirc::Leapfrog<W>) {
/// use vmcirc::ByteRing;
/// let data = ring.peek();
/// ring.push(b"may re-base"); // error: `ring` is borrowed by `data`
/// let _ = data.len();
/// # }
/// ```
pub struct Leapfrog<W: PageWindow> {
    base: *mut u8,
    /// `P`.
    page: usize,
    /// `K`.
    pages: usize,
    /// `N = K * P`.
    cap: usize,
    /// `W = V * P`.
    window_len: usize,
    read: usize,
    write: usize,
    mapped_start: usize,
    mapped_end: usize,
    /// Stream position of virtual offset 0 (a multiple of `P`).
    origin: u64,
    /// Look-ahead `A`: bytes mapped past the end of the free space (pages).
    ahead: usize,
    stats: LeapStats,
    last_error: Option<W::Error>,
    window: W,
}

// SAFETY: the ring owns its window exclusively (PageWindow promise 2); moving
// both to another thread is fine when the window itself may move.
unsafe impl<W: PageWindow + Send> Send for Leapfrog<W> where W::Error: Send {}

impl<W: PageWindow> Leapfrog<W> {
    /// An empty ring over `window`: checks the geometry (`P > 0`, `K >= 1`,
    /// `V >= 2 * (K + 1)` so a re-base never lands on the pages it moves, the
    /// window within `isize`), maps the first `K + 1` pages (the last one
    /// showing physical page 0 again) and checks that they mirror.
    pub fn new(mut window: W) -> Result<Self, LeapError<W::Error>> {
        let (page, pages, vpages) = (window.page_size(), window.pages(), window.window_pages());
        if page == 0 || pages == 0 {
            return Err(LeapError::Geometry(
                "needs at least one page of at least one byte",
            ));
        }
        let cap = pages
            .checked_mul(page)
            .filter(|&c| c <= isize::MAX as usize)
            .ok_or(LeapError::Geometry("the ring's capacity overflows"))?;
        let window_len = vpages
            .checked_mul(page)
            .filter(|&w| w <= isize::MAX as usize)
            .ok_or(LeapError::Geometry(
                "the window overflows the address space",
            ))?;
        if pages
            .checked_add(1)
            .and_then(|k| k.checked_mul(2))
            .is_none_or(|need| vpages < need)
        {
            return Err(LeapError::Geometry(
                "the window needs at least 2 * (pages + 1) virtual pages",
            ));
        }
        let base = window.base();
        // The initial pages, and page K showing physical page 0: the rolling mirror.
        window.map(0, 0, pages).map_err(LeapError::Map)?;
        window.map(pages, 0, 1).map_err(LeapError::Map)?;
        // SAFETY: virtual pages 0..=K were just mapped read/write: offsets 0,
        // P - 1 (< N) and N, N + P - 1 (page K, physical page 0) are inside, and
        // nobody else uses the window (promise 2).
        unsafe {
            self_test(base, cap, Probe::At(0)).map_err(LeapError::SelfTest)?;
            self_test(base, cap, Probe::At(page - 1)).map_err(LeapError::SelfTest)?;
        }
        let ring = Leapfrog {
            base,
            page,
            pages,
            cap,
            window_len,
            read: 0,
            write: 0,
            mapped_start: 0,
            mapped_end: cap + page,
            origin: 0,
            ahead: 0,
            stats: LeapStats {
                remaps: pages as u64 + 1,
                map_calls: 2,
                ..LeapStats::default()
            },
            last_error: None,
            window,
        };
        ring.check();
        Ok(ring)
    }

    #[inline(always)]
    fn check(&self) {
        debug_assert!(self.mapped_start <= self.read - self.read % self.page);
        debug_assert!(self.read <= self.write && self.write - self.read <= self.cap);
        debug_assert!(self.write <= self.mapped_end && self.mapped_end <= self.window_len);
        debug_assert!(
            self.mapped_start.is_multiple_of(self.page)
                && self.mapped_end.is_multiple_of(self.page)
        );
    }

    /// Whether the window may be touched (false in a forked child).
    #[inline(always)]
    fn live(&self) -> bool {
        self.window.is_mapped()
    }

    /// The backend.
    pub fn window(&self) -> &W {
        &self.window
    }

    /// `P`: bytes per page.
    pub fn page_size(&self) -> usize {
        self.page
    }

    /// `K`: physical pages.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Maps up to `pages` pages past the end of the free space whenever it maps
    /// any, so that the next `pages` page crossings need no backend call and the
    /// pages behind are returned in runs of about `pages + 1`: fewer, larger
    /// calls (fewer still with `K > 1`, where a run of consecutive physical
    /// pages is one call). Capped at `V / 2 - K - 1` (a re-base must still
    /// land clear of the pages it moves); returns the value used. 0 (the
    /// default) maps exactly the free space.
    pub fn set_lookahead(&mut self, pages: usize) -> usize {
        let most = self.window_len / self.page / 2 - self.pages - 1;
        let pages = pages.min(most);
        self.ahead = pages * self.page;
        pages
    }

    /// The look-ahead in pages ([`Leapfrog::set_lookahead`]).
    pub fn lookahead(&self) -> usize {
        self.ahead / self.page
    }

    /// The counters.
    pub fn stats(&self) -> LeapStats {
        self.stats
    }

    /// The last backend error (kept until the next one), if any call failed.
    pub fn last_error(&self) -> Option<&W::Error> {
        self.last_error.as_ref()
    }

    /// Stream position of the next byte to read: bytes consumed since creation.
    #[inline]
    pub fn read_position(&self) -> u64 {
        self.origin.wrapping_add(self.read as u64)
    }

    /// Stream position of the next byte to write: bytes committed since creation
    /// (the read position in a forked child, where the ring is empty).
    #[inline]
    pub fn write_position(&self) -> u64 {
        let at = if self.live() { self.write } else { self.read };
        self.origin.wrapping_add(at as u64)
    }

    /// Where the pieces are, as virtual offsets from the window's start:
    /// `(mapped_start, read, write, mapped_end)`, plus the window's size and its
    /// address. For a memory viewer (`stat`, `map`).
    pub fn layout(&self) -> LeapLayout {
        LeapLayout {
            base: self.base as usize,
            window_len: self.window_len,
            mapped_start: self.mapped_start,
            read: self.read,
            write: self.write,
            mapped_end: self.mapped_end,
        }
    }

    /// All buffered bytes, oldest first, as one slice.
    #[inline]
    pub fn peek(&self) -> &[u8] {
        if !self.live() {
            return &[];
        }
        // SAFETY: [read, write) lies in [mapped_start, mapped_end) (invariant),
        // whose pages are mapped read/write (promise 3) over initialised
        // storage (promise 4). Consecutive stream bytes in a run of at most N
        // are distinct storage, so the slice aliases none of the free space,
        // which is only written through &mut self, excluded by this borrow.
        unsafe { slice::from_raw_parts(self.base.add(self.read), self.write - self.read) }
    }

    /// Same as [`Leapfrog::peek`]: the zero-copy read side, paired with
    /// [`ByteRing::consume`].
    #[inline]
    pub fn readable(&self) -> &[u8] {
        self.peek()
    }

    /// Makes sure the free space up to `read + N` is mapped (the slow path of
    /// every write-side call): returns the pages behind the reader, re-bases if
    /// the missing pages would leave the window, maps them. Errors are kept in
    /// `last_error`; the mapped part stays usable.
    #[cold]
    #[inline(never)]
    fn prepare_slow(&mut self) {
        let p = self.page;
        let floor = self.read - self.read % p;
        if self.mapped_start < floor {
            let (v, n) = (self.mapped_start / p, (floor - self.mapped_start) / p);
            self.stats.release_calls += 1;
            match self.window.release(v, n) {
                Ok(()) => {
                    self.stats.releases += n as u64;
                    self.mapped_start = floor;
                }
                Err(e) => self.fail(e),
            }
        }
        // The end of the free space, rounded up to a page, and the look-ahead; no
        // overflow: read + N + P + A <= W + W / 2, both within isize.
        let need = (self.read + self.cap).next_multiple_of(p) + self.ahead;
        if need > self.window_len {
            if self.mapped_start != floor {
                // The pages behind could not be returned; a re-base might land
                // on them. Offer what is mapped.
                return;
            }
            self.rebase(floor, need);
        } else if self.mapped_end < need {
            let mapped = self.map_run(self.mapped_end, need, self.mapped_end);
            self.mapped_end = mapped;
        }
        self.check();
    }

    /// Maps virtual `[from, to)` (page multiples) to the physical pages of the
    /// stream bytes that will be seen there once the positions have moved back
    /// by `shift` (`from - shift` is their virtual offset today). Returns how far
    /// the mapping got.
    fn map_run(&mut self, from: usize, to: usize, shifted_from: usize) -> usize {
        let p = self.page;
        let origin_page = self.origin / p as u64;
        let mut v = from / p;
        let end = to / p;
        let mut stream_page = origin_page.wrapping_add((shifted_from / p) as u64);
        while v < end {
            let phys = (stream_page % self.pages as u64) as usize;
            let n = (end - v).min(self.pages - phys);
            self.stats.map_calls += 1;
            if let Err(e) = self.window.map(v, phys, n) {
                self.fail(e);
                return v * p;
            }
            self.stats.remaps += n as u64;
            v += n;
            stream_page = stream_page.wrapping_add(n as u64);
        }
        to
    }

    /// Moves the live pages `[floor, mapped_end)` (all pages behind were returned:
    /// `mapped_start == floor`) to the start of the window, mapping up to the
    /// virtual `need` (moved by `floor` too) on the way, then returns the old
    /// ones. `need - floor <= N + P + A <= W / 2 <= floor` (the geometry rule,
    /// the look-ahead's limit and `need > W`), so the new range never overlaps
    /// the old one.
    fn rebase(&mut self, floor: usize, need: usize) {
        let len = need - floor;
        let mapped = self.map_run(0, len, floor);
        if mapped < self.write - floor {
            // Not even the buffered bytes could be moved: keep the old place (its
            // mapped free space stays usable); the new pages are unused.
            return;
        }
        let (old_start, old_end) = (self.mapped_start, self.mapped_end);
        // The same storage is now seen at new addresses: keep every access to
        // the old ones before this point.
        compiler_fence(Ordering::SeqCst);
        self.origin = self.origin.wrapping_add(floor as u64);
        self.read -= floor;
        self.write -= floor;
        self.mapped_start = 0;
        self.mapped_end = mapped;
        self.stats.rebases += 1;
        let p = self.page;
        let n = (old_end - old_start) / p;
        if n == 0 {
            // A drained ring at a page boundary that had mapped nothing past it.
            return;
        }
        self.stats.release_calls += 1;
        match self.window.release(old_start / p, n) {
            Ok(()) => self.stats.releases += n as u64,
            // The old pages stay mapped and unused until something is mapped
            // over them (a later run) or the window goes.
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: W::Error) {
        self.stats.failures += 1;
        self.last_error = Some(e);
    }

    /// Maps the free space (the write side's slow path, done by every
    /// write-side call that needs it); returns how much of it is usable: all of
    /// it unless a backend call failed ([`Leapfrog::last_error`]).
    #[inline]
    pub fn prepare(&mut self) -> usize {
        if !self.live() {
            return 0;
        }
        if self.read + self.cap > self.mapped_end {
            self.prepare_slow();
        }
        (self.read + self.cap).min(self.mapped_end) - self.write
    }

    /// All free space as one slice (initialised: zeroes or old data), to be
    /// filled and then published with [`ByteRing::commit`]. Shorter than
    /// [`ByteRing::remaining`] only after a backend error.
    #[inline]
    pub fn writable(&mut self) -> &mut [u8] {
        let n = self.prepare();
        // SAFETY: [write, write + n) is mapped (`prepare`: n <= mapped_end -
        // write) over initialised storage, and lies in the free space [write,
        // read + N): N consecutive stream bytes are distinct storage, so it
        // aliases no buffered byte, and &mut self excludes every other slice.
        // In a forked child n is 0 and nothing is touched (dangling-free: base
        // is non-null and a 0-length slice reads nothing).
        unsafe { slice::from_raw_parts_mut(self.base.add(self.write), n) }
    }
}

/// Where the pieces of a [`Leapfrog`] ring are; see [`Leapfrog::layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeapLayout {
    /// The window's address.
    pub base: usize,
    /// Bytes in the window (`V * P`).
    pub window_len: usize,
    /// First mapped byte (a page boundary).
    pub mapped_start: usize,
    /// Read position.
    pub read: usize,
    /// Write position.
    pub write: usize,
    /// End of the mapped pages (a page boundary).
    pub mapped_end: usize,
}

impl<W: PageWindow> fmt::Debug for Leapfrog<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leapfrog")
            .field("page", &self.page)
            .field("pages", &self.pages)
            .field("read_position", &self.read_position())
            .field("write_position", &self.write_position())
            .field("layout", &self.layout())
            .field("stats", &self.stats)
            .field("mapped", &self.live())
            .finish()
    }
}

impl<W: PageWindow> ByteRing for Leapfrog<W> {
    #[inline]
    fn capacity(&self) -> usize {
        if self.live() {
            self.cap
        } else {
            0
        }
    }

    #[inline]
    fn len(&self) -> usize {
        if self.live() {
            self.write - self.read
        } else {
            0
        }
    }

    #[inline]
    fn readable_parts(&self) -> (&[u8], &[u8]) {
        (self.peek(), &[])
    }

    /// Bookkeeping only: the pages behind are returned by the next write-side
    /// call that maps new ones.
    #[inline]
    fn consume(&mut self, n: usize) -> Result<(), RingError> {
        let available = self.len();
        if n > available {
            return Err(RingError::Underflow {
                requested: n,
                available,
            });
        }
        // With K = 1 the page just read may be written next through the page
        // after it; keep the reads before the writes.
        compiler_fence(Ordering::SeqCst);
        self.read += n;
        self.check();
        Ok(())
    }

    /// The free space (maps it first when needed); see [`Leapfrog::writable`].
    #[inline]
    fn writable_parts(&mut self) -> (&mut [u8], &mut [u8]) {
        (self.writable(), &mut [])
    }

    /// Errors with [`RingError::Overflow`] when `n` is more than the free space
    /// mapped so far (all of it, after a write-side call that met no backend
    /// error).
    #[inline]
    fn commit(&mut self, n: usize) -> Result<(), RingError> {
        let available = if self.live() {
            (self.read + self.cap).min(self.mapped_end) - self.write
        } else {
            0
        };
        if n > available {
            return Err(RingError::Overflow {
                requested: n,
                available,
            });
        }
        compiler_fence(Ordering::SeqCst);
        self.write += n;
        self.check();
        Ok(())
    }

    /// One copy, no split.
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        if !self.live() {
            return 0;
        }
        let mut n = data.len().min(self.cap - (self.write - self.read));
        if self.write + n > self.mapped_end {
            self.prepare_slow();
            n = n.min(self.mapped_end - self.write);
        }
        let at = self.write;
        self.write = at + n;
        self.check();
        // SAFETY: [at, at + n) is mapped (n <= mapped_end - at) free space (n <=
        // remaining), not borrowed (we hold &mut self); `data` cannot overlap it:
        // the only safe ways to see window bytes borrow `self`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(at), n) };
        n
    }

    /// One copy, no split.
    #[inline]
    fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        let src = self.peek();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        compiler_fence(Ordering::SeqCst);
        self.read += n;
        self.check();
        n
    }

    #[inline]
    fn peek_into(&self, buf: &mut [u8]) -> usize {
        let src = self.peek();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        n
    }
}

#[cfg(all(unix, any(feature = "std", test)))]
mod io {
    use std::format;
    use std::io::{self, BufRead, Read, Write};

    use super::{ByteRing, Leapfrog, PageWindow};

    impl<W: PageWindow> Read for Leapfrog<W> {
        #[inline]
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            Ok(self.pop_into(buf))
        }
    }

    /// Writes what fits; `Ok(0)` when full (so `write_all` reports `WriteZero`).
    /// A backend error that leaves no free space mapped is an error.
    impl<W: PageWindow> Write for Leapfrog<W> {
        #[inline]
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.push(buf);
            if n == 0 && !buf.is_empty() && !self.is_full() {
                if let Some(e) = self.last_error() {
                    return Err(io::Error::other(format!("vmcirc: leapfrog ring: {e}")));
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// `fill_buf` is all buffered bytes as one slice; `consume` is clamped to `len`.
    impl<W: PageWindow> BufRead for Leapfrog<W> {
        #[inline]
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            Ok(self.readable())
        }
        #[inline]
        fn consume(&mut self, amt: usize) {
            self.pop(amt);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    //! The bookkeeping over the Linux backend wrapped in a recorder that can make
    //! calls fail.
    use super::super::{LeapfrogOptions, MemfdPages};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Real pages (a memfd in a reservation), every call recorded, failures on
    /// demand.
    struct Faulty {
        inner: MemfdPages,
        fail_map_at: Option<usize>,
        fail_release: bool,
        calls: Vec<(char, usize, usize, usize)>,
    }

    fn faulty(pages: usize, vpages: usize) -> Faulty {
        let p = page();
        let o = LeapfrogOptions::new().reserve(vpages * p);
        Faulty {
            inner: MemfdPages::new(pages * p, &o).unwrap(),
            fail_map_at: None,
            fail_release: false,
            calls: Vec::new(),
        }
    }

    fn page() -> usize {
        rustix::param::page_size()
    }

    // SAFETY: every promise is `MemfdPages`'s; the wrapper only refuses calls
    // (a refused call touches nothing) and records them.
    unsafe impl PageWindow for Faulty {
        type Error = std::io::Error;
        fn base(&self) -> *mut u8 {
            self.inner.base()
        }
        fn page_size(&self) -> usize {
            self.inner.page_size()
        }
        fn pages(&self) -> usize {
            self.inner.pages()
        }
        fn window_pages(&self) -> usize {
            self.inner.window_pages()
        }
        fn map(&mut self, vpage: usize, ppage: usize, count: usize) -> std::io::Result<()> {
            self.calls.push(('m', vpage, ppage, count));
            if self
                .fail_map_at
                .is_some_and(|v| (vpage..vpage + count).contains(&v))
            {
                return Err(std::io::Error::other("simulated map failure"));
            }
            self.inner.map(vpage, ppage, count)
        }
        fn release(&mut self, vpage: usize, count: usize) -> std::io::Result<()> {
            self.calls.push(('r', vpage, 0, count));
            if self.fail_release {
                return Err(std::io::Error::other("simulated release failure"));
            }
            self.inner.release(vpage, count)
        }
    }

    #[test]
    fn geometry_is_checked() {
        let e = Leapfrog::new(faulty(1, 4)).unwrap();
        assert_eq!(e.capacity(), page());
        let mut f = faulty(1, 8);
        f.fail_map_at = Some(1);
        let e = Leapfrog::new(f).unwrap_err();
        assert_eq!(
            std::format!("{e}"),
            "leapfrog window: mapping the first pages: simulated map failure"
        );
    }

    #[test]
    fn one_page_leaps_and_rebases() {
        // K = 1, V = 4: a re-base every other page.
        let p = page();
        let mut r = Leapfrog::new(faulty(1, 4)).unwrap();
        assert_eq!(r.capacity(), p);
        let mut model = std::collections::VecDeque::new();
        let mut next = 0u8;
        let mut popped = 0usize;
        for step in 0..400usize {
            let chunk: Vec<u8> = (0..(step * 797) % (p + 3))
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            let n = r.push(&chunk);
            assert_eq!(n, chunk.len().min(p - model.len()));
            model.extend(&chunk[..n]);
            assert!(
                r.peek().iter().eq(model.iter()),
                "step {step}: {:?}",
                r.layout()
            );
            let take = (step * 1291) % (p + 5);
            let mut buf = vec![0; take];
            let got = r.pop_into(&mut buf);
            assert!(buf[..got]
                .iter()
                .eq(model.drain(..got).collect::<Vec<_>>().iter()));
            popped += got;
            assert_eq!(r.read_position(), popped as u64);
            assert_eq!(r.write_position(), (popped + model.len()) as u64);
        }
        let s = r.stats();
        assert!(s.rebases > 20, "{s:?}");
        assert_eq!(s.failures, 0);
        // Never more than K + 1 = 2 pages mapped after a write-side call.
        r.prepare();
        let l = r.layout();
        assert!(l.mapped_end - l.mapped_start <= 2 * p, "{l:?}");
    }

    #[test]
    fn backend_failures_shrink_the_free_space_and_recover() {
        let p = page();
        let mut r = Leapfrog::new(faulty(2, 8)).unwrap();
        assert_eq!(r.push(&vec![1; 2 * p]), 2 * p);
        assert_eq!(r.pop(p + p / 2), p + p / 2);
        // Virtual page 2 is mapped (the self-test's); page 3 is next.
        r.window.fail_map_at = Some(3);
        assert_eq!(r.writable().len(), p, "only page 2 is mapped");
        assert_eq!(
            r.last_error()
                .map(std::string::ToString::to_string)
                .as_deref(),
            Some("simulated map failure")
        );
        assert_eq!(
            r.commit(p + 1),
            Err(RingError::Overflow {
                requested: p + 1,
                available: p
            })
        );
        assert_eq!(r.push(&vec![2; p + 10]), p);
        assert_eq!(r.stats().failures, 2);
        r.window.fail_map_at = None;
        assert_eq!(r.push(&vec![3; 2 * p]), p / 2);
        assert!(r.is_full());
        let want: Vec<u8> = [vec![1u8; p / 2], vec![2; p], vec![3; p / 2]].concat();
        assert_eq!(r.peek(), want.as_slice());
        // Release failures keep the pages; no re-base onto them: the ring runs
        // to the end of the window, then offers no free space ...
        r.window.fail_release = true;
        let before = r.stats().rebases;
        let mut steps = 0;
        while r.push(&vec![4; p]) > 0 || r.len() > 0 {
            r.pop(p);
            steps += 1;
            assert!(steps < 20);
        }
        assert_eq!(r.stats().rebases, before);
        assert_eq!(r.writable().len(), 0);
        assert_eq!(r.remaining(), 2 * p);
        assert_eq!(r.layout().write, r.layout().window_len);
        // ... until the pages can be returned again.
        r.window.fail_release = false;
        assert_eq!(r.push(&vec![5; p]), p);
        assert_eq!(r.push(&vec![6; p]), p);
        let want: Vec<u8> = [vec![5u8; p], vec![6; p]].concat();
        assert_eq!(r.peek(), want.as_slice());
        assert_eq!(r.stats().rebases, before + 1);
        assert_eq!(r.layout().read, 0);
    }

    /// Regression: a ring drained exactly at a page boundary that had mapped
    /// nothing past it asked the backend to release 0 pages when it re-based
    /// (an error, counted as a failure).
    #[test]
    fn drained_at_a_page_boundary_rebases_cleanly() {
        let p = page();
        let mut r = Leapfrog::new(faulty(1, 4)).unwrap();
        for i in 0..12u8 {
            assert_eq!(r.push(&vec![i; p]), p);
            assert_eq!(r.peek(), vec![i; p].as_slice());
            assert_eq!(r.pop(p), p);
        }
        let s = r.stats();
        assert!(s.rebases >= 2, "{s:?}");
        assert_eq!(s.failures, 0, "{:?}", r.last_error());
        assert!(!r.window.calls.contains(&('r', 4, 0, 0)));
    }

    #[test]
    fn calls_are_runs() {
        // K = 4, V = 40: consuming 3 pages at once returns them in one call and
        // maps the new ones in at most two.
        let p = page();
        let mut r = Leapfrog::new(faulty(4, 40)).unwrap();
        r.push(&vec![1; 4 * p]);
        r.pop(3 * p);
        r.window.calls.clear();
        r.push(&vec![2; 3 * p]);
        // read = 3p: pages 0..3 go; need = 7p: pages 5, 6 (physical 1, 2; page
        // 4 is the self-test's).
        assert_eq!(r.window.calls, vec![('r', 0, 0, 3), ('m', 5, 1, 2)]);
        r.pop(2 * p + 30);
        r.window.calls.clear();
        r.prepare();
        // read = 5p + 30: page 3 and 4 go; need = 10p: pages 7, 8, 9 (physical
        // 3, then 0 and 1: two runs).
        assert_eq!(
            r.window.calls,
            vec![('r', 3, 0, 2), ('m', 7, 3, 1), ('m', 8, 0, 2)]
        );
        let s = r.stats();
        assert_eq!(
            (s.remaps, s.releases, s.map_calls, s.release_calls),
            (10, 5, 5, 2)
        );
    }
}
