//! [`Global`]: a value the kernel's contexts reach through a `static` on this single
//! core (the shell in SVC mode, the IRQ handler, the fault and panic paths), in place
//! of `static mut`.
//!
//! A value is installed once by the boot code and then lent out with [`Global::with`],
//! which hands out at most one `&mut` at a time: a use nested inside another (a fault
//! report while the same global is held further up the stack) gets `None` instead of
//! a second reference. Holders that can be interrupted by a context using the same
//! global mask IRQs while they hold it ([`crate::kernel::rx`]). A fault abandons the
//! frames that held globals (they never run again): [`Global::reclaim`] makes such a
//! global available again, which the fault recovery and the panic handler do.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// See the module docs.
pub struct Global<T> {
    value: UnsafeCell<Option<T>>,
    /// Set while a `with` holds the value (and while `install` writes it).
    busy: AtomicBool,
}

// SAFETY: the value is only reached through `with`, which the `busy` flag makes
// exclusive, and this kernel runs on one core: a `&mut T` is never live in two
// contexts at once. T: Send because the value moves between contexts (installed in
// the boot code, used by the IRQ handler or the shell).
unsafe impl<T: Send> Sync for Global<T> {}

impl<T> Global<T> {
    /// Empty: `with` returns `None` until [`Global::install`].
    pub const fn new() -> Self {
        Global {
            value: UnsafeCell::new(None),
            busy: AtomicBool::new(false),
        }
    }

    /// Installs `value`; hands it back when one is installed already or the global
    /// is held right now.
    pub fn install(&self, value: T) -> Result<(), T> {
        if self.busy.swap(true, Ordering::Acquire) {
            return Err(value);
        }
        // SAFETY: `busy` was clear and is now ours, so no reference into the cell
        // exists (see the Sync impl).
        let slot = unsafe { &mut *self.value.get() };
        let r = if slot.is_some() {
            Err(value)
        } else {
            *slot = Some(value);
            Ok(())
        };
        self.busy.store(false, Ordering::Release);
        r
    }

    /// Runs `f` on the value; `None` when nothing is installed or the value is held
    /// already (a nested use on this core).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: as in `install`: `busy` makes this the only reference.
        let r = unsafe { &mut *self.value.get() }.as_mut().map(f);
        self.busy.store(false, Ordering::Release);
        r
    }

    /// Makes a value held by abandoned frames available again.
    ///
    /// # Safety
    ///
    /// No frame that holds this global through `with` may ever run again: call it
    /// only after a fault has abandoned the interrupted context (boot.S reset every
    /// mode's stack before `kernel_recover`) or from the panic handler, which never
    /// returns.
    pub unsafe fn reclaim(&self) {
        self.busy.store(false, Ordering::Release);
    }
}
