//! Fork detection for mappings a forked child does not inherit.
//!
//! Owns the process's *fork token*: a nonzero number in one private anonymous
//! page marked `MADV_WIPEONFORK` (Linux 4.14+), which the kernel hands to a forked
//! child zero-filled. A mapping records the page and the token when it is made;
//! it belongs to this process exactly while the page still holds that token. The
//! check is one plain load and one compare: no system call (glibc no longer
//! caches `getpid`), no `pthread_atfork` handler (nothing runs in the child at
//! fork time, and raw `clone`/`fork` system calls are caught too).
//!
//! A token page is never written after it is published and never unmapped, so
//! reading it needs no atomic access (an atomic load would be a barrier to the
//! compiler, which then keeps a ring's positions in memory around every copy).
//! A forked child that makes mappings of its own finds its page wiped and
//! publishes a fresh page with a new token, larger than any it inherited (the
//! counter behind the tokens is inherited and only grows); inherited mappings
//! keep pointing at the wiped page and never match again.
//!
//! Where the page cannot be set up (an older kernel, another Unix), the token
//! lives in a static that never changes: [`ForkToken::detects_fork`] is false,
//! and the backends then do not mark their mappings `MADV_DONTFORK` either, so a
//! child keeps a working (shared) mapping instead of a missing one.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use rustix::mm::{self, MapFlags, ProtFlags};

/// The token where no wipe-on-fork page exists; never wiped, never zero.
static NEVER_WIPED: u64 = 1;
/// The process's current token page (null until first use).
static PAGE: AtomicPtr<u64> = AtomicPtr::new(ptr::null_mut());
/// Where new tokens come from (inherited by a child, so its tokens are larger).
static NEXT: AtomicU64 = AtomicU64::new(1);

/// A mapping's claim to belong to this process; see the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForkToken {
    word: *const u64,
    token: u64,
}

// SAFETY: `word` points at a token page (or the static) that lives for the whole
// process and is never written after it was published: shared reads only.
unsafe impl Send for ForkToken {}
// SAFETY: as above.
unsafe impl Sync for ForkToken {}

impl ForkToken {
    /// The current process's token (set up on first use, renewed in a forked
    /// child).
    pub(crate) fn current() -> Self {
        loop {
            let p = PAGE.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: a published token page (see `holds`).
                let token = unsafe { p.read() };
                if token != 0 {
                    return ForkToken { word: p, token };
                }
            }
            // First use, or a wiped page (this is a forked child): a fresh page.
            let fresh = wipe_on_fork_page().unwrap_or(ptr::from_ref(&NEVER_WIPED).cast_mut());
            if PAGE
                .compare_exchange(p, fresh, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Another thread published one first: use that.
                if !ptr::eq(fresh, &NEVER_WIPED) {
                    // SAFETY: our own page, never published, referenced by nobody.
                    let _ = unsafe { mm::munmap(fresh.cast(), rustix::param::page_size()) };
                }
            }
        }
    }

    /// True while the mapping that took this token belongs to this process
    /// (always true where fork cannot be detected).
    #[inline(always)]
    pub(crate) fn holds(&self) -> bool {
        // SAFETY: `word` is a token page or `NEVER_WIPED`: mapped for the whole
        // process (pages are never unmapped once published, and a forked child
        // inherits them, zero-filled), initialised, and never written after it
        // was published (Release in `current`, before any token was handed
        // out), so a plain read races with nothing.
        unsafe { self.word.read() == self.token }
    }

    /// Whether a fork would be noticed (then mappings may be `MADV_DONTFORK`).
    pub(crate) fn detects_fork(&self) -> bool {
        !ptr::eq(self.word, &NEVER_WIPED)
    }
}

/// A fresh page marked wipe-on-fork holding a new token, or `None` where the
/// system cannot do that.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn wipe_on_fork_page() -> Option<*mut u64> {
    let size = rustix::param::page_size();
    // SAFETY: a new private anonymous mapping at an address of the kernel's choice.
    let p = unsafe {
        mm::mmap_anonymous(
            ptr::null_mut(),
            size,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .ok()?;
    // SAFETY: advice on our own new mapping.
    if unsafe { mm::madvise(p, size, mm::Advice::LinuxWipeOnFork) }.is_err() {
        // SAFETY: our own mapping, unused.
        let _ = unsafe { mm::munmap(p, size) };
        return None;
    }
    let word = p.cast::<u64>();
    // SAFETY: page aligned, ours, not yet published: the only write it ever gets.
    unsafe { word.write(NEXT.fetch_add(1, Ordering::Relaxed) + 1) };
    Some(word)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn wipe_on_fork_page() -> Option<*mut u64> {
    None
}
