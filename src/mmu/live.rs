//! The translation table the MMU is walking, and the maintenance every change needs.
//!
//! A [`LiveTable`] is the only way to reach the live table after
//! [`super::enable_mmu`] (which returns it): reading goes through `Deref` to
//! [`TranslationTable`]; changing an entry runs, in the order of the ARM1176 TRM
//! (chapter 6, *MMU software-accessible registers* / "changing page table entries", and
//! §3.2 *c7, Cache operations* / *c8, TLB Operations Register*):
//!
//! 1. write the descriptor(s);
//! 2. clean each D-cache line holding a changed word (`c7,c10,1`): the table lives in
//!    write-back RAM but TTBR0 makes walks inner non-cacheable
//!    ([`super::cp15::TTBR_WALK_ATTRS`]), so the walker must find the word in memory;
//! 3. DSB (`c7,c10,4`): the cleans complete before the TLB is touched;
//! 4. invalidate the TLB entry of each changed section by MVA (`c8,c7,1`), so no stale
//!    translation survives (for an unmap that is what makes the fault take effect);
//! 5. flush the branch target cache (`c7,c5,6`): no predicted branch into the old
//!    mapping;
//! 6. DSB: the invalidations complete;
//! 7. prefetch flush (`c7,c5,4`): instructions after it are fetched with the new map.
//!
//! On the host the cp15 operations are no-ops (recorded under `cfg(test)`), so the
//! table side of every change can be tested.

use core::ops::Deref;

use super::cp15::{self, CACHE_LINE};
use super::{
    check_span, section_index, Attrs, MmuError, PageTable, SectionDescriptor, TranslationTable,
    SECTION_SHIFT,
};

/// The translation table in TTBR0 with the MMU on; see the module docs.
pub struct LiveTable {
    table: &'static mut TranslationTable,
    /// The coarse table of the first MiB and its physical address, once attached.
    /// Read-only: the page map is fixed at boot.
    low: Option<(&'static PageTable, u32)>,
}

impl LiveTable {
    /// Wraps the table the MMU is walking. [`super::enable_mmu`] is the normal way to
    /// get one.
    ///
    /// # Safety
    ///
    /// On ARM: `table` is the table in TTBR0 (or about to be, with nothing else changing
    /// it meanwhile), and no other reference to it is used while the `LiveTable` exists.
    /// On other targets nothing is switched and any table will do (tests).
    pub unsafe fn new_unchecked(table: &'static mut TranslationTable) -> Self {
        LiveTable { table, low: None }
    }

    /// Records the second-level table at physical `pa` that a coarse entry of the table
    /// points to (the boot map's first MiB), so [`LiveTable::translate`] can follow it.
    /// Nothing is written to the table or the MMU.
    pub fn attach_page_table(&mut self, table: &'static PageTable, pa: u32) {
        self.low = Some((table, pa));
    }

    /// The physical address `va` translates to, or `None` when it would fault. Unlike
    /// [`TranslationTable::translate`] (which this shadows), a coarse entry pointing to
    /// the attached page table is followed into it.
    pub fn translate(&self, va: u32) -> Option<u32> {
        match self.low {
            Some((low, pa)) => self.table.translate_paged(va, low, pa),
            None => self.table.translate(va),
        }
    }

    /// The table, read-only.
    pub fn table(&self) -> &TranslationTable {
        self.table
    }

    /// Maps one section of the live table and makes the change visible.
    ///
    /// # Safety
    ///
    /// See [`LiveTable::map_sections`].
    pub unsafe fn map_section(&mut self, va: u32, pa: u32, attrs: Attrs) -> Result<(), MmuError> {
        // SAFETY: forwarded contract.
        unsafe { self.map_sections(va, pa, 1, attrs) }
    }

    /// Maps `count` sections from `va` to `pa` in the live table (refusing misaligned
    /// addresses and any overlap with an existing mapping, all or nothing) and runs the
    /// maintenance sequence.
    ///
    /// # Safety
    ///
    /// `pa..pa + count MiB` must be memory (or devices) that may be accessed through the
    /// new mapping: not memory another owner relies on being unaliased, and mapped with
    /// the same memory type as any other mapping of it (ARMv6 makes mismatched memory
    /// attributes for one physical address UNPREDICTABLE).
    pub unsafe fn map_sections(
        &mut self,
        va: u32,
        pa: u32,
        count: u32,
        attrs: Attrs,
    ) -> Result<(), MmuError> {
        self.table.map_sections(va, pa, count, attrs)?;
        self.sync(va, count);
        Ok(())
    }

    /// Unmaps one section of the live table and makes the fault take effect.
    ///
    /// # Safety
    ///
    /// See [`LiveTable::unmap_sections`].
    pub unsafe fn unmap_section(&mut self, va: u32) -> Result<SectionDescriptor, MmuError> {
        let d = self.table.unmap_section(va)?;
        self.sync(va, 1);
        Ok(d)
    }

    /// Unmaps `count` sections from `va` (each must be a section; all or nothing) and
    /// runs the maintenance sequence.
    ///
    /// # Safety
    ///
    /// Nothing in use may live in the range: no reference, code, stack or pending DMA.
    pub unsafe fn unmap_sections(&mut self, va: u32, count: u32) -> Result<(), MmuError> {
        self.table.unmap_sections(va, count)?;
        self.sync(va, count);
        Ok(())
    }

    /// Steps 2..7 of the module docs for `count` changed entries from `va`.
    fn sync(&self, va: u32, count: u32) {
        debug_assert!(check_span(va, count).is_ok());
        let first = self.table.entry_address(va);
        let last = first + (count as usize - 1) * core::mem::size_of::<u32>();
        let mut line = first & !(CACHE_LINE - 1);
        while line <= last {
            cp15::clean_dcache_line(line);
            line += CACHE_LINE;
        }
        cp15::dsb();
        let start = section_index(va);
        for i in start..start + count as usize {
            cp15::invalidate_tlb_mva((i as u32) << SECTION_SHIFT);
        }
        cp15::flush_btb();
        cp15::dsb();
        cp15::prefetch_flush();
    }
}

impl Deref for LiveTable {
    type Target = TranslationTable;

    fn deref(&self) -> &TranslationTable {
        self.table
    }
}

#[cfg(all(test, not(target_arch = "arm")))]
mod tests {
    use super::*;
    use crate::mmu::cp15::host::{self, Op};
    use std::boxed::Box;
    use std::vec;

    fn live() -> LiveTable {
        let t: &'static mut TranslationTable = Box::leak(Box::new(TranslationTable::new()));
        // SAFETY: host: nothing is switched.
        unsafe { LiveTable::new_unchecked(t) }
    }

    #[test]
    fn map_runs_the_maintenance_sequence() {
        host::reset_all();
        let mut t = live();
        // SAFETY: host test, nothing is accessed through the mapping.
        unsafe { t.map_section(0x8010_0000, 0x0100_0000, Attrs::normal_wb()) }.unwrap();
        let entry = t.address() + 0x801 * 4;
        assert_eq!(t.translate(0x8010_0004), Some(0x0100_0004));
        assert_eq!(
            host::take_log(),
            vec![
                Op::CleanDLine(entry & !31),
                Op::Dsb,
                Op::InvalidateTlbMva(0x8010_0000),
                Op::FlushBtb,
                Op::Dsb,
                Op::PrefetchFlush,
            ]
        );
        // SAFETY: as above.
        let d = unsafe { t.unmap_section(0x8010_0000) }.unwrap();
        assert_eq!(d.base(), 0x0100_0000);
        assert_eq!(t.translate(0x8010_0000), None);
        assert_eq!(host::take_log().len(), 6);
    }

    #[test]
    fn multi_section_change_cleans_each_line_once() {
        host::reset_all();
        let mut t = live();
        // 10 entries from index 0x806: words 0x806..=0x80f span lines 0x800.. and 0x808..
        // SAFETY: host test.
        unsafe { t.map_sections(0x8060_0000, 0x0200_0000, 10, Attrs::normal_wb()) }.unwrap();
        let log = host::take_log();
        let base = t.address();
        assert_eq!(log[0], Op::CleanDLine(base + 0x800 * 4));
        assert_eq!(log[1], Op::CleanDLine(base + 0x808 * 4));
        assert_eq!(log[2], Op::Dsb);
        for n in 0..10u32 {
            assert_eq!(
                log[3 + n as usize],
                Op::InvalidateTlbMva(0x8060_0000 + (n << 20))
            );
        }
        assert_eq!(&log[13..], &[Op::FlushBtb, Op::Dsb, Op::PrefetchFlush]);
    }

    #[test]
    fn translate_follows_the_attached_page_table() {
        host::reset_all();
        let layout = crate::mmu::page::tests::layout();
        let t: &'static mut TranslationTable = Box::leak(Box::new(TranslationTable::new()));
        let low: &'static mut PageTable = Box::leak(Box::new(PageTable::new()));
        t.build_paged_boot_map(64 << 20, low, 0x4_4000, &layout)
            .unwrap();
        // SAFETY: host: nothing is switched.
        let mut live = unsafe { LiveTable::new_unchecked(t) };
        assert_eq!(live.translate(0x8000), None, "not attached yet");
        live.attach_page_table(low, 0x4_4000);
        assert_eq!(live.translate(0x8000), Some(0x8000));
        assert_eq!(live.translate(0x3_2000), None, "guard page");
        assert_eq!(live.translate(0x0123_4567), Some(0x0123_4567));
        assert!(host::take_log().is_empty());
    }

    #[test]
    fn refused_changes_do_no_maintenance() {
        host::reset_all();
        let mut t = live();
        // SAFETY: host test.
        unsafe {
            assert_eq!(
                t.map_section(0x8000_8000, 0, Attrs::normal_wb()),
                Err(MmuError::misaligned(0x8000_8000, 1 << 20))
            );
            t.map_section(0x8000_0000, 0, Attrs::normal_wb()).unwrap();
            host::take_log();
            assert_eq!(
                t.map_sections(0x7FF0_0000, 0x10_0000, 2, Attrs::normal_wb()),
                Err(MmuError::AlreadyMapped { va: 0x8000_0000 })
            );
            assert_eq!(
                t.unmap_section(0x9000_0000),
                Err(MmuError::NotMapped { va: 0x9000_0000 })
            );
        }
        assert!(host::take_log().is_empty());
        assert_eq!(t.translate(0x7FF0_0000), None);
    }
}
