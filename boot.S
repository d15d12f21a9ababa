/*
 * boot.S: entry point and exception vectors of the vmcirc kernel (BCM2835,
 * ARM1176JZF-S, ARMv6). Assembled by rustc through `global_asm!` in src/main.rs.
 *
 * Entry (from the VideoCore firmware, or QEMU's -bios loader) at 0x8000:
 *   mode   SVC (0x13), IRQ/FIQ state as left by the firmware, MMU and caches off
 *   r0     0
 *   r1     machine type (0xC42, BCM2708)
 *   r2     address of the ATAG list (0x100) or of a device tree blob
 *
 * Registers touched before Rust runs:
 *   CPSR   I, F, A set (cpsid aif): no interrupts until Rust enables them
 *   r4-r6  hold the firmware's r0-r2 while the stacks and .bss are set up
 *   sp     of UND, ABT, IRQ, FIQ and SVC mode: the tops of the stacks in linker.ld
 *          (FIQ is never enabled; it shares the UND stack in case one is taken)
 *   r0-r3  scratch for the .bss clear and the CP15 writes
 *   VBAR   the address of __vectors_start (below, in .text)
 *   SCTLR  V (bit 13) cleared so the vectors are taken from VBAR
 * The VFP is not enabled: the target is soft-float and no code uses it.
 * Then kernel_init(r0, r1, r2), the unsafe-to-safe hand-off in
 * src/kernel/entry.rs, is called with the firmware's values; it never returns (if
 * it did, the core sleeps in WFI forever).
 */

    .section .text.boot, "ax"
    .arm
    .global _start
_start:
    cpsid   aif
    mov     r4, r0
    mov     r5, r1
    mov     r6, r2

    cps     #0x1b                   @ UND
    ldr     sp, =__stack_und_top
    cps     #0x11                   @ FIQ (unused)
    ldr     sp, =__stack_und_top
    cps     #0x17                   @ ABT
    ldr     sp, =__stack_abt_top
    cps     #0x12                   @ IRQ
    ldr     sp, =__stack_irq_top
    cps     #0x13                   @ SVC
    ldr     sp, =__stack_svc_top

    /* Zero .bss (word aligned, see linker.ld). */
    ldr     r0, =__bss_start
    ldr     r1, =__bss_end
    mov     r2, #0
1:  cmp     r0, r1
    strlo   r2, [r0], #4
    blo     1b

    /*
     * Exception vectors: point VBAR (c12, c0, 0; ARM1176 TRM 3.2.43) at the table
     * below, in .text, and clear SCTLR.V so VBAR is used rather than 0xFFFF0000.
     * Set explicitly, so nothing depends on where the firmware (or a kernel that
     * chainloaded this one) left the vectors. The prefetch flush makes the change
     * visible to the next exception.
     */
    ldr     r0, =__vectors_start
    mcr     p15, 0, r0, c12, c0, 0  @ VBAR
    mrc     p15, 0, r0, c1, c0, 0   @ SCTLR
    bic     r0, r0, #(1 << 13)      @ V = 0: vectors at VBAR
    mcr     p15, 0, r0, c1, c0, 0
    mov     r0, #0
    mcr     p15, 0, r0, c7, c5, 4   @ prefetch flush (ARMv6 ISB)

    mov     r0, r4
    mov     r1, r5
    mov     r2, r6
    bl      kernel_init
halt:
    mov     r0, #0
    mcr     p15, 0, r0, c7, c10, 4  @ DSB: earlier accesses done before WFI
    mcr     p15, 0, r0, c7, c0, 4   @ wait for interrupt (ARMv6 CP15 form)
    b       halt

/*
 * Exception vectors, found through VBAR (set by _start; 32-byte aligned as VBAR
 * requires). Each entry loads pc from the word 32 bytes further on.
 */
    .balign 32
    .global __vectors_start
__vectors_start:
    ldr     pc, vec_reset
    ldr     pc, vec_undef
    ldr     pc, vec_svc
    ldr     pc, vec_pabt
    ldr     pc, vec_dabt
    ldr     pc, vec_reset
    ldr     pc, vec_irq
    ldr     pc, vec_fiq
vec_reset:  .word _start
vec_undef:  .word undef_entry
vec_svc:    .word svc_entry
vec_pabt:   .word pabt_entry
vec_dabt:   .word dabt_entry
vec_unused: .word _start
vec_irq:    .word irq_entry
vec_fiq:    .word fiq_entry

/*
 * IRQ: save the caller-saved registers (AAPCS) and lr, call kernel_irq, return to
 * the interrupted code restoring CPSR from SPSR (the ^ on ldm with pc).
 * 6 words keep the stack 8-byte aligned.
 */
irq_entry:
    sub     lr, lr, #4
    push    {r0-r3, r12, lr}
    bl      kernel_irq
    ldm     sp!, {r0-r3, r12, pc}^

/*
 * Faults. Each saves r0-r12 and lr of the faulting mode's view (14 words, 8-byte
 * aligned) and calls kernel_fault(kind, lr, spsr, saved_regs), which prints one
 * line. The faulting context is then abandoned: every mode's stack is reset and
 * kernel_recover() re-enters the shell in SVC mode. kinds: 0 undefined
 * instruction (lr = insn + 4, ARM state), 1 prefetch abort (lr = insn + 4),
 * 2 data abort (lr = insn + 8), 3 SVC (lr = insn + 4), 4 FIQ.
 *
 * A stack overflow is a data abort on the unmapped guard page under the stack
 * (linker.ld). The handler runs in ABT mode on the ABT stack (r13 is banked
 * per mode, ARM ARM v6 §A2.4), so it never touches the SVC or IRQ stack that
 * overflowed; kernel_fault names the stack from the fault address. Only an
 * overflow of the ABT stack itself cannot be reported (the abort's own push
 * faults again).
 */
undef_entry:
    push    {r0-r12, lr}
    mov     r0, #0
    b       fault_common
pabt_entry:
    push    {r0-r12, lr}
    mov     r0, #1
    b       fault_common
dabt_entry:
    push    {r0-r12, lr}
    mov     r0, #2
    b       fault_common
svc_entry:
    push    {r0-r12, lr}
    mov     r0, #3
    b       fault_common
fiq_entry:
    push    {r0-r12, lr}
    mov     r0, #4
fault_common:
    mov     r1, lr
    mrs     r2, spsr
    mov     r3, sp
    bl      kernel_fault
    cps     #0x1b                   @ UND
    ldr     sp, =__stack_und_top
    cps     #0x11                   @ FIQ
    ldr     sp, =__stack_und_top
    cps     #0x17                   @ ABT
    ldr     sp, =__stack_abt_top
    cps     #0x12                   @ IRQ
    ldr     sp, =__stack_irq_top
    cps     #0x13                   @ SVC
    ldr     sp, =__stack_svc_top
    bl      kernel_recover
    b       halt

/*
 * chainload(r0 = src, r1 = len, r2 = machine, r3 = atags): starts the kernel image
 * of len bytes at src the way the firmware starts kernel.img (src/kernel/chainload.rs
 * says what the Rust side has done before). Never returns, and uses no stack: the
 * copy overwrites this kernel, its data and its stacks. Called in SVC mode with IRQs
 * masked and the MMU on (identity map, so turning it off goes on at the next
 * instruction). The copier is moved out of the way first: to src + len rounded up to
 * 32, inside the image's buffer (the caller leaves room), which 0x8000 + len stays
 * below.
 */
    .global chainload
chainload:
    cpsid   aif
    mov     r4, r0                  @ src
    mov     r5, r1                  @ len
    mov     r6, r2                  @ machine type, for the new kernel's r1
    mov     r7, r3                  @ ATAG address, for its r2
    mov     r0, #0
    mcr     p15, 0, r0, c7, c14, 0  @ clean + invalidate the D-cache: all in memory
    mcr     p15, 0, r0, c7, c10, 4  @ DSB
    mrc     p15, 0, r1, c1, c0, 0   @ SCTLR
    bic     r1, r1, #0x1            @ M: MMU off
    bic     r1, r1, #0x4            @ C: D-cache off
    bic     r1, r1, #0x800          @ Z: branch prediction off
    bic     r1, r1, #0x1000         @ I: I-cache off
    mcr     p15, 0, r1, c1, c0, 0
    mcr     p15, 0, r0, c7, c5, 4   @ prefetch flush
    mcr     p15, 0, r0, c8, c7, 0   @ invalidate the TLB
    mcr     p15, 0, r0, c12, c0, 0  @ VBAR = 0, its reset value
    /* Invalidate the I-cache with the erratum 411920 workaround (four times,
       IRQs/FIQs/aborts masked above, then 11 NOPs; Linux cache-v6.S). */
    mcr     p15, 0, r0, c7, c5, 0
    mcr     p15, 0, r0, c7, c5, 0
    mcr     p15, 0, r0, c7, c5, 0
    mcr     p15, 0, r0, c7, c5, 0
    nop
    nop
    nop
    nop
    nop
    nop
    nop
    nop
    nop
    nop
    nop
    mcr     p15, 0, r0, c7, c5, 6   @ flush the BTB
    mcr     p15, 0, r0, c7, c10, 4  @ DSB
    add     r8, r4, r5              @ the copier's new place: src + len, 32-aligned
    add     r8, r8, #31
    bic     r8, r8, #31
    adr     r9, copier
    adr     r10, copier_end
    mov     r11, r8
1:  ldr     r12, [r9], #4
    str     r12, [r11], #4
    cmp     r9, r10
    blo     1b
    mcr     p15, 0, r0, c7, c10, 4  @ DSB: the copier is in memory (caches off)
    bx      r8

/* Position independent: runs from the image's buffer. r4 src, r5 len, r6, r7. */
copier:
    mov     r9, #0x8000
    add     r10, r5, #3
    bic     r10, r10, #3            @ whole words (the buffer has room after len)
2:  ldr     r12, [r4], #4
    str     r12, [r9], #4
    subs    r10, r10, #4
    bne     2b
    mov     r0, #0
    mcr     p15, 0, r0, c7, c10, 4  @ DSB: the image is in memory
    mcr     p15, 0, r0, c7, c5, 0   @ invalidate the I-cache (it is off)
    mcr     p15, 0, r0, c7, c5, 4   @ prefetch flush
    mov     r1, r6
    mov     r2, r7
    mov     r3, #0x8000
    bx      r3                      @ r0 = 0, r1 = machine, r2 = ATAGs
copier_end:

    .ltorg
