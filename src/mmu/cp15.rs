//! CP15 system-control operations of the ARM1176JZF-S, one small function per operation.
//!
//! References are to the ARM1176JZF-S Technical Reference Manual, ARM DDI 0301H
//! ("TRM"), chapter 3 *System Control Coprocessor* (register descriptions in §3.2) and
//! chapter 6 *Memory Management Unit*.
//!
//! | operation                         | encoding                | function                    |
//! |-----------------------------------|-------------------------|-----------------------------|
//! | Main ID                           | `mrc p15,0,r,c0,c0,0`   | [`read_midr`]               |
//! | Cache Type                        | `mrc p15,0,r,c0,c0,1`   | [`read_cache_type`]         |
//! | Control (SCTLR)                   | `c1,c0,0`               | [`read_sctlr`], [`write_sctlr`] |
//! | Translation Table Base 0          | `c2,c0,0`               | [`read_ttbr0`], [`write_ttbr0`] |
//! | Translation Table Base Control    | `c2,c0,2`               | [`read_ttbcr`], [`write_ttbcr`] |
//! | Domain Access Control             | `c3,c0,0`               | [`read_dacr`], [`write_dacr`] |
//! | Data / Instruction Fault Status   | `c5,c0,0` / `c5,c0,1`   | [`read_dfsr`], [`read_ifsr`] |
//! | Fault Address                     | `c6,c0,0`               | [`read_far`]                |
//! | Invalidate both caches (+ BTB)    | `mcr p15,0,r,c7,c7,0`   | [`invalidate_both_caches`]  |
//! | Clean + invalidate entire D-cache | `c7,c14,0`              | [`clean_invalidate_dcache`] |
//! | Clean D-cache line by MVA         | `c7,c10,1`              | [`clean_dcache_line`]       |
//! | Flush prefetch buffer             | `c7,c5,4`               | [`prefetch_flush`]          |
//! | Flush entire branch target cache  | `c7,c5,6`               | [`flush_btb`]               |
//! | Data Synchronization Barrier      | `c7,c10,4`              | [`dsb`]                     |
//! | Data Memory Barrier               | `c7,c10,5`              | [`dmb`]                     |
//! | Invalidate entire unified TLB     | `c8,c7,0`               | [`invalidate_tlb`]          |
//! | Invalidate TLB entry by MVA       | `c8,c7,1`               | [`invalidate_tlb_mva`]      |
//!
//! Reading a register is safe; writing one that changes translation, caching or
//! permissions is `unsafe`. Maintenance operations that cannot lose data are safe.
//!
//! On other architectures (host builds and tests) every operation is a no-op and a
//! register read returns the ARM1176 reset value; under `cfg(test)` a per-thread fake
//! register file records writes and operations so tests can check sequences.

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

/// Main ID Register (TRM §3.2.2, *c0, Main ID Register*): implementer, variant,
/// architecture, part number, revision. `0x410FB767` on the BCM2835 (ARM1176JZF-S r0p7).
pub fn read_midr() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading the read-only Main ID Register has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c0, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    host::read(host::Reg::Midr)
}

/// Cache Type Register (TRM §3.2.3). `0x1D152152` on the BCM2835: separate 16 KiB
/// 4-way caches with 32-byte lines, no page colouring restriction.
pub fn read_cache_type() -> CacheType {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading the read-only Cache Type Register has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c0, c0, 1", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        CacheType(v)
    }
    #[cfg(not(target_arch = "arm"))]
    CacheType(host::read(host::Reg::CacheType))
}

/// Control Register (TRM §3.2.7).
pub fn read_sctlr() -> Sctlr {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading the Control Register has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c1, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        Sctlr(v)
    }
    #[cfg(not(target_arch = "arm"))]
    Sctlr(host::read(host::Reg::Sctlr))
}

/// Writes the Control Register (TRM §3.2.7). Follow it with [`prefetch_flush`].
///
/// # Safety
///
/// The new value switches the MMU, caches, alignment checking and vectors: the code
/// after it, its stack and data must stay reachable at the same addresses with the
/// same contents (identity mapped, caches cleaned or invalidated as needed).
pub unsafe fn write_sctlr(v: Sctlr) {
    #[cfg(target_arch = "arm")]
    // SAFETY: the caller guarantees the new configuration keeps the running code, its
    // stack and data valid; no `nomem`: this orders memory accesses around it.
    unsafe {
        asm!("mcr p15, 0, {}, c1, c0, 0", in(reg) v.0, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::write(host::Reg::Sctlr, v.0);
}

/// Translation Table Base Register 0 (TRM §3.2.13).
pub fn read_ttbr0() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading TTBR0 has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c2, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    host::read(host::Reg::Ttbr0)
}

/// Writes TTBR0 (TRM §3.2.13): table base (16 KiB aligned with TTBCR.N = 0) | walk
/// attributes.
///
/// # Safety
///
/// When the MMU is on, the new table must map the running code, stack and all data in
/// use exactly as before; the TLB must be invalidated afterwards.
pub unsafe fn write_ttbr0(v: u32) {
    #[cfg(target_arch = "arm")]
    // SAFETY: the caller guarantees the new table keeps everything in use mapped.
    unsafe {
        asm!("mcr p15, 0, {}, c2, c0, 0", in(reg) v, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::write(host::Reg::Ttbr0, v);
}

/// Translation Table Base Control Register (TRM §3.2.15).
pub fn read_ttbcr() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading TTBCR has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c2, c0, 2", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    host::read(host::Reg::Ttbcr)
}

/// Writes TTBCR (TRM §3.2.15); 0 = TTBR0 translates all addresses, walks enabled.
///
/// # Safety
///
/// As [`write_ttbr0`]: the resulting translation must keep everything in use mapped.
pub unsafe fn write_ttbcr(v: u32) {
    #[cfg(target_arch = "arm")]
    // SAFETY: the caller guarantees the resulting translation keeps everything mapped.
    unsafe {
        asm!("mcr p15, 0, {}, c2, c0, 2", in(reg) v, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::write(host::Reg::Ttbcr, v);
}

/// Domain Access Control Register (TRM §3.2.16).
pub fn read_dacr() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading DACR has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c3, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    host::read(host::Reg::Dacr)
}

/// Writes DACR (TRM §3.2.16): two bits per domain, 00 no access, 01 client, 11 manager.
///
/// # Safety
///
/// When the MMU is on, the domains of the running code and data must stay accessible.
pub unsafe fn write_dacr(v: u32) {
    #[cfg(target_arch = "arm")]
    // SAFETY: the caller guarantees the domains in use stay accessible.
    unsafe {
        asm!("mcr p15, 0, {}, c3, c0, 0", in(reg) v, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::write(host::Reg::Dacr, v);
}

/// Data Fault Status Register (TRM §3.2, *c5, Data Fault Status Register*): status
/// bits \[10,3:0\], domain \[7:4\], write-not-read \[11\].
pub fn read_dfsr() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading DFSR has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c5, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    host::read(host::Reg::Dfsr)
}

/// Instruction Fault Status Register (TRM §3.2, *c5, Instruction Fault Status Register*).
pub fn read_ifsr() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading IFSR has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c5, c0, 1", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    host::read(host::Reg::Ifsr)
}

/// Fault Address Register (TRM §3.2, *c6, Fault Address Register*): the data abort's
/// virtual address.
pub fn read_far() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: reading FAR has no side effects.
        unsafe {
            asm!("mrc p15, 0, {}, c6, c0, 0", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    host::read(host::Reg::Far)
}

/// Invalidates the entire I- and D-caches and flushes the branch target cache
/// (`c7,c7,0`; TRM §3.2, *c7, Cache operations*, table "Cache operation functions").
///
/// (ARM1176 erratum 411920, an entire-I-cache invalidate that can miss lines, matters
/// when the I-cache holds stale code; at boot it holds nothing the kernel relies on.)
///
/// # Safety
///
/// Dirty D-cache lines are discarded, not written back: clean the D-cache first
/// ([`clean_invalidate_dcache`]) unless it is off and was never on.
pub unsafe fn invalidate_both_caches() {
    #[cfg(target_arch = "arm")]
    // SAFETY: the caller guarantees no dirty line holds data still needed.
    unsafe {
        asm!("mcr p15, 0, {}, c7, c7, 0", in(reg) 0u32, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::InvalidateBothCaches);
}

/// Cleans and invalidates the entire D-cache (`c7,c14,0`; TRM §3.2, *c7, Cache
/// operations*): dirty lines are written back first, so no data is lost.
pub fn clean_invalidate_dcache() {
    #[cfg(target_arch = "arm")]
    // SAFETY: write-back then invalidate keeps memory contents; no `nomem` so the
    // compiler does not move memory accesses across it.
    unsafe {
        asm!("mcr p15, 0, {}, c7, c14, 0", in(reg) 0u32, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::CleanInvalidateDCache);
}

/// Cleans (writes back) the D-cache line holding `mva` (`c7,c10,1`; TRM §3.2, *c7,
/// Cache operations*, MVA format: bits \[4:0\] ignored). A miss does nothing; `mva`
/// must be mapped or the operation may abort.
pub fn clean_dcache_line(mva: usize) {
    #[cfg(target_arch = "arm")]
    // SAFETY: a clean only writes back data, memory contents are unchanged.
    unsafe {
        asm!("mcr p15, 0, {}, c7, c10, 1", in(reg) mva, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::CleanDLine(mva));
}

/// Flushes the prefetch buffer (`c7,c5,4`, the ARMv6 ISB; TRM §3.2, *c7, Cache
/// operations*, "Flush operations"): later instructions are fetched after it, seeing
/// earlier CP15 changes.
pub fn prefetch_flush() {
    #[cfg(target_arch = "arm")]
    // SAFETY: a pipeline flush has no effect on memory.
    unsafe {
        asm!("mcr p15, 0, {}, c7, c5, 4", in(reg) 0u32, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::PrefetchFlush);
}

/// Flushes the entire branch target cache (`c7,c5,6`; TRM §3.2, *c7, Cache
/// operations*, "Flush operations"), needed after a mapping change.
pub fn flush_btb() {
    #[cfg(target_arch = "arm")]
    // SAFETY: flushing branch predictions has no architectural effect on memory.
    unsafe {
        asm!("mcr p15, 0, {}, c7, c5, 6", in(reg) 0u32, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::FlushBtb);
}

/// Data Synchronization Barrier (`c7,c10,4`; TRM §3.2, *c7, Cache operations*, and
/// chapter 6, *Explicit memory barriers*): completes all earlier memory accesses and
/// cache / TLB maintenance before any later instruction executes.
pub fn dsb() {
    #[cfg(target_arch = "arm")]
    // SAFETY: a barrier only orders; no `nomem` so it is a compiler barrier too.
    unsafe {
        asm!("mcr p15, 0, {}, c7, c10, 4", in(reg) 0u32, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::Dsb);
}

/// Data Memory Barrier (`c7,c10,5`; TRM chapter 6, *Explicit memory barriers*): orders
/// earlier memory accesses before later ones.
pub fn dmb() {
    #[cfg(target_arch = "arm")]
    // SAFETY: a barrier only orders; no `nomem` so it is a compiler barrier too.
    unsafe {
        asm!("mcr p15, 0, {}, c7, c10, 5", in(reg) 0u32, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::Dmb);
}

/// Invalidates the entire unified TLB (`c8,c7,0`; TRM §3.2, *c8, TLB Operations
/// Register*). Always safe: entries are simply walked again.
pub fn invalidate_tlb() {
    #[cfg(target_arch = "arm")]
    // SAFETY: dropping TLB entries only causes new table walks.
    unsafe {
        asm!("mcr p15, 0, {}, c8, c7, 0", in(reg) 0u32, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::InvalidateTlb);
}

/// Invalidates the unified TLB entry for `mva` (`c8,c7,1`; TRM §3.2, *c8, TLB
/// Operations Register*, MVA bits \[31:12\], ASID \[7:0\] = 0: global entries match any
/// ASID). For a section entry any address inside the MiB removes it.
pub fn invalidate_tlb_mva(mva: u32) {
    let v = mva & !0xfff;
    #[cfg(target_arch = "arm")]
    // SAFETY: dropping a TLB entry only causes a new table walk.
    unsafe {
        asm!("mcr p15, 0, {}, c8, c7, 1", in(reg) v, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "arm"))]
    host::op(host::Op::InvalidateTlbMva(v));
}

/// Turns on the MMU with `table` as TTBR0, the L1 D- and I-caches and branch
/// prediction, in the order the ARM1176 TRM requires, and hands back the table as the
/// [`LiveTable`] through which all later changes go.
///
/// Sequence: clean + invalidate the D-cache (`c7,c14,0`: nothing dirty from the boot
/// path is lost, and the table words are in memory for the walker), invalidate both
/// caches and the BTB (`c7,c7,0`), invalidate the TLB (`c8,c7,0`), DSB; TTBCR = 0
/// (TTBR0 only), TTBR0 = table | [`TTBR_WALK_ATTRS`], DACR = [`DACR_DOMAIN0_CLIENT`],
/// prefetch flush; then SCTLR with M, C, I, Z, XP and U set and A, TR, FA clear (other
/// bits kept), and a prefetch flush so the following instructions run translated.
///
/// # Safety
///
/// - Call once, in a privileged mode, with the MMU off.
/// - `table` must map the running code, its stacks, the data in use, the exception
///   vectors and the devices in use identity (VA = PA) with RAM cacheable, as
///   [`TranslationTable::build_boot_map`] does with the right `ram_bytes`; its address
///   must be its physical address.
/// - From then on the table is changed only through the returned [`LiveTable`].
pub unsafe fn enable_mmu(table: &'static mut TranslationTable) -> LiveTable {
    clean_invalidate_dcache();
    // SAFETY: the D-cache was cleaned just above, so invalidating it loses nothing.
    unsafe { invalidate_both_caches() };
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

/// The host stand-in for CP15: reset values, and under `cfg(test)` a per-thread record.
#[cfg(not(target_arch = "arm"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod host {
    /// A fake CP15 register.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    }

    /// A recorded write or maintenance operation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Op {
        Write(Reg, u32),
        InvalidateBothCaches,
        CleanInvalidateDCache,
        CleanDLine(usize),
        PrefetchFlush,
        FlushBtb,
        Dsb,
        Dmb,
        InvalidateTlb,
        InvalidateTlbMva(u32),
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

    pub fn write(r: Reg, v: u32) {
        #[cfg(test)]
        REGS.with(|m| m.borrow_mut().push((r, v)));
        op(Op::Write(r, v));
    }

    pub fn op(o: Op) {
        #[cfg(test)]
        LOG.with(|l| l.borrow_mut().push(o));
        #[cfg(not(test))]
        let _ = o;
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
        let sctlr = match log[8] {
            Op::Write(Reg::Sctlr, v) => Sctlr(v),
            ref o => panic!("expected the SCTLR write, got {o:?}"),
        };
        assert_eq!(
            log,
            vec![
                Op::CleanInvalidateDCache,
                Op::InvalidateBothCaches,
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
    fn tlb_mva_drops_the_low_bits() {
        host::reset_all();
        invalidate_tlb_mva(0x8012_3456);
        assert_eq!(host::take_log(), vec![Op::InvalidateTlbMva(0x8012_3000)]);
    }
}
