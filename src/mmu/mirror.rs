//! The mirror: K contiguous physical MiB mapped twice back to back.
//!
//! ```text
//!  virtual  window.base        +K MiB              +2K MiB        +2K+1 MiB
//!           |  first half      |  second half      |  guard (fault) |
//!           +------------------+-------------------+----------------+
//!                   \                  /
//!  physical          [ store.base .. store.base + K MiB )   (also identity mapped)
//! ```
//!
//! [`mirror_create`] takes the store from a [`SectionAllocator`] and the window from a
//! [`WindowAllocator`] (both from `0x8000_0000` up, so several rings coexist), maps both
//! halves normal write-back write-allocate, privileged RW, execute never (the same
//! memory type as the identity map of RAM, so no mismatched-attribute aliases), zeroes
//! the store and runs the rings' mirror self-test ([`crate::vmcirc::self_test`]: a
//! byte written through one half reads back through the other, at both ends).
//! [`mirror_destroy`] unmaps the window and returns both ranges.
//!
//! # Why the aliases stay coherent on the ARM1176
//!
//! One physical section is reachable at three virtual addresses: the identity map
//! (`pa`), the first half (`w + off`) and the second half (`w + K MiB + off`). A cache
//! keeps them coherent if all aliases of a byte look up the *same* cache line.
//!
//! The ARM1176 L1 caches are virtually indexed, physically tagged (VIPT). On the
//! BCM2835 each is 16 KiB, 4-way, 32-byte lines (Cache Type Register `0x1D152152`,
//! [`super::CacheType`]), so one way is 16 KiB / 4 = 4 KiB: the index uses VA bits
//! \[11:5\], all inside the 4 KiB page offset, where virtual and physical addresses
//! agree. Every alias of a byte therefore selects the same set, and the physical tag
//! then finds the one line holding it: the cache behaves as if physically indexed, and
//! there is never a second copy to go stale. The TRM says the same through the Cache
//! Type Register's P bit (TRM §3.2.3, and chapter 6 on page table restrictions): P = 0
//! for caches whose ways are at most 4 KiB, no page colouring restriction.
//!
//! Sections give a wider margin still: every alias here is section aligned, so aliases
//! of a byte agree in VA bits \[19:0\], i.e. in every index bit of any cache whose way is
//! at most 1 MiB. Even an ARM1176 built with 32 or 64 KiB caches (8 or 16 KiB ways,
//! P = 1, colouring needed for 4 KiB pages) keeps section aliases coherent.
//!
//! What would change on a core with aliasing caches:
//!
//! - VIPT with ways above 4 KiB (ARMv6 with P = 1): aliases must be "coloured", equal
//!   modulo the way size. Section mirrors already are; a page-granular mirror would need
//!   a capacity that is a multiple of the way size (so `i` and `i + N` share colour), or
//!   the Linux ARMv6 approach: restrict the cache to 16 KiB (Auxiliary Control CZ) or
//!   map shared aliases uncached.
//! - VIVT caches (ARMv5 and earlier, e.g. ARM926): the two halves occupy different
//!   lines. The mirror would have to be mapped non-cacheable ([`super::Attrs::normal_nc`])
//!   or every switch from writing through one alias to reading through another would
//!   need an explicit clean (and invalidate) of the written range, e.g. on every ring
//!   wrap, plus a full clean on context switch.
//! - Instruction fetches: irrelevant here, the window is XN.
//!
//! Freeing a store needs no alias maintenance either (lines are physically tagged and
//! stay correct for the next owner); [`mirror_destroy`] still cleans and invalidates
//! the D-cache so a store reused non-cacheably or by DMA finds its data in memory.

use super::cp15;
use super::{
    Attrs, LiveTable, MmuError, PhysSections, SectionAllocator, VirtWindow, WindowAllocator,
    SECTION_SHIFT,
};

/// Attributes of both window halves: like RAM (normal WB-WA, privileged RW), not
/// executable.
pub const MIRROR_ATTRS: Attrs = Attrs::normal_wb().execute_never();

/// K physical MiB mapped twice back to back; the Pi backend of
/// [`crate::vmcirc::Mirror`].
///
/// Not `Clone`: the value owns the store and the window until it is given to
/// [`mirror_destroy`]. Dropping it instead leaks both (safe: they are never reused).
#[derive(Debug, PartialEq, Eq)]
pub struct SectionMirror {
    store: PhysSections,
    window: VirtWindow,
}

impl SectionMirror {
    /// Virtual address of the window (the first half).
    pub fn window_va(&self) -> u32 {
        self.window.base()
    }

    /// Virtual address of the second half (`window_va + capacity`).
    pub fn second_half_va(&self) -> u32 {
        self.window.second_half()
    }

    /// Virtual address of the unmapped guard section after the window.
    pub fn guard_va(&self) -> u32 {
        self.window.guard()
    }

    /// Physical address of the store (identity mapped as well).
    pub fn store_pa(&self) -> u32 {
        self.store.base()
    }

    /// Size of the store in MiB.
    pub fn mib(&self) -> u32 {
        self.store.sections()
    }

    /// Size of the store in bytes (the ring's capacity N).
    pub fn capacity_bytes(&self) -> usize {
        self.store.bytes()
    }
}

// SAFETY: `mirror_create` returns a `SectionMirror` only after mapping both halves of
// its window to its store in the live table (checked by a write/read-back self-test)
// and zeroing the store; the store and window are owned by this value (allocator
// tokens) and stay mapped until `mirror_destroy` consumes it. The window is in the
// kernel's address space, not inside the value, so moves do not affect it. K <= 512 MiB
// so 2N fits in isize. base/capacity are fixed fields.
#[cfg(target_arch = "arm")]
unsafe impl crate::vmcirc::Mirror for SectionMirror {
    fn base(&self) -> *mut u8 {
        self.window.base() as usize as *mut u8
    }

    fn capacity(&self) -> usize {
        self.store.bytes()
    }
}

/// Creates a mirror of `mib` MiB: allocates the store and a window, maps both halves in
/// the live table (with the TLB maintenance of [`LiveTable`]), zeroes the store and
/// self-tests the aliasing. On failure everything taken is given back.
///
/// Errors: [`MmuError::ZeroSize`], [`MmuError::OutOfPhysicalMemory`],
/// [`MmuError::OutOfVirtualSpace`], [`MmuError::AlreadyMapped`] (something else mapped
/// inside the window range), [`MmuError::MirrorSelfTest`].
///
/// On a non-ARM host only the table changes (and the maintenance is recorded); the
/// store is not touched and there is no `Mirror` impl, since nothing backs the window.
pub fn mirror_create(
    table: &mut LiveTable,
    sections: &mut SectionAllocator,
    windows: &mut WindowAllocator,
    mib: u32,
) -> Result<SectionMirror, MmuError> {
    if mib == 0 {
        return Err(MmuError::ZeroSize);
    }
    let store = sections.alloc(mib)?;
    let window = match windows.alloc(mib) {
        Ok(w) => w,
        Err(e) => {
            let freed = sections.free(store);
            debug_assert!(freed.is_ok());
            return Err(e);
        }
    };
    let mirror = SectionMirror { store, window };
    if let Err(e) = map_window(table, &mirror) {
        give_back(sections, windows, mirror);
        return Err(e);
    }
    #[cfg(target_arch = "arm")]
    if let Err(e) = zero_and_self_test(&mirror) {
        // SAFETY: the window was mapped just above for this mirror only and nothing
        // else has seen its address.
        let unmapped = unsafe { table.unmap_sections(mirror.window_va(), 2 * mirror.mib()) };
        debug_assert!(unmapped.is_ok());
        give_back(sections, windows, mirror);
        return Err(e);
    }
    Ok(mirror)
}

/// Maps both halves of a new mirror's window; all or nothing.
fn map_window(table: &mut LiveTable, m: &SectionMirror) -> Result<(), MmuError> {
    let (va, k) = (m.window_va(), m.mib());
    let reserved = m.window.reserved_sections();
    if !table.is_unmapped(va, reserved) {
        let i = (0..reserved)
            .find(|&i| !table.is_unmapped(va + (i << SECTION_SHIFT), 1))
            .unwrap_or(0);
        return Err(MmuError::AlreadyMapped {
            va: va + (i << SECTION_SHIFT),
        });
    }
    // SAFETY: the store is RAM that the section allocator gives this mirror alone
    // (its constructor's contract) and is mapped with the same memory type as the
    // identity map of RAM; the window is reserved for this mirror and unmapped.
    unsafe {
        table.map_sections(va, m.store_pa(), k, MIRROR_ATTRS)?;
        if let Err(e) = table.map_sections(m.second_half_va(), m.store_pa(), k, MIRROR_ATTRS) {
            let undone = table.unmap_sections(va, k);
            debug_assert!(undone.is_ok());
            return Err(e);
        }
    }
    Ok(())
}

/// Zeroes the store through the first half, then checks the aliasing both ways.
#[cfg(target_arch = "arm")]
fn zero_and_self_test(m: &SectionMirror) -> Result<(), MmuError> {
    let n = m.capacity_bytes();
    let base = m.window_va() as usize as *mut u8;
    // SAFETY: [base, base + 2n) was just mapped read/write to the store, which this
    // mirror owns exclusively; nothing else holds a reference into it.
    unsafe { core::ptr::write_bytes(base, 0, n) };
    // SAFETY: as above; 2n <= 1 GiB fits in isize.
    unsafe { crate::vmcirc::self_test(base, n, crate::vmcirc::Probe::Ends) }.map_err(|f| {
        MmuError::MirrorSelfTest {
            va: m.window_va().wrapping_add(f.read_at as u32),
        }
    })
}

fn give_back(sections: &mut SectionAllocator, windows: &mut WindowAllocator, m: SectionMirror) {
    let s = sections.free(m.store);
    let w = windows.free(m.window);
    debug_assert!(s.is_ok() && w.is_ok());
}

/// Destroys a mirror: unmaps both halves (with the TLB maintenance), cleans and
/// invalidates the D-cache, and returns the store and the window to their allocators.
///
/// Everything is checked first (the allocators handed out this store and window, and
/// the table still maps the window to the store); on error nothing has changed and the
/// mirror is handed back with the error.
pub fn mirror_destroy(
    table: &mut LiveTable,
    sections: &mut SectionAllocator,
    windows: &mut WindowAllocator,
    mirror: SectionMirror,
) -> Result<(), (MmuError, SectionMirror)> {
    if !sections.owns(&mirror.store) || !windows.owns(&mirror.window) {
        return Err((MmuError::NotAllocated, mirror));
    }
    let k = mirror.mib();
    for half in [mirror.window_va(), mirror.second_half_va()] {
        for i in 0..k {
            let va = half + (i << SECTION_SHIFT);
            let expected = mirror.store_pa() + (i << SECTION_SHIFT);
            if table.section(va).map(|d| (d.base(), d.attrs())) != Some((expected, MIRROR_ATTRS)) {
                return Err((MmuError::MappingMismatch { va }, mirror));
            }
        }
    }
    // SAFETY: the mirror is consumed here, so no ring (and no borrow of one) uses the
    // window any more; the window holds nothing else.
    let unmapped = unsafe { table.unmap_sections(mirror.window_va(), 2 * k) };
    if let Err(e) = unmapped {
        return Err((e, mirror));
    }
    cp15::clean_invalidate_dcache();
    cp15::dsb();
    give_back(sections, windows, mirror);
    Ok(())
}

#[cfg(all(test, not(target_arch = "arm")))]
mod tests {
    use super::*;
    use crate::mmu::cp15::host::{self, Op};
    use crate::mmu::{L1Entry, TranslationTable};
    use std::boxed::Box;
    use std::vec::Vec;

    struct Kernel {
        table: LiveTable,
        sections: SectionAllocator,
        windows: WindowAllocator,
    }

    /// 256 MiB of RAM, boot map, stores from 16 MiB up (240 sections).
    fn kernel() -> Kernel {
        host::reset_all();
        let t: &'static mut TranslationTable = Box::leak(Box::new(TranslationTable::new()));
        t.build_boot_map(256 << 20).unwrap();
        Kernel {
            // SAFETY: host: nothing is switched or accessed.
            table: unsafe { LiveTable::new_unchecked(t) },
            // SAFETY: host: bookkeeping only.
            sections: unsafe { SectionAllocator::new(16 << 20, 256 << 20) }.unwrap(),
            windows: WindowAllocator::new(),
        }
    }

    impl Kernel {
        fn create(&mut self, mib: u32) -> Result<SectionMirror, MmuError> {
            mirror_create(&mut self.table, &mut self.sections, &mut self.windows, mib)
        }
        fn destroy(&mut self, m: SectionMirror) -> Result<(), (MmuError, SectionMirror)> {
            mirror_destroy(&mut self.table, &mut self.sections, &mut self.windows, m)
        }
    }

    fn assert_mirrored(t: &LiveTable, m: &SectionMirror) {
        let n = m.capacity_bytes() as u32;
        for off in [0, 1, 0xF_FFFF, 0x10_0000, n / 2 + 7, n - 1] {
            if off >= n {
                continue;
            }
            let pa = m.store_pa() + off;
            assert_eq!(
                t.translate(m.window_va() + off),
                Some(pa),
                "first half +{off:#x}"
            );
            assert_eq!(
                t.translate(m.window_va() + n + off),
                Some(pa),
                "second half +{off:#x}"
            );
            assert_eq!(t.translate(pa), Some(pa), "identity alias +{off:#x}");
        }
        assert_eq!(m.second_half_va(), m.window_va() + n);
        assert_eq!(t.entry(m.guard_va()), L1Entry::Fault, "guard section");
        assert_eq!(t.section(m.window_va()).unwrap().attrs(), MIRROR_ATTRS);
    }

    #[test]
    fn one_mib_mirror_maps_both_halves_to_the_same_section() {
        let mut k = kernel();
        let m = k.create(1).unwrap();
        assert_eq!(
            (m.window_va(), m.store_pa(), m.mib(), m.capacity_bytes()),
            (0x8000_0000, 0x0100_0000, 1, 1 << 20)
        );
        assert_eq!(k.table.raw(0x800), Some(0x0100_141E));
        assert_eq!(k.table.raw(0x801), Some(0x0100_141E));
        assert_mirrored(&k.table, &m);
        let log = host::take_log();
        assert_eq!(
            log.iter()
                .filter(|o| matches!(o, Op::InvalidateTlbMva(_)))
                .count(),
            2
        );
        assert!(log.contains(&Op::InvalidateTlbMva(0x8010_0000)));
        assert_eq!(log.last(), Some(&Op::PrefetchFlush));
        let runs: Vec<_> = k.table.non_identity_runs().collect();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            std::format!("{}", runs[1]),
            "0x80100000-0x801fffff -> 0x01000000 1 MiB normal-wb-wa priv-rw xn"
        );
        k.destroy(m).unwrap();
    }

    #[test]
    fn four_mirrors_coexist_and_destroy_restores_fault() {
        let mut k = kernel();
        let before: Vec<u32> = (0..4096).map(|i| k.table.raw(i).unwrap()).collect();
        let ms: Vec<_> = [1, 4, 2, 16]
            .iter()
            .map(|&n| k.create(n).unwrap())
            .collect();
        for m in &ms {
            assert_mirrored(&k.table, m);
        }
        // Disjoint stores and windows.
        for (i, a) in ms.iter().enumerate() {
            for b in &ms[i + 1..] {
                let (a_end, b_end) = (
                    a.store_pa() + a.capacity_bytes() as u32,
                    b.store_pa() + b.capacity_bytes() as u32,
                );
                assert!(a_end <= b.store_pa() || b_end <= a.store_pa());
                assert!(a.guard_va() < b.window_va() || b.guard_va() < a.window_va());
            }
        }
        assert_eq!(k.sections.free_sections(), 240 - 23);
        assert_eq!(k.table.non_identity_runs().count(), 8);
        host::take_log();
        for m in ms {
            k.destroy(m).unwrap();
        }
        let log = host::take_log();
        assert_eq!(
            log.iter()
                .filter(|o| matches!(o, Op::InvalidateTlbMva(_)))
                .count(),
            2 * 23
        );
        assert!(log.contains(&Op::CleanInvalidateDCache));
        let after: Vec<u32> = (0..4096).map(|i| k.table.raw(i).unwrap()).collect();
        assert_eq!(before, after, "destroy restores every entry");
        assert_eq!(k.sections.free_sections(), 240);
        assert_eq!(k.windows.free_sections(), 2047);
        // Everything is reusable: the biggest possible mirror now fits.
        let big = k.create(240).unwrap();
        assert_mirrored(&k.table, &big);
        k.destroy(big).unwrap();
    }

    #[test]
    fn misaligned_says_which_alignment() {
        for (align, want) in [
            (1 << 20, "1 MiB"),
            (4 << 10, "4 KiB"),
            (1 << 10, "1 KiB"),
            (2, "2-byte"),
        ] {
            assert_eq!(
                std::format!("{}", MmuError::Misaligned { addr: 0x10, align }),
                std::format!("address 0x00000010 is not {want} aligned")
            );
        }
    }

    #[test]
    fn freed_ranges_are_reused() {
        let mut k = kernel();
        let a = k.create(2).unwrap();
        let b = k.create(2).unwrap();
        let (a_va, a_pa) = (a.window_va(), a.store_pa());
        k.destroy(a).unwrap();
        let c = k.create(1).unwrap();
        assert_eq!((c.window_va(), c.store_pa()), (a_va, a_pa));
        assert_mirrored(&k.table, &b);
        assert_mirrored(&k.table, &c);
    }

    #[test]
    fn errors_change_nothing() {
        let mut k = kernel();
        let snapshot =
            |k: &Kernel| -> Vec<u32> { (0..4096).map(|i| k.table.raw(i).unwrap()).collect() };
        let before = snapshot(&k);
        assert_eq!(k.create(0).unwrap_err(), MmuError::ZeroSize);
        assert_eq!(
            k.create(241).unwrap_err(),
            MmuError::OutOfPhysicalMemory {
                requested_mib: 241,
                largest_free_mib: 240
            }
        );
        // Something else mapped where the next window goes: refused, all given back.
        // SAFETY: host test.
        unsafe {
            k.table
                .map_section(0x8020_0000, 0x0100_0000, Attrs::normal_wb())
        }
        .unwrap();
        let before_clash = snapshot(&k);
        assert_eq!(
            k.create(1).unwrap_err(),
            MmuError::AlreadyMapped { va: 0x8020_0000 }
        );
        assert_eq!(snapshot(&k), before_clash);
        assert_eq!(
            (k.sections.free_sections(), k.windows.free_sections()),
            (240, 2047)
        );
        // SAFETY: host test.
        unsafe { k.table.unmap_section(0x8020_0000) }.unwrap();
        assert_eq!(snapshot(&k), before);
    }

    #[test]
    fn destroy_checks_before_changing_anything() {
        let mut k = kernel();
        let m = k.create(2).unwrap();
        // A mirror from other allocators is refused and handed back.
        let mut other = kernel();
        let _shift = other.create(1).unwrap(); // so its ranges differ from `m`'s
        let foreign = other.create(2).unwrap();
        let (e, foreign) = k.destroy(foreign).unwrap_err();
        assert_eq!(e, MmuError::NotAllocated);
        other.destroy(foreign).unwrap();
        // A tampered mapping is detected.
        // SAFETY: host test.
        unsafe { k.table.unmap_section(m.second_half_va() + (1 << 20)) }.unwrap();
        let (e, m) = k.destroy(m).unwrap_err();
        assert_eq!(
            e,
            MmuError::MappingMismatch {
                va: m.second_half_va() + (1 << 20)
            }
        );
        assert_eq!(k.table.translate(m.window_va()), Some(m.store_pa()));
        // SAFETY: host test.
        unsafe {
            k.table.map_section(
                m.second_half_va() + (1 << 20),
                m.store_pa() + (1 << 20),
                MIRROR_ATTRS,
            )
        }
        .unwrap();
        k.destroy(m).unwrap();
    }
}
