//! The L1 translation table as data: 4096 section-granular entries, built and inspected
//! without touching the hardware (so every method here is host-testable).
//!
//! Changing the table the MMU is walking goes through [`super::LiveTable`], which adds
//! the cache and TLB maintenance; the methods here are for building a table before the
//! MMU is on and for inspecting one (`translate`, `entry`, `runs`).

use core::fmt;

use super::{
    check_aligned, check_span, section_index, Attrs, CoarseDescriptor, KernelLayout, L1Entry,
    MmuError, PageTable, SectionDescriptor, PERIPHERAL_BASE, PERIPHERAL_END, SECTION_MASK,
    SECTION_SHIFT, SECTION_SIZE,
};

/// An ARMv6 first-level translation table: 4096 words, 16 KiB aligned as TTBR0 with
/// TTBCR.N = 0 requires (ARM1176 TRM §3.2.13, *c2, Translation Table Base Register 0*).
///
/// Entry `i` translates virtual addresses `i << 20 ..= (i << 20) | 0xF_FFFF`.
#[repr(C, align(16384))]
pub struct TranslationTable {
    entries: [u32; TranslationTable::ENTRIES],
}

impl Default for TranslationTable {
    fn default() -> Self {
        Self::new()
    }
}

impl TranslationTable {
    /// Number of L1 entries.
    pub const ENTRIES: usize = 4096;

    /// A table with every entry a fault (usable for a `static`).
    pub const fn new() -> Self {
        TranslationTable {
            entries: [0; Self::ENTRIES],
        }
    }

    /// Makes every entry a fault.
    pub fn clear(&mut self) {
        self.entries.fill(0);
    }

    /// The table's address (its physical address too: the kernel is identity mapped).
    pub fn address(&self) -> usize {
        self.entries.as_ptr() as usize
    }

    /// Address of the word that translates `va` (for cleaning it from the D-cache).
    pub(crate) fn entry_address(&self, va: u32) -> usize {
        core::ptr::addr_of!(self.entries[section_index(va)]) as usize
    }

    /// The raw word at entry `index` (`None` past 4095).
    pub fn raw(&self, index: usize) -> Option<u32> {
        self.entries.get(index).copied()
    }

    /// The decoded entry that translates `va`.
    pub fn entry(&self, va: u32) -> L1Entry {
        L1Entry::decode(self.entries[section_index(va)])
    }

    /// The section descriptor that translates `va`, if it is a section.
    pub fn section(&self, va: u32) -> Option<SectionDescriptor> {
        match self.entry(va) {
            L1Entry::Section(d) => Some(d),
            _ => None,
        }
    }

    /// The physical address `va` translates to, or `None` when it would fault (or goes
    /// through a second-level table, which this table does not follow: see
    /// [`TranslationTable::translate_paged`]).
    pub fn translate(&self, va: u32) -> Option<u32> {
        self.section(va).map(|d| d.base() | (va & SECTION_MASK))
    }

    /// Like [`TranslationTable::translate`], but a coarse entry pointing at `l2_pa` is
    /// followed into `l2` (the table at that physical address). Coarse entries pointing
    /// anywhere else give `None`.
    pub fn translate_paged(&self, va: u32, l2: &PageTable, l2_pa: u32) -> Option<u32> {
        match self.entry(va) {
            L1Entry::Section(d) => Some(d.base() | (va & SECTION_MASK)),
            L1Entry::Coarse(c) if c.table() == l2_pa => l2.translate(va),
            _ => None,
        }
    }

    /// Points the (fault) entry for the section at `va` to the coarse second-level table
    /// at physical `table_pa`, in domain 0.
    ///
    /// Errors: misaligned `va` (1 MiB) or `table_pa` (1 KiB), [`MmuError::AlreadyMapped`]
    /// when the entry is not a fault.
    pub fn map_coarse(&mut self, va: u32, table_pa: u32) -> Result<(), MmuError> {
        check_aligned(va)?;
        let d = CoarseDescriptor::new(table_pa, 0)?;
        let i = section_index(va);
        if self.entries[i] != 0 {
            return Err(MmuError::AlreadyMapped { va });
        }
        self.entries[i] = d.raw();
        Ok(())
    }

    /// Maps the 1 MiB section at virtual `va` to physical `pa`.
    ///
    /// Errors: either address misaligned, [`MmuError::AlreadyMapped`] when the entry is
    /// not a fault (a mapping is never silently replaced), invalid attributes.
    pub fn map_section(&mut self, va: u32, pa: u32, attrs: Attrs) -> Result<(), MmuError> {
        self.map_sections(va, pa, 1, attrs)
    }

    /// Maps `count` consecutive sections from `va` to `pa`. All or nothing: every entry is
    /// checked (alignment, range, overlap, attributes) before the first is written.
    pub fn map_sections(
        &mut self,
        va: u32,
        pa: u32,
        count: u32,
        attrs: Attrs,
    ) -> Result<(), MmuError> {
        check_span(va, count)?;
        check_span(pa, count)?;
        let first = SectionDescriptor::new(pa, attrs)?;
        let start = section_index(va);
        let end = start + count as usize;
        if let Some(i) = (start..end).find(|&i| self.entries[i] != 0) {
            return Err(MmuError::AlreadyMapped {
                va: (i as u32) << SECTION_SHIFT,
            });
        }
        for (n, i) in (start..end).enumerate() {
            // Same attributes, base advanced by n sections: only the base field changes.
            self.entries[i] = first.raw() + ((n as u32) << SECTION_SHIFT);
        }
        Ok(())
    }

    /// Unmaps the section at `va` (makes the entry a fault) and returns what it held.
    ///
    /// Errors: misaligned `va`, [`MmuError::NotMapped`] when the entry is not a section.
    pub fn unmap_section(&mut self, va: u32) -> Result<SectionDescriptor, MmuError> {
        check_aligned(va)?;
        let d = self.section(va).ok_or(MmuError::NotMapped { va })?;
        self.entries[section_index(va)] = 0;
        Ok(d)
    }

    /// Unmaps `count` sections from `va`; all or nothing (each must be a section).
    pub fn unmap_sections(&mut self, va: u32, count: u32) -> Result<(), MmuError> {
        check_span(va, count)?;
        let start = section_index(va);
        if let Some(i) = (start..start + count as usize)
            .find(|&i| !matches!(L1Entry::decode(self.entries[i]), L1Entry::Section(_)))
        {
            return Err(MmuError::NotMapped {
                va: (i as u32) << SECTION_SHIFT,
            });
        }
        self.entries[start..start + count as usize].fill(0);
        Ok(())
    }

    /// Whether every entry of `count` sections from `va` is a fault.
    pub fn is_unmapped(&self, va: u32, count: u32) -> bool {
        check_span(va, count).is_ok() && {
            let start = section_index(va);
            self.entries[start..start + count as usize]
                .iter()
                .all(|&e| e == 0)
        }
    }

    /// Rebuilds the boot map: RAM `0..ram_bytes` identity mapped normal write-back
    /// cacheable, privileged RWX ([`Attrs::normal_wb`]); the BCM2835 peripheral window
    /// `0x2000_0000..0x2100_0000` identity mapped shared device, XN ([`Attrs::device`]);
    /// every other entry a fault, so a stray access aborts.
    ///
    /// `ram_bytes` is the ARM memory size the firmware reports; a partial last MiB is
    /// left unmapped. Errors: [`MmuError::ZeroSize`] below 1 MiB,
    /// [`MmuError::OutOfRange`] when RAM would reach the peripherals.
    pub fn build_boot_map(&mut self, ram_bytes: u32) -> Result<(), MmuError> {
        let ram_sections = ram_bytes >> SECTION_SHIFT;
        if ram_sections == 0 {
            return Err(MmuError::ZeroSize);
        }
        if ram_bytes > PERIPHERAL_BASE {
            return Err(MmuError::OutOfRange);
        }
        self.clear();
        self.map_sections(0, 0, ram_sections, Attrs::normal_wb())?;
        let periph = (PERIPHERAL_END - PERIPHERAL_BASE) >> SECTION_SHIFT;
        self.map_sections(PERIPHERAL_BASE, PERIPHERAL_BASE, periph, Attrs::device())
    }

    /// The boot map of [`TranslationTable::build_boot_map`], except that the first MiB
    /// goes through the coarse table `low` (at physical `low_pa`) built for `layout` by
    /// [`PageTable::build_kernel_map`]: the same identity mapping and memory type, with
    /// per-page permissions (W^X for the kernel image) and a fault page under each mode
    /// stack; and RAM above the first MiB execute never (it holds no code).
    ///
    /// The caller keeps `low` at `low_pa` for as long as the table is in use, and (like
    /// this table) in memory the walker can see before the MMU is enabled.
    /// Errors: those of [`TranslationTable::build_boot_map`],
    /// [`PageTable::build_kernel_map`], and a misaligned `low_pa`.
    pub fn build_paged_boot_map(
        &mut self,
        ram_bytes: u32,
        low: &mut PageTable,
        low_pa: u32,
        layout: &KernelLayout,
    ) -> Result<(), MmuError> {
        // Everything is checked before anything is written.
        layout.check()?;
        CoarseDescriptor::new(low_pa, 0)?;
        self.build_boot_map(ram_bytes)?;
        low.build_kernel_map(layout)?;
        // RAM above the first MiB only ever holds data (ring stores, free memory):
        // execute never, so W^X holds for all of RAM, not just the kernel image.
        let above = (ram_bytes >> SECTION_SHIFT) - 1;
        if above > 0 {
            self.unmap_sections(1 << SECTION_SHIFT, above)?;
            self.map_sections(
                1 << SECTION_SHIFT,
                1 << SECTION_SHIFT,
                above,
                Attrs::normal_wb().execute_never(),
            )?;
        }
        self.entries[0] = 0;
        self.map_coarse(0, low_pa)
    }

    /// Every section mapping, coalesced into runs of consecutive virtual and physical
    /// sections with identical attributes, in virtual address order.
    pub fn runs(&self) -> Runs<'_> {
        Runs {
            table: self,
            next: 0,
        }
    }

    /// The runs whose virtual address differs from the physical one (the shell's `map`:
    /// the mirror windows, not the boot identity map).
    pub fn non_identity_runs(&self) -> impl Iterator<Item = MappingRun> + '_ {
        self.runs().filter(|r| r.va != r.pa)
    }
}

/// A run of section mappings: `sections` MiB from `va` to `pa`, same attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingRun {
    /// First virtual address.
    pub va: u32,
    /// First physical address.
    pub pa: u32,
    /// Length in sections (MiB).
    pub sections: u32,
    /// The first section's descriptor (the others differ only in their base).
    pub descriptor: SectionDescriptor,
}

impl MappingRun {
    /// The decoded attributes.
    pub fn attrs(&self) -> Attrs {
        self.descriptor.attrs()
    }

    /// Length in bytes (as u64: a run may cover all 4 GiB).
    pub fn bytes(&self) -> u64 {
        u64::from(self.sections) << SECTION_SHIFT
    }
}

impl fmt::Display for MappingRun {
    /// `0x80000000-0x800fffff -> 0x01000000 1 MiB normal-wb-wa priv-rw xn`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = u64::from(self.va) + self.bytes() - 1;
        write!(
            f,
            "{:#010x}-{:#010x} -> {:#010x} {} MiB {}",
            self.va,
            last,
            self.pa,
            self.sections,
            self.attrs()
        )
    }
}

/// Iterator over the [`MappingRun`]s of a table.
pub struct Runs<'a> {
    table: &'a TranslationTable,
    next: usize,
}

impl Iterator for Runs<'_> {
    type Item = MappingRun;

    fn next(&mut self) -> Option<MappingRun> {
        let entries = &self.table.entries;
        while self.next < entries.len() {
            let i = self.next;
            self.next += 1;
            let L1Entry::Section(first) = L1Entry::decode(entries[i]) else {
                continue;
            };
            let mut sections = 1u32;
            while self.next < entries.len()
                && u64::from(entries[self.next])
                    == u64::from(first.raw()) + (u64::from(sections) << SECTION_SHIFT)
            {
                sections += 1;
                self.next += 1;
            }
            return Some(MappingRun {
                va: (i as u32) << SECTION_SHIFT,
                pa: first.base(),
                sections,
                descriptor: first,
            });
        }
        None
    }
}

const _: () = assert!(core::mem::size_of::<TranslationTable>() == 16 * 1024);
const _: () = assert!(core::mem::align_of::<TranslationTable>() == 16 * 1024);
const _: () = assert!(SECTION_SIZE == 0x10_0000);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::{MemoryType, MIRROR_VA_BASE};
    use std::boxed::Box;
    use std::vec::Vec;

    fn table() -> Box<TranslationTable> {
        Box::new(TranslationTable::new())
    }

    #[test]
    fn new_table_is_all_fault_and_aligned() {
        let t = table();
        assert_eq!(t.address() % 16384, 0);
        assert!((0..4096).all(|i| t.raw(i) == Some(0)));
        assert_eq!(t.raw(4096), None);
        assert_eq!(t.translate(0), None);
        assert_eq!(t.runs().count(), 0);
    }

    #[test]
    fn map_translate_unmap() {
        let mut t = table();
        t.map_section(0x8000_0000, 0x0010_0000, Attrs::normal_wb())
            .unwrap();
        assert_eq!(t.raw(0x800), Some(0x0010_140E));
        assert_eq!(t.translate(0x8000_0000), Some(0x0010_0000));
        assert_eq!(t.translate(0x800F_FFFF), Some(0x001F_FFFF));
        assert_eq!(t.translate(0x8010_0000), None);
        assert_eq!(t.translate(0x7FFF_FFFF), None);
        let d = t.unmap_section(0x8000_0000).unwrap();
        assert_eq!(d.raw(), 0x0010_140E);
        assert_eq!(t.entry(0x8000_0000), L1Entry::Fault);
        assert_eq!(
            t.unmap_section(0x8000_0000),
            Err(MmuError::NotMapped { va: 0x8000_0000 })
        );
    }

    #[test]
    fn refuses_misaligned_overlap_and_wrap() {
        let mut t = table();
        assert_eq!(
            t.map_section(0x8000_1000, 0, Attrs::normal_wb()),
            Err(MmuError::misaligned(0x8000_1000, 1 << 20))
        );
        assert_eq!(
            t.map_section(0x8000_0000, 0x10, Attrs::normal_wb()),
            Err(MmuError::misaligned(0x10, 1 << 20))
        );
        assert_eq!(
            t.unmap_section(0x123),
            Err(MmuError::misaligned(0x123, 1 << 20))
        );
        t.map_section(0x8020_0000, 0, Attrs::normal_wb()).unwrap();
        // Overlap anywhere in the span: refused, and nothing written.
        assert_eq!(
            t.map_sections(0x8000_0000, 0x0100_0000, 4, Attrs::normal_wb()),
            Err(MmuError::AlreadyMapped { va: 0x8020_0000 })
        );
        assert!(t.is_unmapped(0x8000_0000, 2));
        assert!(t.is_unmapped(0x8030_0000, 1));
        assert_eq!(
            t.map_sections(0xFFF0_0000, 0, 2, Attrs::normal_wb()),
            Err(MmuError::OutOfRange)
        );
        assert_eq!(
            t.map_sections(0, 0, 0, Attrs::normal_wb()),
            Err(MmuError::ZeroSize)
        );
        t.map_sections(0xFFF0_0000, 0xFFF0_0000, 1, Attrs::device())
            .unwrap();
        assert_eq!(t.translate(0xFFFF_FFFF), Some(0xFFFF_FFFF));
        // unmap_sections is all or nothing too.
        assert_eq!(
            t.unmap_sections(0x8010_0000, 2),
            Err(MmuError::NotMapped { va: 0x8010_0000 })
        );
        assert!(!t.is_unmapped(0x8020_0000, 1));
    }

    #[test]
    fn boot_map_layout() {
        let mut t = table();
        t.map_section(MIRROR_VA_BASE, 0, Attrs::normal_wb())
            .unwrap(); // cleared by the build
        t.build_boot_map(448 << 20).unwrap();
        for i in 0..4096u32 {
            let va = i << 20;
            let raw = t.raw(i as usize).unwrap();
            if i < 448 {
                assert_eq!(raw, (i << 20) | 0x140E, "RAM section {i:#x}");
                let a = t.section(va).unwrap().attrs();
                assert_eq!(a, Attrs::normal_wb());
                assert!(!a.execute_never);
            } else if (0x200..0x210).contains(&i) {
                assert_eq!(raw, (i << 20) | 0x0416, "peripheral section {i:#x}");
                assert_eq!(t.section(va).unwrap().attrs().memory, MemoryType::Device);
            } else {
                assert_eq!(raw, 0, "section {i:#x} must fault");
            }
        }
        assert_eq!(t.translate(0x2020_1000), Some(0x2020_1000));
        assert_eq!(t.translate(0x1C00_0000), None);
        assert_eq!(t.translate(0x2100_0000), None);
        let runs: Vec<_> = t.runs().collect();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].va, runs[0].pa, runs[0].sections), (0, 0, 448));
        assert_eq!(
            (runs[1].va, runs[1].pa, runs[1].sections),
            (0x2000_0000, 0x2000_0000, 16)
        );
        assert_eq!(t.non_identity_runs().count(), 0);
    }

    #[test]
    fn boot_map_edges() {
        let mut t = table();
        assert_eq!(t.build_boot_map(0), Err(MmuError::ZeroSize));
        assert_eq!(t.build_boot_map(0xF_FFFF), Err(MmuError::ZeroSize));
        assert_eq!(t.build_boot_map(0x2000_0001), Err(MmuError::OutOfRange));
        t.build_boot_map(512 << 20).unwrap();
        assert_eq!(t.runs().next().unwrap().sections, 512);
        t.build_boot_map((256 << 20) + 4096).unwrap(); // partial MiB dropped
        assert_eq!(t.runs().next().unwrap().sections, 256);
        assert_eq!(t.translate(0x1000_0000), None);
    }

    #[test]
    fn paged_boot_map_first_mib_through_the_coarse_table() {
        let layout = crate::mmu::page::tests::layout();
        let mut t = table();
        let mut low = Box::new(PageTable::new());
        let low_pa = 0x0004_4400; // any 1 KiB aligned address will do on the host
        t.build_paged_boot_map(256 << 20, &mut low, low_pa, &layout)
            .unwrap();
        assert_eq!(t.raw(0), Some(low_pa | 0b01), "coarse, domain 0");
        assert_eq!(
            t.entry(0),
            L1Entry::Coarse(CoarseDescriptor::new(low_pa, 0).unwrap())
        );
        for i in 1..256 {
            assert_eq!(
                t.raw(i),
                Some(((i as u32) << 20) | 0x141E),
                "section {i:#x}: RAM, execute never"
            );
        }
        // The section-only view sees no mapping at 0; the paged one follows the table.
        assert_eq!(t.translate(0x8000), None);
        assert_eq!(t.translate_paged(0x8004, &low, low_pa), Some(0x8004));
        assert_eq!(t.translate_paged(0x3_2010, &low, low_pa), None, "SVC guard");
        assert_eq!(t.translate_paged(0x3_3010, &low, low_pa), Some(0x3_3010));
        assert_eq!(
            t.translate_paged(0x0010_0000, &low, low_pa),
            Some(0x0010_0000)
        );
        assert_eq!(t.translate_paged(0x9000_0000, &low, low_pa), None);
        assert_eq!(
            t.translate_paged(0x8000, &low, low_pa + 0x400),
            None,
            "other table"
        );
        // Runs (and so the shell's `map`) skip the coarse entry: RAM from 1 MiB.
        let runs: Vec<_> = t.runs().collect();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].va, runs[0].sections), (0x0010_0000, 255));
        assert_eq!(t.non_identity_runs().count(), 0);
        // Section operations leave the coarse entry alone.
        assert_eq!(
            t.map_section(0, 0, Attrs::normal_wb()),
            Err(MmuError::AlreadyMapped { va: 0 })
        );
        assert_eq!(t.unmap_section(0), Err(MmuError::NotMapped { va: 0 }));
        assert_eq!(t.unmap_sections(0, 2), Err(MmuError::NotMapped { va: 0 }));
        assert!(!t.is_unmapped(0, 1));
    }

    #[test]
    fn paged_boot_map_refusals_write_nothing() {
        let layout = crate::mmu::page::tests::layout();
        let mut t = table();
        let mut low = Box::new(PageTable::new());
        assert_eq!(
            t.build_paged_boot_map(256 << 20, &mut low, 0x4_4200, &layout),
            Err(MmuError::misaligned(0x4_4200, 1 << 10))
        );
        let mut bad = layout;
        bad.end = 0x20_0000;
        assert_eq!(
            t.build_paged_boot_map(256 << 20, &mut low, 0x4_4000, &bad),
            Err(MmuError::OutOfRange)
        );
        assert!((0..4096).all(|i| t.raw(i) == Some(0)));
        assert!((0..256).all(|i| low.raw(i) == Some(0)));
        t.build_boot_map(64 << 20).unwrap();
        assert_eq!(
            t.map_coarse(0x0010_0000, 0x4_4000),
            Err(MmuError::AlreadyMapped { va: 0x0010_0000 })
        );
        assert_eq!(
            t.map_coarse(0x0010_0400, 0x4_4000),
            Err(MmuError::misaligned(0x0010_0400, 1 << 20))
        );
    }

    #[test]
    fn non_identity_runs_show_a_mirror_as_two_runs() {
        let mut t = table();
        t.build_boot_map(256 << 20).unwrap();
        let attrs = Attrs::normal_wb().execute_never();
        t.map_sections(0x8000_0000, 0x0400_0000, 4, attrs).unwrap();
        t.map_sections(0x8040_0000, 0x0400_0000, 4, attrs).unwrap();
        let runs: Vec<_> = t.non_identity_runs().collect();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].va, runs[0].pa, runs[0].sections),
            (0x8000_0000, 0x0400_0000, 4)
        );
        assert_eq!(
            (runs[1].va, runs[1].pa, runs[1].sections),
            (0x8040_0000, 0x0400_0000, 4)
        );
        assert_eq!(
            std::format!("{}", runs[1]),
            "0x80400000-0x807fffff -> 0x04000000 4 MiB normal-wb-wa priv-rw xn"
        );
    }

    #[test]
    fn runs_split_on_attribute_change() {
        let mut t = table();
        t.map_sections(0x100_0000, 0x100_0000, 2, Attrs::normal_wb())
            .unwrap();
        t.map_sections(0x120_0000, 0x120_0000, 2, Attrs::normal_nc())
            .unwrap();
        let runs: Vec<_> = t.runs().collect();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].attrs(), Attrs::normal_nc());
    }
}
