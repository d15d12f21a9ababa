//! Fork detection for mappings a forked child does not inherit.
//!
//! Owns the process's *fork token*: a nonzero number in one private anonymous
//! page marked `MADV_WIPEONFORK` (Linux 4.14+), which the kernel hands to a forked
//! child zero-filled. A mapping records the token when it is made; it belongs to
//! this process exactly while the page still holds that token. The check is one
//! load and one compare, no system call (glibc no longer caches `getpid`), and
//! needs no `pthread_atfork` handler (nothing runs in the child at fork time).
//!
//! A child that makes mappings of its own first gives its wiped page a new token,
//! larger than any it inherited (the counter behind the tokens is inherited too
//! and only grows), so inherited mappings never match again.
//!
//! Where the page cannot be set up (an older kernel, another Unix), the token
//! never changes: [`ForkToken::detects_fork`] is false, and the backends then do
//! not mark their mappings `MADV_DONTFORK` either, so a child keeps a working
//! (shared) mapping instead of a missing one.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use rustix::mm::{self, MapFlags, ProtFlags};

/// The word used where no wipe-on-fork page exists; never wiped, never zero.
static NEVER_WIPED: AtomicU64 = AtomicU64::new(1);
/// The process's token word: null until first use, then the page's first word or
/// `NEVER_WIPED`.
static WORD: AtomicPtr<AtomicU64> = AtomicPtr::new(ptr::null_mut());
/// Where new tokens come from (inherited by a child, so its tokens are larger).
static NEXT: AtomicU64 = AtomicU64::new(1);

/// A mapping's claim to belong to this process; see the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForkToken {
    word: &'static AtomicU64,
    token: u64,
}

impl ForkToken {
    /// The current process's token (set up on first use).
    pub(crate) fn current() -> Self {
        let word = word();
        let mut token = word.load(Ordering::Relaxed);
        if token == 0 {
            // A wiped page: this is a forked child making its first mapping.
            let fresh = NEXT.fetch_add(1, Ordering::Relaxed) + 1;
            token = match word.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => fresh,
                Err(other) => other,
            };
        }
        ForkToken { word, token }
    }

    /// True while the mapping that took this token belongs to this process
    /// (always true where fork cannot be detected).
    #[inline(always)]
    pub(crate) fn holds(&self) -> bool {
        self.word.load(Ordering::Relaxed) == self.token
    }

    /// Whether a fork would be noticed (then mappings may be `MADV_DONTFORK`).
    pub(crate) fn detects_fork(&self) -> bool {
        !ptr::eq(self.word, &NEVER_WIPED)
    }
}

/// The token word, set up once per process (lock free: no lock can be left held
/// across a `fork`).
fn word() -> &'static AtomicU64 {
    let p = WORD.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: WORD only ever holds `NEVER_WIPED` or the first word of a page
        // that is never unmapped, initialised before it was published (Release).
        return unsafe { &*p };
    }
    let mine = wipe_on_fork_page().unwrap_or(ptr::from_ref(&NEVER_WIPED).cast_mut());
    match WORD.compare_exchange(ptr::null_mut(), mine, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: as above (`mine` is one of the two).
        Ok(_) => unsafe { &*mine },
        Err(winner) => {
            if !ptr::eq(mine, &NEVER_WIPED) {
                // SAFETY: our own page, never published, referenced by nobody.
                let _ = unsafe { mm::munmap(mine.cast(), rustix::param::page_size()) };
            }
            // SAFETY: as above.
            unsafe { &*winner }
        }
    }
}

/// A fresh page marked wipe-on-fork holding a new token in its first word, or
/// `None` where the system cannot do that.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn wipe_on_fork_page() -> Option<*mut AtomicU64> {
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
    let word = p.cast::<AtomicU64>();
    // SAFETY: page aligned, zero-filled, ours: a valid AtomicU64.
    unsafe { &*word }.store(NEXT.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
    Some(word)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn wipe_on_fork_page() -> Option<*mut AtomicU64> {
    None
}
