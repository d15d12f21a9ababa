//! The kernel's link layout in the first MiB, read from the symbols linker.ld defines:
//! where code, read-only data and writable data end, and the guard page under each
//! mode stack ([`vmcirc::mmu::KernelLayout`]).

use vmcirc::mmu::{KernelLayout, StackGuard};

extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
    static __stack_und_guard: u8;
    static __stack_abt_guard: u8;
    static __stack_irq_guard: u8;
    static __stack_svc_guard: u8;
}

/// The layout of this kernel image (addresses of linker symbols; identity mapped, so
/// they are physical addresses too).
pub fn kernel_layout() -> KernelLayout {
    // Only the symbols' addresses are taken, never their contents.
    let addr = |p: *const u8| p as usize as u32;
    KernelLayout {
        text_start: addr(core::ptr::addr_of!(__text_start)),
        text_end: addr(core::ptr::addr_of!(__text_end)),
        rodata_end: addr(core::ptr::addr_of!(__rodata_end)),
        end: addr(core::ptr::addr_of!(__kernel_end)),
        guards: [
            StackGuard {
                mode: "UND",
                page: addr(core::ptr::addr_of!(__stack_und_guard)),
            },
            StackGuard {
                mode: "ABT",
                page: addr(core::ptr::addr_of!(__stack_abt_guard)),
            },
            StackGuard {
                mode: "IRQ",
                page: addr(core::ptr::addr_of!(__stack_irq_guard)),
            },
            StackGuard {
                mode: "SVC",
                page: addr(core::ptr::addr_of!(__stack_svc_guard)),
            },
        ],
    }
}
