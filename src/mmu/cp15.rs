//! CP15 system-control registers and operations of the ARM1176JZF-S, as typed
//! registers in the style of the `aarch32-cpu` crate's `SysReg`: each register or
//! operation is a type carrying its coprocessor coordinates ([`SysReg`]), and
//! [`SysRegRead`] / [`SysRegWrite`] hold the one `MRC` and the one `MCR` template
//! (with the host recorder behind them). The functions below give each operation a
//! name, a TRM reference and its safety contract.
//!
//! References are to the ARM1176JZF-S Technical Reference Manual, ARM DDI 0301H
//! ("TRM"), chapter 3 *System Control Coprocessor* (register descriptions in §3.2) and
//! chapter 6 *Memory Management Unit*.
//!
//! | operation                         | type (`op1, CRn, CRm, op2`) | function                    |
//! |-----------------------------------|-----------------------------|-----------------------------|
//! | Main ID                           | [`Midr`] `0,c0,c0,0`        | [`read_midr`]               |
//! | Cache Type                        | [`CacheType`] `0,c0,c0,1`   | [`read_cache_type`]         |
//! | Control (SCTLR)                   | [`Sctlr`] `0,c1,c0,0`       | [`read_sctlr`], [`write_sctlr`] |
//! | Translation Table Base 0          | [`Ttbr0`] `0,c2,c0,0`       | [`read_ttbr0`], [`write_ttbr0`] |
//! | Translation Table Base Control    | [`Ttbcr`] `0,c2,c0,2`       | [`read_ttbcr`], [`write_ttbcr`] |
//! | Domain Access Control             | [`Dacr`] `0,c3,c0,0`        | [`read_dacr`], [`write_dacr`] |
//! | Data / Instruction Fault Status   | [`Dfsr`] / [`Ifsr`] `0,c5,c0,0/1` | [`read_dfsr`], [`read_ifsr`] |
//! | Fault Address                     | [`Far`] `0,c6,c0,0`         | [`read_far`]                |
//! | Wait For Interrupt                | [`Wfi`] `0,c7,c0,4`         | [`wait_for_interrupt`] (DSB first) |
//! | Invalidate entire I-cache         | [`InvalidateICache`] `0,c7,c5,0` | [`invalidate_icache`] (erratum 411920 sequence) |
//! | Flush prefetch buffer             | [`PrefetchFlush`] `0,c7,c5,4` | [`prefetch_flush`]        |
//! | Flush entire branch target cache  | [`FlushBtb`] `0,c7,c5,6`    | [`flush_btb`]               |
//! | Clean D-cache line by MVA         | [`CleanDCacheLine`] `0,c7,c10,1` | [`clean_dcache_line`]  |
//! | Data Synchronization Barrier      | [`Dsb`] `0,c7,c10,4`        | [`dsb`]                     |
//! | Data Memory Barrier               | [`Dmb`] `0,c7,c10,5`        | [`dmb`]                     |
//! | Clean + invalidate entire D-cache | [`CleanInvalidateDCache`] `0,c7,c14,0` | [`clean_invalidate_dcache`] |
//! | Invalidate entire unified TLB     | [`InvalidateTlb`] `0,c8,c7,0` | [`invalidate_tlb`]        |
//! | Invalidate TLB entry by MVA       | [`InvalidateTlbMva`] `0,c8,c7,1` | [`invalidate_tlb_mva`] |
//! | Vector Base Address               | [`Vbar`] `0,c12,c0,0`       | [`read_vbar`] (boot.S writes it) |
//!
//! Reading a register is safe (only registers whose read has no side effect implement
//! [`SysRegRead`]); writing one that changes translation, caching, permissions or the
//! vectors is `unsafe`. Maintenance operations that cannot lose data are safe.
//!
//! On other architectures (host builds and tests) the templates do not exist: a read
//! returns the ARM1176 reset value and a write does nothing; under `cfg(test)` a
//! per-thread fake register file records writes and operations so tests can check
//! sequences (the TRM order of the MMU enable, the maintenance after a table change).

#[cfg(target_arch = "arm")]
use core::arch::asm;
use core::fmt;

use bitfield::bitfield;

use super::{LiveTable, TranslationTable};

/// ARM1176 L1 cache line length in bytes (Cache Type Register `len` = 0b10).
pub const CACHE_LINE: usize = 32;

/// TTBR0 walk attributes: RGN\[4:3\] = 0b01 (outer write-back write-allocate),
/// P = 0, S = 0 (not shared), C\[0\] = 0 (inner non-cacheable): TRM §3.2.13.
///
/// The walk is inner non-cacheable, so the walker reads memory, not the L1 D-cache. The
/// table itself sits in normal write-back RAM, so every change is cleaned out of the
/// D-cache line by line (`c7,c10,1`) before the TLB is invalidated (see
/// [`LiveTable`]). That costs one clean per changed cache line and is correct whatever
/// the walker does with an inner-cacheable walk; it is also what Linux does for
/// uniprocessor ARMv6 (`TTB_FLAGS_UP` = outer WB-WA only, with `flush_pte`).
pub const TTBR_WALK_ATTRS: u32 = 0b01 << 3;

/// DACR value: domain 0 client (permissions checked), domains 1..=15 no access.
pub const DACR_DOMAIN0_CLIENT: u32 = 0b01;

bitfield! {
    /// The c1 Control Register (SCTLR): TRM §3.2.7, *c1, Control Register*.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct Sctlr(u32);
    impl Debug;
    /// M: MMU enable.
    pub m, set_m: 0;
    /// A: strict alignment checking.
    pub a, set_a: 1;
    /// C: L1 data cache enable.
    pub c, set_c: 2;
    /// W: write buffer (reads as one on ARM1176).
    pub w, set_w: 3;
    /// B: legacy big-endian (BE-32).
    pub b, set_b: 7;
    /// S: legacy system protection.
    pub s, set_s: 8;
    /// R: legacy ROM protection.
    pub r, set_r: 9;
    /// Z: program flow (branch) prediction enable.
    pub z, set_z: 11;
    /// I: L1 instruction cache enable.
    pub i, set_i: 12;
    /// V: high exception vectors (0xFFFF_0000).
    pub v, set_v: 13;
    /// RR: round-robin cache replacement.
    pub rr, set_rr: 14;
    /// L4: ARMv4 loads to PC do not set the T bit.
    pub l4, set_l4: 15;
    /// FI: fast interrupt configuration.
    pub fi, set_fi: 21;
    /// U: unaligned access and mixed-endian support.
    pub u, set_u: 22;
    /// XP: ARMv6 page table format (subpage AP bits disabled).
    pub xp, set_xp: 23;
    /// VE: vectored interrupts from the VIC port.
    pub ve, set_ve: 24;
    /// EE: exception endianness.
    pub ee, set_ee: 25;
    /// TR: TEX remap.
    pub tr, set_tr: 28;
    /// FA: force AP (access flag).
    pub fa, set_fa: 29;
}

bitfield! {
    /// The Cache Type Register, ARMv6 format: TRM §3.2.3, *c0, Cache Type Register*.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct CacheType(u32);
    impl Debug;
    u8;
    /// Cache type (0b1110: write-back, c7 cleaning, format C lockdown).
    pub ctype, _: 28, 25;
    /// S: separate instruction and data caches.
    pub separate, _: 24;
    /// Dsize P: page colouring restriction for the D-cache (a way larger than 4 KiB).
    pub d_colouring, _: 23;
    /// Dsize size field.
    pub d_size, _: 21, 18;
    /// Dsize assoc field.
    pub d_assoc, _: 17, 15;
    /// Dsize M (multiplier) bit.
    pub d_m, _: 14;
    /// Dsize len field.
    pub d_len, _: 13, 12;
    /// Isize P: page colouring restriction for the I-cache.
    pub i_colouring, _: 11;
    /// Isize size field.
    pub i_size, _: 9, 6;
    /// Isize assoc field.
    pub i_assoc, _: 5, 3;
    /// Isize M bit.
    pub i_m, _: 2;
    /// Isize len field.
    pub i_len, _: 1, 0;
}

/// Size, associativity and line length of one cache, decoded from [`CacheType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheGeometry {
    /// Total size in bytes.
    pub bytes: u32,
    /// Number of ways.
    pub ways: u32,
    /// Line length in bytes.
    pub line: u32,
    /// The P bit: the way is larger than a 4 KiB page, so 4 KiB page aliases need
    /// colouring.
    pub colouring: bool,
}

impl CacheGeometry {
    fn decode(size: u8, assoc: u8, m: bool, len: u8, colouring: bool) -> Self {
        // ARMv6: size = 2^(SIZE+9) (x1.5 when M), ways = 2^ASSOC (x1.5 when M),
        // line = 2^(LEN+3) bytes.
        let mul = |x: u32| if m { x + x / 2 } else { x };
        CacheGeometry {
            bytes: mul(512u32 << size),
            ways: mul(1u32 << assoc),
            line: 8u32 << len,
            colouring,
        }
    }

    /// Bytes per way: the span of addresses that index one way. Virtual aliases that are
    /// equal modulo this size fall into the same set.
    pub fn way_bytes(&self) -> u32 {
        self.bytes / self.ways.max(1)
    }
}

impl fmt::Display for CacheGeometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} KiB {}-way {} B lines, {} B/way{}",
            self.bytes / 1024,
            self.ways,
            self.line,
            self.way_bytes(),
            if self.colouring {
                ", page colouring"
            } else {
                ""
            }
        )
    }
}

impl CacheType {
    /// The data cache geometry.
    pub fn dcache(self) -> CacheGeometry {
        CacheGeometry::decode(
            self.d_size(),
            self.d_assoc(),
            self.d_m(),
            self.d_len(),
            self.d_colouring(),
        )
    }

    /// The instruction cache geometry.
    pub fn icache(self) -> CacheGeometry {
        CacheGeometry::decode(
            self.i_size(),
            self.i_assoc(),
            self.i_m(),
            self.i_len(),
            self.i_colouring(),
        )
    }
}

impl fmt::Display for CacheType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d-cache {}; i-cache {}", self.dcache(), self.icache())
    }
}

/// A CP15 register or operation, named by the operands of its `MRC`/`MCR` encoding:
/// `p15, OP1, Rt, CRn, CRm, OP2`.
pub trait SysReg {
    /// The `opc1` operand.
    const OP1: u32;
    /// The primary register, `CRn`.
    const CRN: u32;
    /// The secondary register, `CRm`.
    const CRM: u32;
    /// The `opc2` operand.
    const OP2: u32;
    /// What the host recorder calls it.
    const ID: Reg;
}

/// A CP15 register whose read (`MRC`) has no side effect.
pub trait SysRegRead: SysReg {
    /// The register's raw value.
    #[inline(always)]
    fn read_raw() -> u32 {
        #[cfg(target_arch = "arm")]
        {
            let v: u32;
            // SAFETY: implemented only for registers whose read has no side effect
            // (see the module table); the kernel runs privileged, where every CP15
            // register here is readable.
            unsafe {
                asm!(
                    "mrc p15, {op1}, {v}, c{crn}, c{crm}, {op2}",
                    v = out(reg) v,
                    op1 = const Self::OP1,
                    crn = const Self::CRN,
                    crm = const Self::CRM,
                    op2 = const Self::OP2,
                    options(nomem, nostack, preserves_flags)
                )
            };
            v
        }
        #[cfg(not(target_arch = "arm"))]
        host::read(Self::ID)
    }
}

/// A CP15 register or operation written with `MCR`.
pub trait SysRegWrite: SysReg {
    /// Writes `v` (a register value, an MVA, or 0 for an operation without operand).
    /// The value is register sized; on the host it is a `usize` so the recorder keeps
    /// whole host addresses.
    ///
    /// # Safety
    ///
    /// The register's or operation's own contract (see the function that names it):
    /// a write that changes translation, caching, permissions or the vectors must keep
    /// the running code, its stack and data reachable and intact.
    #[inline(always)]
    unsafe fn write_raw(v: usize) {
        #[cfg(target_arch = "arm")]
        // SAFETY: the caller's contract. No `nomem`: every CP15 write here orders or
        // changes how memory is seen (barriers, maintenance, translation), so it must
        // also be a compiler barrier.
        unsafe {
            asm!(
                "mcr p15, {op1}, {v}, c{crn}, c{crm}, {op2}",
                v = in(reg) v,
                op1 = const Self::OP1,
                crn = const Self::CRN,
                crm = const Self::CRM,
                op2 = const Self::OP2,
                options(nostack, preserves_flags)
            )
        };
        #[cfg(not(target_arch = "arm"))]
        host::write(Self::ID, v);
    }
}

/// Declares CP15 registers and operations: a type per entry with its coordinates
/// `(op1, CRn, CRm, op2)`, and the read / write traits it supports.
macro_rules! sysregs {
    ($($(#[$meta:meta])* $name:ident = ($op1:literal, $crn:literal, $crm:literal, $op2:literal): $($access:ident),+;)+) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug)]
            pub struct $name;
            sysregs!(@impl $name, $op1, $crn, $crm, $op2, $($access),+);
        )+
    };
    (@impl $name:ident, $op1:literal, $crn:literal, $crm:literal, $op2:literal, $($access:ident),+) => {
        impl SysReg for $name {
            const OP1: u32 = $op1;
            const CRN: u32 = $crn;
            const CRM: u32 = $crm;
            const OP2: u32 = $op2;
            const ID: Reg = Reg::$name;
        }
        $(sysregs!(@access $name, $access);)+
    };
    (@access $name:ident, read) => { impl SysRegRead for $name {} };
    (@access $name:ident, write) => { impl SysRegWrite for $name {} };
}

/// Every register and operation [`SysReg`] names, for the host recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Reg {
    Midr,
    CacheType,
    Sctlr,
    Ttbr0,
    Ttbcr,
    Dacr,
    Dfsr,
    Ifsr,
    Far,
    Vbar,
    Wfi,
    InvalidateICache,
    PrefetchFlush,
    FlushBtb,
    CleanDCacheLine,
    Dsb,
    Dmb,
    CleanInvalidateDCache,
    InvalidateTlb,
    InvalidateTlbMva,
}

sysregs! {
    /// Main ID Register (TRM §3.2.2).
    Midr = (0, 0, 0, 0): read;
    /// Translation Table Base Register 0 (TRM §3.2.13).
    Ttbr0 = (0, 2, 0, 0): read, write;
    /// Translation Table Base Control Register (TRM §3.2.15).
    Ttbcr = (0, 2, 0, 2): read, write;
    /// Domain Access Control Register (TRM §3.2.16).
    Dacr = (0, 3, 0, 0): read, write;
    /// Data Fault Status Register (TRM §3.2, *c5, Data Fault Status Register*).
    Dfsr = (0, 5, 0, 0): read;
    /// Instruction Fault Status Register (TRM §3.2, *c5, Instruction Fault Status
    /// Register*).
    Ifsr = (0, 5, 0, 1): read;
    /// Fault Address Register (TRM §3.2, *c6, Fault Address Register*).
    Far = (0, 6, 0, 0): read;
    /// Vector Base Address Register (TRM §3.2.43, *c12, Secure or Non-secure Vector
    /// Base Address Register*): where the exception vectors are while SCTLR.V = 0.
    Vbar = (0, 12, 0, 0): read, write;
    /// Wait For Interrupt (TRM §3.2.22, *c7, Cache operations*).
    Wfi = (0, 7, 0, 4): write;
    /// Invalidate entire instruction cache (also flushes the branch target cache).
    InvalidateICache = (0, 7, 5, 0): write;
    /// Flush prefetch buffer: the ARMv6 ISB.
    PrefetchFlush = (0, 7, 5, 4): write;
    /// Flush entire branch target cache.
    FlushBtb = (0, 7, 5, 6): write;
    /// Clean data cache line by MVA.
    CleanDCacheLine = (0, 7, 10, 1): write;
    /// Data Synchronization Barrier (the ARMv6 DSB, "drain write buffer").
    Dsb = (0, 7, 10, 4): write;
    /// Data Memory Barrier (the ARMv6 DMB).
    Dmb = (0, 7, 10, 5): write;
    /// Clean and invalidate entire data cache.
    CleanInvalidateDCache = (0, 7, 14, 0): write;
    /// Invalidate entire unified TLB (TRM §3.2, *c8, TLB Operations Register*).
    InvalidateTlb = (0, 8, 7, 0): write;
    /// Invalidate unified TLB entry by MVA.
    InvalidateTlbMva = (0, 8, 7, 1): write;
}
sysregs!(@impl Sctlr, 0, 1, 0, 0, read, write);
sysregs!(@impl CacheType, 0, 0, 0, 1, read);

/// Main ID Register (TRM §3.2.2, *c0, Main ID Register*): implementer, variant,
/// architecture, part number, revision. `0x410FB767` on the BCM2835 (ARM1176JZF-S r0p7).
pub fn read_midr() -> u32 {
    Midr::read_raw()
}

/// Cache Type Register (TRM §3.2.3). `0x1D152152` on the BCM2835: separate 16 KiB
/// 4-way caches with 32-byte lines, no page colouring restriction.
pub fn read_cache_type() -> CacheType {
    CacheType(CacheType::read_raw())
}

/// Control Register (TRM §3.2.7).
pub fn read_sctlr() -> Sctlr {
    Sctlr(Sctlr::read_raw())
}

/// Writes the Control Register (TRM §3.2.7). Follow it with [`prefetch_flush`].
///
/// # Safety
///
/// The new value switches the MMU, caches, alignment checking and vectors: the code
/// after it, its stack and data must stay reachable at the same addresses with the
/// same contents (identity mapped, caches cleaned or invalidated as needed).
pub unsafe fn write_sctlr(v: Sctlr) {
    // SAFETY: forwarded contract.
    unsafe { Sctlr::write_raw(v.0 as usize) }
}

/// Translation Table Base Register 0 (TRM §3.2.13).
pub fn read_ttbr0() -> u32 {
    Ttbr0::read_raw()
}

/// Writes TTBR0 (TRM §3.2.13): table base (16 KiB aligned with TTBCR.N = 0) | walk
/// attributes.
///
/// # Safety
///
/// When the MMU is on, the new table must map the running code, stack and all data in
/// use exactly as before; the TLB must be invalidated afterwards.
pub unsafe fn write_ttbr0(v: u32) {
    // SAFETY: forwarded contract.
    unsafe { Ttbr0::write_raw(v as usize) }
}

/// Translation Table Base Control Register (TRM §3.2.15).
pub fn read_ttbcr() -> u32 {
    Ttbcr::read_raw()
}

/// Writes TTBCR (TRM §3.2.15); 0 = TTBR0 translates all addresses, walks enabled.
///
/// # Safety
///
/// As [`write_ttbr0`]: the resulting translation must keep everything in use mapped.
pub unsafe fn write_ttbcr(v: u32) {
    // SAFETY: forwarded contract.
    unsafe { Ttbcr::write_raw(v as usize) }
}

/// Domain Access Control Register (TRM §3.2.16).
pub fn read_dacr() -> u32 {
    Dacr::read_raw()
}

/// Writes DACR (TRM §3.2.16): two bits per domain, 00 no access, 01 client, 11 manager.
///
/// # Safety
///
/// When the MMU is on, the domains of the running code and data must stay accessible.
pub unsafe fn write_dacr(v: u32) {
    // SAFETY: forwarded contract.
    unsafe { Dacr::write_raw(v as usize) }
}

/// Data Fault Status Register: status bits \[10,3:0\], domain \[7:4\],
/// write-not-read \[11\].
pub fn read_dfsr() -> u32 {
    Dfsr::read_raw()
}

/// Instruction Fault Status Register.
pub fn read_ifsr() -> u32 {
    Ifsr::read_raw()
}

/// Fault Address Register: the data abort's virtual address.
pub fn read_far() -> u32 {
    Far::read_raw()
}

/// Vector Base Address Register: where the exception vectors are (boot.S points it at
/// the kernel's vector table before anything can take an exception).
pub fn read_vbar() -> u32 {
    Vbar::read_raw()
}

/// Sleeps until an interrupt is pending (`c7,c0,4`; TRM §3.2.22). It wakes on a
/// pending interrupt even while CPSR.I is set, which makes "mask, check, wait,
/// unmask" free of lost wake-ups.
///
/// A DSB comes first, so every earlier memory access (a UART register write, a queue
/// index) has completed before the core stops: WFI may enter a low-power state, and
/// Linux's ARMv6 idle (`cpu_v6_do_idle`, arch/arm/mm/proc-v6.S) drains the write
/// buffer the same way.
pub fn wait_for_interrupt() {
    dsb();
    // SAFETY: WFI only stalls the core until an interrupt is pending.
    unsafe { Wfi::write_raw(0) }
}

/// Invalidates the entire instruction cache (and with it the branch target cache),
/// with the workaround for ARM1176 erratum 411920 ("Invalidate Entire Instruction
/// Cache operation can fail", present in the ARM1136, 1156 and 1176): with
/// interrupts, FIQs and imprecise aborts masked, the invalidate is issued four times
/// back to back, followed by eleven NOPs. This is the sequence Linux uses
/// (`v6_icache_inval_all`, arch/arm/mm/cache-v6.S, `CONFIG_ARM_ERRATA_411920`).
///
/// It is one `asm!` block rather than four [`SysRegWrite`] writes because the
/// workaround depends on the exact instruction sequence, with nothing in between.
/// Safe: instructions are fetched again from memory; nothing is lost.
pub fn invalidate_icache() {
    #[cfg(target_arch = "arm")]
    // SAFETY: invalidating the I-cache only causes refetches; CPSR is restored to its
    // value on entry (the mask bits and nothing else change in between).
    unsafe {
        asm!(
            "mrs {cpsr}, cpsr",
            "cpsid ifa",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "msr cpsr_cx, {cpsr}",
            "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop",
            cpsr = out(reg) _,
            zero = in(reg) 0u32,
            options(nostack)
        )
    };
    #[cfg(not(target_arch = "arm"))]
    for _ in 0..4 {
        host::write(Reg::InvalidateICache, 0);
    }
}

/// Cleans and invalidates the entire D-cache (`c7,c14,0`; TRM §3.2, *c7, Cache
/// operations*): dirty lines are written back first, so no data is lost.
pub fn clean_invalidate_dcache() {
    // SAFETY: write-back then invalidate keeps memory contents.
    unsafe { CleanInvalidateDCache::write_raw(0) }
}

/// Cleans (writes back) the D-cache line holding `mva` (`c7,c10,1`; TRM §3.2, *c7,
/// Cache operations*, MVA format: bits \[4:0\] ignored). A miss does nothing; `mva`
/// must be mapped or the operation may abort.
pub fn clean_dcache_line(mva: usize) {
    // SAFETY: a clean only writes back data, memory contents are unchanged.
    unsafe { CleanDCacheLine::write_raw(mva) }
}

/// Flushes the prefetch buffer (`c7,c5,4`, the ARMv6 ISB; TRM §3.2, *c7, Cache
/// operations*, "Flush operations"): later instructions are fetched after it, seeing
/// earlier CP15 changes.
pub fn prefetch_flush() {
    // SAFETY: a pipeline flush has no effect on memory.
    unsafe { PrefetchFlush::write_raw(0) }
}

/// Flushes the entire branch target cache (`c7,c5,6`; TRM §3.2, *c7, Cache
/// operations*, "Flush operations"), needed after a mapping change.
pub fn flush_btb() {
    // SAFETY: flushing branch predictions has no architectural effect on memory.
    unsafe { FlushBtb::write_raw(0) }
}

/// Data Synchronization Barrier (`c7,c10,4`; TRM §3.2, *c7, Cache operations*, and
/// chapter 6, *Explicit memory barriers*): completes all earlier memory accesses and
/// cache / TLB maintenance before any later instruction executes.
pub fn dsb() {
    // SAFETY: a barrier only orders.
    unsafe { Dsb::write_raw(0) }
}

/// Data Memory Barrier (`c7,c10,5`; TRM chapter 6, *Explicit memory barriers*): orders
/// earlier memory accesses before later ones. The peripheral barrier of the BCM2835
/// (ARM Peripherals §1.3), see [`crate::board::mmio::Bus::barrier`].
pub fn dmb() {
    // SAFETY: a barrier only orders.
    unsafe { Dmb::write_raw(0) }
}

/// Invalidates the entire unified TLB (`c8,c7,0`; TRM §3.2, *c8, TLB Operations
/// Register*). Always safe: entries are simply walked again.
pub fn invalidate_tlb() {
    // SAFETY: dropping TLB entries only causes new table walks.
    unsafe { InvalidateTlb::write_raw(0) }
}

/// Invalidates the unified TLB entry for `mva` (`c8,c7,1`; TRM §3.2, *c8, TLB
/// Operations Register*, MVA bits \[31:12\], ASID \[7:0\] = 0: global entries match any
/// ASID). For a section entry any address inside the MiB removes it.
pub fn invalidate_tlb_mva(mva: u32) {
    // SAFETY: dropping a TLB entry only causes a new table walk.
    unsafe { InvalidateTlbMva::write_raw((mva & !0xfff) as usize) }
}

/// Turns on the MMU with `table` as TTBR0, the L1 D- and I-caches and branch
/// prediction, in the order the ARM1176 TRM requires, and hands back the table as the
/// [`LiveTable`] through which all later changes go.
///
/// Sequence: clean + invalidate the D-cache (`c7,c14,0`: nothing dirty from the boot
/// path is lost, and the table words are in memory for the walker), invalidate the
/// I-cache with the erratum 411920 workaround ([`invalidate_icache`]) and flush the BTB
/// (`c7,c5,6`), invalidate the TLB (`c8,c7,0`), DSB; TTBCR = 0
/// (TTBR0 only), TTBR0 = table | [`TTBR_WALK_ATTRS`], DACR = [`DACR_DOMAIN0_CLIENT`],
/// prefetch flush; then SCTLR with M, C, I, Z, XP and U set and A, TR, FA clear (other
/// bits kept), and a prefetch flush so the following instructions run translated.
///
/// # Safety
///
/// - Call once, in a privileged mode, with the MMU off.
/// - `table` must map the running code, its stacks, the data in use, the exception
///   vectors and the devices in use identity (VA = PA) with RAM cacheable, as
///   [`TranslationTable::build_paged_boot_map`] does (the kernel's map: the first MiB in
///   pages, with its second-level table attached) with the right `ram_bytes`; its
///   address must be its physical address.
/// - From then on the table is changed only through the returned [`LiveTable`].
pub unsafe fn enable_mmu(table: &'static mut TranslationTable) -> LiveTable {
    clean_invalidate_dcache();
    invalidate_icache();
    flush_btb();
    invalidate_tlb();
    dsb();
    // SAFETY: the MMU is off (caller), so these take effect only when SCTLR.M is set
    // below, with a table the caller guarantees maps everything in use identity.
    unsafe {
        write_ttbcr(0);
        write_ttbr0(table.address() as u32 | TTBR_WALK_ATTRS);
        write_dacr(DACR_DOMAIN0_CLIENT);
    }
    prefetch_flush();
    let mut s = read_sctlr();
    s.set_m(true);
    s.set_c(true);
    s.set_i(true);
    s.set_z(true);
    s.set_xp(true);
    s.set_u(true);
    s.set_a(false);
    s.set_tr(false);
    s.set_fa(false);
    // SAFETY: identity map (caller) so execution continues at the next instruction;
    // caches were invalidated above and D-cache contents were cleaned first.
    unsafe { write_sctlr(s) };
    prefetch_flush();
    // SAFETY: `table` is now the table in TTBR0 and the MMU is on.
    unsafe { LiveTable::new_unchecked(table) }
}

/// MMU and cache state for the shell's `info` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuState {
    /// The Control Register.
    pub sctlr: Sctlr,
    /// TTBR0.
    pub ttbr0: u32,
    /// TTBCR.
    pub ttbcr: u32,
    /// DACR.
    pub dacr: u32,
}

impl MmuState {
    /// MMU on.
    pub fn mmu(&self) -> bool {
        self.sctlr.m()
    }
    /// L1 D-cache on.
    pub fn dcache(&self) -> bool {
        self.sctlr.c()
    }
    /// L1 I-cache on.
    pub fn icache(&self) -> bool {
        self.sctlr.i()
    }
    /// Branch prediction on.
    pub fn branch_prediction(&self) -> bool {
        self.sctlr.z()
    }
    /// Translation table base (TTBR0 without the walk attribute bits).
    pub fn table_base(&self) -> u32 {
        self.ttbr0 & !0x3fff
    }
}

impl fmt::Display for MmuState {
    /// `mmu=on dcache=on icache=on bpred=on xp=1 u=1 a=0 ttbr0=0x00004008 dacr=0x00000001`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        let s = self.sctlr;
        write!(
            f,
            "mmu={} dcache={} icache={} bpred={} xp={} u={} a={} ttbr0={:#010x} dacr={:#010x}",
            on(s.m()),
            on(s.c()),
            on(s.i()),
            on(s.z()),
            s.xp() as u8,
            s.u() as u8,
            s.a() as u8,
            self.ttbr0,
            self.dacr
        )
    }
}

/// Reads the MMU and cache state (all reads, no side effects).
pub fn mmu_state() -> MmuState {
    MmuState {
        sctlr: read_sctlr(),
        ttbr0: read_ttbr0(),
        ttbcr: read_ttbcr(),
        dacr: read_dacr(),
    }
}

/// The host stand-in for CP15, behind [`SysRegRead::read_raw`] and
/// [`SysRegWrite::write_raw`]: reset values, and under `cfg(test)` a per-thread record
/// of every write and operation, in the vocabulary of [`Op`].
#[cfg(not(target_arch = "arm"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod host {
    pub use super::Reg;

    /// A recorded write or maintenance operation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Op {
        Write(Reg, u32),
        InvalidateICache,
        CleanInvalidateDCache,
        CleanDLine(usize),
        PrefetchFlush,
        FlushBtb,
        Dsb,
        Dmb,
        Wfi,
        InvalidateTlb,
        InvalidateTlbMva(u32),
    }

    impl Op {
        /// A write of `v` to `r` as the recorder names it: operations by name (with
        /// their address operand), registers as `Write`.
        fn of(r: Reg, v: usize) -> Op {
            match r {
                Reg::InvalidateICache => Op::InvalidateICache,
                Reg::CleanInvalidateDCache => Op::CleanInvalidateDCache,
                Reg::CleanDCacheLine => Op::CleanDLine(v),
                Reg::PrefetchFlush => Op::PrefetchFlush,
                Reg::FlushBtb => Op::FlushBtb,
                Reg::Dsb => Op::Dsb,
                Reg::Dmb => Op::Dmb,
                Reg::Wfi => Op::Wfi,
                Reg::InvalidateTlb => Op::InvalidateTlb,
                Reg::InvalidateTlbMva => Op::InvalidateTlbMva(v as u32),
                _ => Op::Write(r, v as u32),
            }
        }
    }

    /// ARM1176JZF-S r0p7 values: MIDR, Cache Type, SCTLR at reset.
    pub const fn reset(r: Reg) -> u32 {
        match r {
            Reg::Midr => 0x410F_B767,
            Reg::CacheType => 0x1D15_2152,
            Reg::Sctlr => 0x0005_0078,
            _ => 0,
        }
    }

    #[cfg(test)]
    std::thread_local! {
        static REGS: core::cell::RefCell<std::vec::Vec<(Reg, u32)>> =
            const { core::cell::RefCell::new(std::vec::Vec::new()) };
        static LOG: core::cell::RefCell<std::vec::Vec<Op>> =
            const { core::cell::RefCell::new(std::vec::Vec::new()) };
    }

    pub fn read(r: Reg) -> u32 {
        #[cfg(test)]
        if let Some(v) = REGS.with(|m| m.borrow().iter().rev().find(|(k, _)| *k == r).map(|e| e.1))
        {
            return v;
        }
        reset(r)
    }

    pub fn write(r: Reg, v: usize) {
        let op = Op::of(r, v);
        #[cfg(test)]
        {
            if let Op::Write(..) = op {
                REGS.with(|m| m.borrow_mut().push((r, v as u32)));
            }
            LOG.with(|l| l.borrow_mut().push(op));
        }
        #[cfg(not(test))]
        let _ = op;
    }

    /// Takes this thread's record of operations.
    #[cfg(test)]
    pub fn take_log() -> std::vec::Vec<Op> {
        LOG.with(|l| core::mem::take(&mut *l.borrow_mut()))
    }

    /// Sets a fake register (for fault-register tests).
    #[cfg(test)]
    pub fn set(r: Reg, v: u32) {
        REGS.with(|m| m.borrow_mut().push((r, v)));
    }

    /// Resets this thread's registers and record.
    #[cfg(test)]
    pub fn reset_all() {
        REGS.with(|m| m.borrow_mut().clear());
        LOG.with(|l| l.borrow_mut().clear());
    }
}

#[cfg(all(test, not(target_arch = "arm")))]
mod tests {
    use super::host::{self, Op, Reg};
    use super::*;
    use std::boxed::Box;
    use std::format;
    use std::vec;

    #[test]
    fn coordinates_match_the_trm() {
        // The encodings the module table and the TRM give, checked where a typo in a
        // coordinate would silently do a different operation.
        fn c<R: SysReg>() -> (u32, u32, u32, u32) {
            (R::OP1, R::CRN, R::CRM, R::OP2)
        }
        assert_eq!(c::<Midr>(), (0, 0, 0, 0));
        assert_eq!(c::<CacheType>(), (0, 0, 0, 1));
        assert_eq!(c::<Sctlr>(), (0, 1, 0, 0));
        assert_eq!(c::<Ttbr0>(), (0, 2, 0, 0));
        assert_eq!(c::<Ttbcr>(), (0, 2, 0, 2));
        assert_eq!(c::<Dacr>(), (0, 3, 0, 0));
        assert_eq!(
            (c::<Dfsr>(), c::<Ifsr>(), c::<Far>()),
            ((0, 5, 0, 0), (0, 5, 0, 1), (0, 6, 0, 0))
        );
        assert_eq!(c::<Vbar>(), (0, 12, 0, 0));
        assert_eq!(c::<Wfi>(), (0, 7, 0, 4));
        assert_eq!(c::<InvalidateICache>(), (0, 7, 5, 0));
        assert_eq!(c::<PrefetchFlush>(), (0, 7, 5, 4));
        assert_eq!(c::<FlushBtb>(), (0, 7, 5, 6));
        assert_eq!(c::<CleanDCacheLine>(), (0, 7, 10, 1));
        assert_eq!(c::<Dsb>(), (0, 7, 10, 4));
        assert_eq!(c::<Dmb>(), (0, 7, 10, 5));
        assert_eq!(c::<CleanInvalidateDCache>(), (0, 7, 14, 0));
        assert_eq!(c::<InvalidateTlb>(), (0, 8, 7, 0));
        assert_eq!(c::<InvalidateTlbMva>(), (0, 8, 7, 1));
    }

    #[test]
    fn bcm2835_cache_type_decodes() {
        host::reset_all();
        let ct = read_cache_type();
        let d = ct.dcache();
        assert_eq!(
            (d.bytes, d.ways, d.line, d.way_bytes(), d.colouring),
            (16384, 4, 32, 4096, false)
        );
        assert_eq!(ct.icache(), d);
        assert!(ct.separate());
        assert_eq!(ct.ctype(), 0b1110);
        assert_eq!(
            format!("{ct}"),
            "d-cache 16 KiB 4-way 32 B lines, 4096 B/way; i-cache 16 KiB 4-way 32 B lines, 4096 B/way"
        );
        // A 32 KiB 4-way D-cache (8 KiB ways) sets P: page colouring.
        let big = CacheType((0x1D152152 & !(0xF << 18)) | (6 << 18) | (1 << 23));
        let d = big.dcache();
        assert_eq!((d.bytes, d.way_bytes(), d.colouring), (32768, 8192, true));
        assert_eq!(CacheType(0x1D152152 | (1 << 14)).dcache().bytes, 24576);
    }

    #[test]
    fn register_reads_have_reset_values() {
        host::reset_all();
        assert_eq!(read_midr(), 0x410F_B767);
        assert!(!mmu_state().mmu());
        host::set(Reg::Far, 0xdead_0000);
        assert_eq!(read_far(), 0xdead_0000);
        assert_eq!((read_dfsr(), read_ifsr()), (0, 0));
    }

    #[test]
    fn enable_mmu_follows_the_trm_order() {
        host::reset_all();
        let table: &'static mut TranslationTable = Box::leak(Box::new(TranslationTable::new()));
        table.build_boot_map(256 << 20).unwrap();
        let base = table.address() as u32;
        // SAFETY: host: the cp15 operations are recorded, nothing is switched.
        let live = unsafe { enable_mmu(table) };
        assert_eq!(live.address() as u32, base);
        let log = host::take_log();
        let sctlr = match log[12] {
            Op::Write(Reg::Sctlr, v) => Sctlr(v),
            ref o => panic!("expected the SCTLR write, got {o:?}"),
        };
        assert_eq!(
            log,
            vec![
                Op::CleanInvalidateDCache,
                // Erratum 411920: four I-cache invalidates back to back.
                Op::InvalidateICache,
                Op::InvalidateICache,
                Op::InvalidateICache,
                Op::InvalidateICache,
                Op::FlushBtb,
                Op::InvalidateTlb,
                Op::Dsb,
                Op::Write(Reg::Ttbcr, 0),
                Op::Write(Reg::Ttbr0, base | 0x8),
                Op::Write(Reg::Dacr, 1),
                Op::PrefetchFlush,
                Op::Write(Reg::Sctlr, sctlr.0),
                Op::PrefetchFlush,
            ]
        );
        assert!(sctlr.m() && sctlr.c() && sctlr.i() && sctlr.z() && sctlr.xp() && sctlr.u());
        assert!(!sctlr.a() && !sctlr.tr() && !sctlr.fa());
        assert_eq!(
            sctlr.0,
            0x0005_0078 | 1 | 4 | (1 << 11) | (1 << 12) | (1 << 22) | (1 << 23)
        );
        let st = mmu_state();
        assert!(st.mmu() && st.dcache() && st.icache() && st.branch_prediction());
        assert_eq!(st.table_base(), base);
        assert_eq!(
            format!("{st}"),
            format!(
                "mmu=on dcache=on icache=on bpred=on xp=1 u=1 a=0 ttbr0={:#010x} dacr=0x00000001",
                base | 8
            )
        );
    }

    #[test]
    fn wfi_is_preceded_by_a_dsb() {
        host::reset_all();
        wait_for_interrupt();
        assert_eq!(host::take_log(), vec![Op::Dsb, Op::Wfi]);
    }

    #[test]
    fn tlb_mva_drops_the_low_bits() {
        host::reset_all();
        invalidate_tlb_mva(0x8012_3456);
        assert_eq!(host::take_log(), vec![Op::InvalidateTlbMva(0x8012_3000)]);
    }

    #[test]
    fn dcache_line_clean_keeps_the_whole_host_address() {
        host::reset_all();
        let a = 0x7f12_3456_7890usize;
        clean_dcache_line(a);
        assert_eq!(host::take_log(), vec![Op::CleanDLine(a)]);
    }
}
