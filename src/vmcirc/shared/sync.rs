//! The atomics the shared-ring protocol uses: `core`'s, or `loom`'s under
//! `cfg(loom)` so the loom models check the same protocol code.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A busy-wait hint (a yield point for loom).
#[cfg(loom)]
pub(crate) use loom::hint::spin_loop;

#[cfg(not(loom))]
pub(crate) use core::hint::spin_loop;
