//! Second-level (L2) coarse page tables of 4 KiB small pages, and the page map of the
//! first MiB built from the kernel's link layout: code read-only and executable, read-only
//! data and everything writable execute-never, and an unmapped guard page directly below
//! each mode stack so an overflow takes a data abort instead of corrupting memory.
//!
//! ARM1176JZF-S TRM (DDI 0301H) §6.11.2 and ARM ARM v6 (DDI 0100I) §B4.7: an L1 coarse
//! descriptor points to a 1 KiB aligned table of 256 words; entry `(va >> 12) & 0xff`
//! translates `va` within that MiB. With SCTLR.XP = 1 each word is a fault (`0b00`), a
//! large page (`0b01`) or an extended small page (`0b1x`, [`SmallPageDescriptor`]).
//!
//! Like [`super::TranslationTable`], everything here is plain data and host-testable.

use super::{
    Attrs, L2Entry, MmuError, SmallPageDescriptor, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, SECTION_MASK,
    SECTION_SIZE,
};

/// A coarse second-level table: 256 entries of one 4 KiB page each, 1 KiB aligned as a
/// coarse L1 descriptor requires (its bits \[31:10\] hold the table address).
#[repr(C, align(1024))]
pub struct PageTable {
    entries: [u32; PageTable::ENTRIES],
}

impl Default for PageTable {
    fn default() -> Self {
        Self::new()
    }
}

/// Index of the L2 entry translating `va` (within whichever MiB the table covers).
const fn page_index(va: u32) -> usize {
    ((va & SECTION_MASK) >> PAGE_SHIFT) as usize
}

impl PageTable {
    /// Number of entries.
    pub const ENTRIES: usize = 256;

    /// A table with every entry a fault (usable for a `static`).
    pub const fn new() -> Self {
        PageTable {
            entries: [0; Self::ENTRIES],
        }
    }

    /// Makes every entry a fault.
    pub fn clear(&mut self) {
        self.entries.fill(0);
    }

    /// The table's address (its physical address too in the identity-mapped kernel).
    pub fn address(&self) -> usize {
        self.entries.as_ptr() as usize
    }

    /// The raw word at entry `index` (`None` past 255).
    pub fn raw(&self, index: usize) -> Option<u32> {
        self.entries.get(index).copied()
    }

    /// The decoded entry translating `va` (only `va`'s offset in its MiB is used).
    pub fn entry(&self, va: u32) -> L2Entry {
        L2Entry::decode(self.entries[page_index(va)])
    }

    /// The small page descriptor translating `va`, if it is a small page.
    pub fn page(&self, va: u32) -> Option<SmallPageDescriptor> {
        match self.entry(va) {
            L2Entry::SmallPage(d) => Some(d),
            _ => None,
        }
    }

    /// The physical address `va` translates to through this table, or `None` when the
    /// entry is a fault. A large page (never written here) is followed too: base
    /// bits \[31:16\] and the offset bits \[15:0\].
    pub fn translate(&self, va: u32) -> Option<u32> {
        match self.entry(va) {
            L2Entry::Fault => None,
            L2Entry::LargePage(raw) => Some((raw & 0xffff_0000) | (va & 0xffff)),
            L2Entry::SmallPage(d) => Some(d.base() | (va & PAGE_MASK)),
        }
    }

    /// Maps the 4 KiB page at `va` to physical `pa`.
    pub fn map_page(&mut self, va: u32, pa: u32, attrs: Attrs) -> Result<(), MmuError> {
        self.map_pages(va, pa, 1, attrs)
    }

    /// Maps `count` consecutive pages from `va` to `pa`, all within the MiB this table
    /// covers. All or nothing, like [`super::TranslationTable::map_sections`].
    ///
    /// Errors: [`MmuError::Misaligned`] for an address that is not 4 KiB aligned,
    /// [`MmuError::ZeroSize`], [`MmuError::OutOfRange`] when the pages would leave the
    /// table's MiB or `pa` would pass 4 GiB, [`MmuError::AlreadyMapped`] when an entry is
    /// not a fault, [`MmuError::InvalidAttributes`].
    pub fn map_pages(
        &mut self,
        va: u32,
        pa: u32,
        count: u32,
        attrs: Attrs,
    ) -> Result<(), MmuError> {
        for addr in [va, pa] {
            if addr & PAGE_MASK != 0 {
                return Err(MmuError::misaligned(addr, PAGE_SIZE));
            }
        }
        if count == 0 {
            return Err(MmuError::ZeroSize);
        }
        let start = page_index(va);
        let end = start + count as usize;
        if end > Self::ENTRIES || u64::from(pa) + (u64::from(count) << PAGE_SHIFT) > 1 << 32 {
            return Err(MmuError::OutOfRange);
        }
        let first = SmallPageDescriptor::new(pa, attrs)?;
        if let Some(i) = (start..end).find(|&i| self.entries[i] != 0) {
            return Err(MmuError::AlreadyMapped {
                va: (va & !SECTION_MASK) | ((i as u32) << PAGE_SHIFT),
            });
        }
        for (n, i) in (start..end).enumerate() {
            // Same attributes, base advanced by n pages: only the base field changes.
            self.entries[i] = first.raw() + ((n as u32) << PAGE_SHIFT);
        }
        Ok(())
    }

    /// Rebuilds this table as the identity page map of the first MiB for `layout`:
    /// every page mapped normal write-back write-allocate like the rest of RAM, with the
    /// permissions of [`KernelLayout::page_attrs`], and the stack guard pages faults.
    ///
    /// Errors: [`KernelLayout::check`]'s.
    pub fn build_kernel_map(&mut self, layout: &KernelLayout) -> Result<(), MmuError> {
        layout.check()?;
        self.clear();
        for i in 0..Self::ENTRIES as u32 {
            let va = i << PAGE_SHIFT;
            if let Some(attrs) = layout.page_attrs(va) {
                self.map_page(va, va, attrs)?;
            }
        }
        Ok(())
    }
}

/// A mode stack's guard page: unmapped, directly below the stack's lowest word, so the
/// first push past the bottom of the stack takes a data abort (translation fault, page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackGuard {
    /// The processor mode whose stack it guards: `SVC`, `IRQ`, `ABT` or `UND`.
    pub mode: &'static str,
    /// Address of the guard page (4 KiB aligned).
    pub page: u32,
}

impl StackGuard {
    /// Whether `addr` lies in this guard page.
    pub fn contains(&self, addr: u32) -> bool {
        addr & !PAGE_MASK == self.page
    }
}

/// Where the kernel's pieces lie in the first MiB (the symbols of linker.ld), with
/// every boundary 4 KiB aligned:
///
/// | range                      | what                              | page attributes     |
/// |----------------------------|-----------------------------------|---------------------|
/// | `0 .. 0x1000`              | exception vectors, ATAGs at 0x100 | read-only, exec     |
/// | `0x1000 .. text_start`     | firmware area below the kernel    | RW, XN              |
/// | `text_start .. text_end`   | `.text` (with boot.S)             | read-only, exec     |
/// | `text_end .. rodata_end`   | `.rodata`                         | read-only, XN       |
/// | `rodata_end .. end`        | `.data`, `.bss`, the mode stacks  | RW, XN              |
/// | each of `guards`           | one page below each mode stack    | unmapped (fault)    |
/// | `end .. 1 MiB`             | unused                            | RW, XN              |
///
/// All pages are normal memory, write-back write-allocate ([`Attrs::normal_wb`]), as the
/// rest of RAM is: no mismatched memory types between the page map and anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    /// First byte of `.text` (`__text_start`, 0x8000).
    pub text_start: u32,
    /// End of `.text`, start of `.rodata` (`__text_end`).
    pub text_end: u32,
    /// End of `.rodata`, start of `.data` (`__rodata_end`).
    pub rodata_end: u32,
    /// First byte after the stacks (`__kernel_end`).
    pub end: u32,
    /// The mode stacks' guard pages, all in `rodata_end..end`.
    pub guards: [StackGuard; 4],
}

impl KernelLayout {
    /// The attributes of the page at `va` (below 1 MiB), or `None` for a guard page.
    pub fn page_attrs(&self, va: u32) -> Option<Attrs> {
        let code = Attrs::normal_wb().read_only();
        let data = Attrs::normal_wb().execute_never();
        if self.guard_at(va).is_some() {
            None
        } else if va < PAGE_SIZE {
            // The vectors run from here; boot.S copied them before the MMU was on.
            Some(code)
        } else if va < self.text_start {
            Some(data)
        } else if va < self.text_end {
            Some(code)
        } else if va < self.rodata_end {
            Some(code.execute_never())
        } else {
            Some(data)
        }
    }

    /// The guard page `addr` lies in, if any.
    pub fn guard_at(&self, addr: u32) -> Option<&StackGuard> {
        self.guards.iter().find(|g| g.contains(addr))
    }

    /// Checks the layout: [`MmuError::Misaligned`] for a boundary or guard that is not
    /// 4 KiB aligned, [`MmuError::OutOfRange`] unless
    /// `0x1000 <= text_start <= text_end <= rodata_end <= end <= 1 MiB` and every guard
    /// lies in `rodata_end..end` (never over code or the vectors).
    pub fn check(&self) -> Result<(), MmuError> {
        let bounds = [self.text_start, self.text_end, self.rodata_end, self.end];
        if let Some(&addr) = bounds
            .iter()
            .chain(self.guards.iter().map(|g| &g.page))
            .find(|&&a| a & PAGE_MASK != 0)
        {
            return Err(MmuError::misaligned(addr, PAGE_SIZE));
        }
        let ordered = PAGE_SIZE <= self.text_start
            && bounds.windows(2).all(|w| w[0] <= w[1])
            && self.end <= SECTION_SIZE;
        let guards_in_data = self
            .guards
            .iter()
            .all(|g| (self.rodata_end..self.end).contains(&g.page));
        if ordered && guards_in_data {
            Ok(())
        } else {
            Err(MmuError::OutOfRange)
        }
    }
}

const _: () = assert!(core::mem::size_of::<PageTable>() == 1024);
const _: () = assert!(core::mem::align_of::<PageTable>() == 1024);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mmu::Access;
    use std::boxed::Box;

    /// Roughly the kernel's real layout (see linker.ld).
    pub(crate) fn layout() -> KernelLayout {
        KernelLayout {
            text_start: 0x8000,
            text_end: 0x1_c000,
            rodata_end: 0x2_0000,
            end: 0x6_d000,
            guards: [
                StackGuard {
                    mode: "UND",
                    page: 0x2_a000,
                },
                StackGuard {
                    mode: "ABT",
                    page: 0x2_c000,
                },
                StackGuard {
                    mode: "IRQ",
                    page: 0x2_f000,
                },
                StackGuard {
                    mode: "SVC",
                    page: 0x3_2000,
                },
            ],
        }
    }

    #[test]
    fn new_table_is_all_fault_and_aligned() {
        let t = Box::new(PageTable::new());
        assert_eq!(t.address() % 1024, 0);
        assert!((0..256).all(|i| t.raw(i) == Some(0)));
        assert_eq!(t.raw(256), None);
        assert_eq!(t.translate(0x1234), None);
        assert_eq!(t.entry(0), L2Entry::Fault);
    }

    #[test]
    fn map_translate_and_refusals() {
        let mut t = Box::new(PageTable::new());
        t.map_pages(
            0x0030_2000,
            0x0123_4000,
            2,
            Attrs::normal_wb().execute_never(),
        )
        .unwrap();
        assert_eq!(t.raw(2), Some(0x0123_405F));
        assert_eq!(t.raw(3), Some(0x0123_505F));
        assert_eq!(t.translate(0x0030_2abc), Some(0x0123_4abc));
        assert_eq!(t.translate(0x0030_3fff), Some(0x0123_5fff));
        assert_eq!(t.translate(0x0030_4000), None);
        assert!(t.page(0x0030_2000).unwrap().attrs().execute_never);
        assert_eq!(
            t.map_page(0x0030_2800, 0, Attrs::normal_wb()),
            Err(MmuError::misaligned(0x0030_2800, PAGE_SIZE))
        );
        assert_eq!(
            t.map_page(0x1000, 0x10, Attrs::normal_wb()),
            Err(MmuError::misaligned(0x10, PAGE_SIZE))
        );
        assert_eq!(
            t.map_pages(0x0030_1000, 0, 2, Attrs::normal_wb()),
            Err(MmuError::AlreadyMapped { va: 0x0030_2000 })
        );
        assert_eq!(t.raw(1), Some(0), "all or nothing");
        assert_eq!(
            t.map_pages(0x000F_F000, 0, 2, Attrs::normal_wb()),
            Err(MmuError::OutOfRange)
        );
        assert_eq!(
            t.map_pages(0, 0xFFFF_F000, 2, Attrs::normal_wb()),
            Err(MmuError::OutOfRange)
        );
        assert_eq!(
            t.map_pages(0, 0, 0, Attrs::normal_wb()),
            Err(MmuError::ZeroSize)
        );
        // A large page is followed when translating.
        t.entries[0x10] = 0x0abc_0001;
        assert_eq!(t.translate(0x0001_0123), Some(0x0abc_0123));
    }

    #[test]
    fn kernel_map_permissions_and_guards() {
        let l = layout();
        let mut t = Box::new(PageTable::new());
        t.map_page(0, 0, Attrs::device()).unwrap(); // cleared by the build
        t.build_kernel_map(&l).unwrap();
        let rw_xn = Attrs::normal_wb().execute_never();
        for i in 0..256u32 {
            let va = i << 12;
            let raw = t.raw(i as usize).unwrap();
            let guard = l.guards.iter().any(|g| g.page == va);
            if guard {
                assert_eq!(raw, 0, "guard page {va:#x} must fault");
                assert_eq!(t.translate(va), None);
                continue;
            }
            let d = t
                .page(va)
                .unwrap_or_else(|| panic!("page {va:#x} unmapped"));
            assert_eq!(d.base(), va, "identity");
            let a = d.attrs();
            assert_eq!(
                a.memory,
                Attrs::normal_wb().memory,
                "{va:#x} cacheable WB-WA"
            );
            // W^X: no page both writable and executable.
            assert!(
                !(a.access.privileged_writable() && !a.execute_never),
                "{va:#x} is W and X"
            );
            let expected = match va {
                0 => Attrs::normal_wb().read_only(),
                0x1000..=0x7fff => rw_xn,
                0x8000..=0x1_bfff => Attrs::normal_wb().read_only(),
                0x1_c000..=0x1_ffff => Attrs::normal_wb().read_only().execute_never(),
                _ => rw_xn,
            };
            assert_eq!(a, expected, "page {va:#x}");
        }
        // Exact words: vectors RO+X, text RO+X, rodata RO+XN, data RW+XN.
        assert_eq!(t.raw(0), Some(0x0000_025E));
        assert_eq!(t.raw(8), Some(0x0000_825E));
        assert_eq!(t.raw(0x1c), Some(0x0001_C25F));
        assert_eq!(t.raw(0x20), Some(0x0002_005F));
        assert_eq!(t.page(0x2_0000).unwrap().attrs().access, Access::PrivRw);
        assert_eq!(t.raw(0xff), Some(0x000F_F05F));
        assert_eq!((0..256).filter(|&i| t.raw(i) == Some(0)).count(), 4);
    }

    #[test]
    fn guard_lookup() {
        let l = layout();
        assert_eq!(l.guard_at(0x3_2000).map(|g| g.mode), Some("SVC"));
        assert_eq!(l.guard_at(0x3_2ffc).map(|g| g.mode), Some("SVC"));
        assert_eq!(l.guard_at(0x2_a004).map(|g| g.mode), Some("UND"));
        assert_eq!(l.guard_at(0x3_3000), None);
        assert_eq!(l.guard_at(0x3_1ffc), None);
        assert_eq!(l.page_attrs(0x2_f000), None);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let mut t = Box::new(PageTable::new());
        let mut l = layout();
        l.text_end = 0x1_c100;
        assert_eq!(
            t.build_kernel_map(&l),
            Err(MmuError::misaligned(0x1_c100, PAGE_SIZE))
        );
        let mut l = layout();
        l.guards[3].page = 0x3_2800;
        assert_eq!(
            t.build_kernel_map(&l),
            Err(MmuError::misaligned(0x3_2800, PAGE_SIZE))
        );
        let mut l = layout();
        l.guards[0].page = 0x9000; // over the code
        assert_eq!(t.build_kernel_map(&l), Err(MmuError::OutOfRange));
        let mut l = layout();
        l.end = 0x10_1000; // past the first MiB
        assert_eq!(t.build_kernel_map(&l), Err(MmuError::OutOfRange));
        let mut l = layout();
        l.rodata_end = 0x1_0000; // before text_end
        assert_eq!(t.build_kernel_map(&l), Err(MmuError::OutOfRange));
        let mut l = layout();
        l.text_start = 0; // over the vectors
        assert_eq!(t.build_kernel_map(&l), Err(MmuError::OutOfRange));
        assert!(
            (0..256).all(|i| t.raw(i) == Some(0)),
            "refusals write nothing"
        );
    }
}
