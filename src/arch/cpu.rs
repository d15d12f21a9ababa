//! CPU control that is not memory management: interrupt masking, and sleeping until
//! an interrupt (with WFI, which lives with the other CP15 operations in
//! [`crate::mmu::cp15`]). On the host these are no-ops so callers compile and test.

use crate::mmu::cp15;

/// Enables IRQs (CPSR.I = 0).
#[inline]
pub fn enable_irq() {
    // SAFETY: unmasking IRQs is always sound for the kernel: the handlers are
    // installed before this is first called.
    #[cfg(target_arch = "arm")]
    unsafe {
        // Not `nomem`: this is also a compiler barrier, so no memory access
        // moves out of (or into) a critical section.
        core::arch::asm!("cpsie i", options(nostack))
    };
}

/// Disables IRQs (CPSR.I = 1).
#[inline]
pub fn disable_irq() {
    // SAFETY: masking IRQs cannot break any invariant.
    #[cfg(target_arch = "arm")]
    unsafe {
        // Not `nomem`: a compiler barrier, as in `enable_irq`.
        core::arch::asm!("cpsid i", options(nostack))
    };
}

/// Runs `f` with IRQs masked, restoring the previous mask afterwards (so it
/// nests, and is harmless where IRQs are already off).
pub fn with_irq_masked<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "arm")]
    {
        let cpsr: u32;
        // SAFETY: reads CPSR, then masks IRQs; both are always allowed in a
        // privileged mode, and this is a compiler barrier (no `nomem`).
        unsafe { core::arch::asm!("mrs {0}, cpsr", "cpsid i", out(reg) cpsr, options(nostack)) };
        let r = f();
        if cpsr & (1 << 7) == 0 {
            enable_irq();
        }
        r
    }
    #[cfg(not(target_arch = "arm"))]
    f()
}

/// Blocks until `ready()` holds, sleeping between interrupts without a race.
pub fn wait_until(ready: &dyn Fn() -> bool) {
    loop {
        disable_irq();
        if ready() {
            enable_irq();
            return;
        }
        cp15::wait_for_interrupt();
        enable_irq();
    }
}
