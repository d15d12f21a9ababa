//! CPU control that is not memory management: interrupt masking and WFI (ARMv6
//! CP15 c7 form). On the host these are no-ops so callers compile and test.

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

/// Waits for an interrupt. It wakes on a pending interrupt even while CPSR.I is
/// set, which makes "mask, check, wait, unmask" free of lost wake-ups.
#[inline]
pub fn wait_for_interrupt() {
    // SAFETY: the ARMv6 wait-for-interrupt operation (c7, c0, 4) only stalls the
    // core until an interrupt is pending.
    #[cfg(target_arch = "arm")]
    unsafe {
        core::arch::asm!("mcr p15, 0, {0}, c7, c0, 4", in(reg) 0u32, options(nostack))
    };
    #[cfg(not(target_arch = "arm"))]
    core::hint::spin_loop();
}

/// Blocks until `ready()` holds, sleeping between interrupts without a race.
pub fn wait_until(ready: &dyn Fn() -> bool) {
    loop {
        disable_irq();
        if ready() {
            enable_irq();
            return;
        }
        wait_for_interrupt();
        enable_irq();
    }
}
