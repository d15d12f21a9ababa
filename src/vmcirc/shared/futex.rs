//! Sleeping on and waking a futex word in the shared header (Linux).
//!
//! The words live in a `MAP_SHARED` file mapping, so these are *shared* futexes
//! (no `FUTEX_PRIVATE_FLAG`): the kernel keys them by file page and offset, and a
//! wake in one process reaches a sleeper in another even though each maps the
//! header at its own address.

use core::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, at most `timeout`. Returns on a wake-up, a
/// changed word, a signal or the timeout: callers always re-check their condition.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = futex::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "re-check".
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes every sleeper on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}
