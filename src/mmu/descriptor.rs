//! ARMv6 short-descriptor first-level (L1) descriptors, and the second-level small page
//! descriptor ([`SmallPageDescriptor`]), as typed `bitfield` values.
//!
//! The layouts are those of the ARM1176JZF-S TRM (DDI 0301H) chapter 6, *Memory
//! Management Unit*, "Hardware page table translation" / "ARMv6 page table translation
//! subpage AP bits disabled", that is with SCTLR.XP = 1 (which [`super::enable_mmu`]
//! sets). In that format a section descriptor is:
//!
//! | bits    | field  | meaning                                                       |
//! |---------|--------|---------------------------------------------------------------|
//! | 31:20   | base   | section base address, physical address bits 31:20             |
//! | 19      | NS     | non-secure (TrustZone); 0 here: the kernel runs Secure        |
//! | 18      | 0      | 0 = section, 1 = supersection (not used)                      |
//! | 17      | nG     | not global (ASID-tagged in the TLB); 0 here                   |
//! | 16      | S      | shared                                                        |
//! | 15      | APX    | access permission extension (read-only when set)              |
//! | 14:12   | TEX    | type extension, memory type together with C and B             |
//! | 11:10   | AP     | access permissions                                            |
//! | 9       | P      | ECC enable (IMPLEMENTATION DEFINED); 0                        |
//! | 8:5     | domain | one of 16 domains of the DACR                                 |
//! | 4       | XN     | execute never                                                 |
//! | 3       | C      | cacheable (with TEX and B)                                    |
//! | 2       | B      | bufferable (with TEX and C)                                   |
//! | 1:0     | type   | 0b10 = section (0b00 fault, 0b01 coarse page table)           |
//!
//! Bitfield getters and setters are plain memory accesses, which is right for page-table
//! words (they live in RAM and are read by the hardware walker only after the cache and
//! TLB maintenance in [`super::LiveTable`]).

use core::fmt;

use bitfield::bitfield;

use super::{MmuError, PAGE_MASK, PAGE_SHIFT, SECTION_MASK};

/// L1 descriptor type bits \[1:0\] of a fault (unmapped) entry.
pub const TYPE_FAULT: u32 = 0b00;
/// L1 descriptor type bits \[1:0\] of a coarse second-level page table pointer.
pub const TYPE_COARSE: u32 = 0b01;
/// L1 descriptor type bits \[1:0\] of a section (or, with bit 18 set, supersection).
pub const TYPE_SECTION: u32 = 0b10;

bitfield! {
    /// A first-level section descriptor: maps one 1 MiB section (see the module table).
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct SectionDescriptor(u32);
    impl Debug;
    u8;
    /// Descriptor type, bits \[1:0\]: [`TYPE_SECTION`] for a section.
    pub kind, set_kind: 1, 0;
    /// B (bufferable), bit 2.
    pub b, set_b: 2;
    /// C (cacheable), bit 3.
    pub c, set_c: 3;
    /// XN (execute never), bit 4.
    pub xn, set_xn: 4;
    /// Domain, bits \[8:5\].
    pub domain, set_domain: 8, 5;
    /// P (ECC enable, implementation defined), bit 9.
    pub p, set_p: 9;
    /// AP\[1:0\], bits \[11:10\].
    pub ap, set_ap: 11, 10;
    /// TEX\[2:0\], bits \[14:12\].
    pub tex, set_tex: 14, 12;
    /// APX, bit 15.
    pub apx, set_apx: 15;
    /// S (shared), bit 16.
    pub s, set_s: 16;
    /// nG (not global), bit 17.
    pub ng, set_ng: 17;
    /// Supersection, bit 18 (always 0 for the descriptors built here).
    pub supersection, set_supersection: 18;
    /// NS (non-secure), bit 19.
    pub ns, set_ns: 19;
    u16;
    /// Physical section number, bits \[31:20\] (physical address >> 20).
    pub base_index, set_base_index: 31, 20;
}

bitfield! {
    /// A first-level coarse page-table descriptor: points to a 1 KiB second-level table
    /// of 256 small (4 KiB) / large (64 KiB) page entries ([`super::PageTable`]). The boot
    /// map uses one for the first MiB (vectors, kernel image, stacks and their guards).
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct CoarseDescriptor(u32);
    impl Debug;
    u8;
    /// Descriptor type, bits \[1:0\]: [`TYPE_COARSE`].
    pub kind, set_kind: 1, 0;
    /// NS (non-secure), bit 3.
    pub ns, set_ns: 3;
    /// Domain, bits \[8:5\].
    pub domain, set_domain: 8, 5;
    /// P (ECC enable), bit 9.
    pub p, set_p: 9;
    u32;
    /// Second-level table address bits \[31:10\] (address >> 10).
    pub table_index, set_table_index: 31, 10;
}

impl SectionDescriptor {
    /// The raw 32-bit descriptor word.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Builds a section descriptor mapping the section at physical address `pa`.
    ///
    /// Errors: [`MmuError::Misaligned`] when `pa` is not 1 MiB aligned,
    /// [`MmuError::InvalidAttributes`] for a domain above 15 or a memory type / access
    /// that has no encoding (the `Reserved` variants only come from decoding).
    pub fn new(pa: u32, attrs: Attrs) -> Result<Self, MmuError> {
        if pa & SECTION_MASK != 0 {
            return Err(MmuError::misaligned(pa, SECTION_MASK + 1));
        }
        let (tex, c, b) = attrs.memory.encode().ok_or(MmuError::InvalidAttributes)?;
        let (apx, ap) = attrs.access.encode().ok_or(MmuError::InvalidAttributes)?;
        if attrs.domain > 15 {
            return Err(MmuError::InvalidAttributes);
        }
        let mut d = SectionDescriptor(0);
        d.set_kind(TYPE_SECTION as u8);
        d.set_b(b);
        d.set_c(c);
        d.set_xn(attrs.execute_never);
        d.set_domain(attrs.domain);
        d.set_ap(ap);
        d.set_tex(tex);
        d.set_apx(apx);
        d.set_s(attrs.shared);
        d.set_ng(attrs.not_global);
        d.set_base_index((pa >> 20) as u16);
        Ok(d)
    }

    /// The physical base address of the section.
    pub fn base(self) -> u32 {
        u32::from(self.base_index()) << 20
    }

    /// The attributes this descriptor encodes.
    pub fn attrs(self) -> Attrs {
        Attrs {
            memory: MemoryType::decode(self.tex(), self.c(), self.b()),
            access: Access::decode(self.apx(), self.ap()),
            execute_never: self.xn(),
            domain: self.domain(),
            shared: self.s(),
            not_global: self.ng(),
        }
    }
}

impl CoarseDescriptor {
    /// The raw 32-bit descriptor word.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Builds a coarse page-table descriptor for a second-level table at `table_pa`
    /// (1 KiB aligned) in `domain`.
    pub fn new(table_pa: u32, domain: u8) -> Result<Self, MmuError> {
        if table_pa & 0x3ff != 0 {
            return Err(MmuError::misaligned(table_pa, 1 << 10));
        }
        if domain > 15 {
            return Err(MmuError::InvalidAttributes);
        }
        let mut d = CoarseDescriptor(0);
        d.set_kind(TYPE_COARSE as u8);
        d.set_domain(domain);
        d.set_table_index(table_pa >> 10);
        Ok(d)
    }

    /// The physical address of the second-level table.
    pub fn table(self) -> u32 {
        self.table_index() << 10
    }
}

bitfield! {
    /// A second-level *extended small page* descriptor (SCTLR.XP = 1): maps one 4 KiB
    /// page. ARM1176JZF-S TRM (DDI 0301H) §6.11.2, *ARMv6 page table translation subpage
    /// AP bits disabled*, second-level descriptor formats; ARM ARM v6 (DDI 0100I) §B4.7
    /// *Hardware page table translation*, "Second-level descriptor":
    ///
    /// | bits  | field | meaning                                                   |
    /// |-------|-------|-----------------------------------------------------------|
    /// | 31:12 | base  | page base address, physical address bits 31:12            |
    /// | 11    | nG    | not global                                                |
    /// | 10    | S     | shared                                                    |
    /// | 9     | APX   | access permission extension                               |
    /// | 8:6   | TEX   | type extension (memory type with C and B)                 |
    /// | 5:4   | AP    | access permissions                                        |
    /// | 3     | C     | cacheable                                                 |
    /// | 2     | B     | bufferable                                                |
    /// | 1     | 1     | small page (bits\[1:0\] = 0b1x)                            |
    /// | 0     | XN    | execute never                                             |
    ///
    /// There is no domain field: a page is in the domain of the L1 coarse descriptor
    /// that points to its table.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct SmallPageDescriptor(u32);
    impl Debug;
    u8;
    /// XN (execute never), bit 0.
    pub xn, set_xn: 0;
    /// Small page marker, bit 1 (always 1 for a small page).
    pub small, set_small: 1;
    /// B (bufferable), bit 2.
    pub b, set_b: 2;
    /// C (cacheable), bit 3.
    pub c, set_c: 3;
    /// AP\[1:0\], bits \[5:4\].
    pub ap, set_ap: 5, 4;
    /// TEX\[2:0\], bits \[8:6\].
    pub tex, set_tex: 8, 6;
    /// APX, bit 9.
    pub apx, set_apx: 9;
    /// S (shared), bit 10.
    pub s, set_s: 10;
    /// nG (not global), bit 11.
    pub ng, set_ng: 11;
    u32;
    /// Physical page number, bits \[31:12\] (physical address >> 12).
    pub base_index, set_base_index: 31, 12;
}

impl SmallPageDescriptor {
    /// The raw 32-bit descriptor word.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Builds a small page descriptor mapping the 4 KiB page at physical address `pa`.
    ///
    /// `attrs.domain` is not encoded (pages take the domain of their coarse L1 entry)
    /// but must still be 0..=15. Errors: [`MmuError::Misaligned`] when `pa` is not 4 KiB
    /// aligned, [`MmuError::InvalidAttributes`] as for [`SectionDescriptor::new`].
    pub fn new(pa: u32, attrs: Attrs) -> Result<Self, MmuError> {
        if pa & PAGE_MASK != 0 {
            return Err(MmuError::misaligned(pa, PAGE_MASK + 1));
        }
        let (tex, c, b) = attrs.memory.encode().ok_or(MmuError::InvalidAttributes)?;
        let (apx, ap) = attrs.access.encode().ok_or(MmuError::InvalidAttributes)?;
        if attrs.domain > 15 {
            return Err(MmuError::InvalidAttributes);
        }
        let mut d = SmallPageDescriptor(0);
        d.set_small(true);
        d.set_xn(attrs.execute_never);
        d.set_b(b);
        d.set_c(c);
        d.set_ap(ap);
        d.set_tex(tex);
        d.set_apx(apx);
        d.set_s(attrs.shared);
        d.set_ng(attrs.not_global);
        d.set_base_index(pa >> PAGE_SHIFT);
        Ok(d)
    }

    /// The physical base address of the page.
    pub fn base(self) -> u32 {
        self.base_index() << PAGE_SHIFT
    }

    /// The attributes this descriptor encodes (domain 0: the domain is the coarse L1
    /// entry's).
    pub fn attrs(self) -> Attrs {
        Attrs {
            memory: MemoryType::decode(self.tex(), self.c(), self.b()),
            access: Access::decode(self.apx(), self.ap()),
            execute_never: self.xn(),
            domain: 0,
            shared: self.s(),
            not_global: self.ng(),
        }
    }
}

/// One decoded second-level (coarse table) entry, SCTLR.XP = 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L2Entry {
    /// Bits\[1:0\] = 0b00: any access faults (translation fault, page).
    Fault,
    /// Bits\[1:0\] = 0b01: a 64 KiB large page (never written by this module).
    LargePage(u32),
    /// Bits\[1:0\] = 0b1x: a 4 KiB extended small page.
    SmallPage(SmallPageDescriptor),
}

impl L2Entry {
    /// Decodes a raw L2 word.
    pub fn decode(raw: u32) -> Self {
        match raw & 0b11 {
            0b00 => L2Entry::Fault,
            0b01 => L2Entry::LargePage(raw),
            _ => L2Entry::SmallPage(SmallPageDescriptor(raw)),
        }
    }
}

/// One decoded L1 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L1Entry {
    /// Type 0b00: any access faults (translation fault, section).
    Fault,
    /// Type 0b01: a coarse second-level table.
    Coarse(CoarseDescriptor),
    /// Type 0b10 with bit 18 clear: a 1 MiB section.
    Section(SectionDescriptor),
    /// Type 0b10 with bit 18 set: a 16 MiB supersection (never written by this module).
    Supersection(u32),
    /// Type 0b11: reserved with SCTLR.XP = 1 (translation fault).
    Reserved(u32),
}

impl L1Entry {
    /// Decodes a raw L1 word.
    pub fn decode(raw: u32) -> Self {
        match raw & 0b11 {
            TYPE_FAULT => L1Entry::Fault,
            TYPE_COARSE => L1Entry::Coarse(CoarseDescriptor(raw)),
            TYPE_SECTION if raw & (1 << 18) != 0 => L1Entry::Supersection(raw),
            TYPE_SECTION => L1Entry::Section(SectionDescriptor(raw)),
            _ => L1Entry::Reserved(raw),
        }
    }
}

/// A cache policy of one level (inner = L1, outer = beyond).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachePolicy {
    /// Non-cacheable.
    NonCacheable,
    /// Write-back, write-allocate.
    WriteBackWriteAllocate,
    /// Write-through, no write-allocate.
    WriteThrough,
    /// Write-back, no write-allocate.
    WriteBack,
}

impl CachePolicy {
    /// The two-bit encoding used by TEX\[1:0\] (outer) and C,B (inner) when TEX\[2\] = 1.
    const fn bits(self) -> u8 {
        match self {
            CachePolicy::NonCacheable => 0b00,
            CachePolicy::WriteBackWriteAllocate => 0b01,
            CachePolicy::WriteThrough => 0b10,
            CachePolicy::WriteBack => 0b11,
        }
    }

    const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b00 => CachePolicy::NonCacheable,
            0b01 => CachePolicy::WriteBackWriteAllocate,
            0b10 => CachePolicy::WriteThrough,
            _ => CachePolicy::WriteBack,
        }
    }
}

impl fmt::Display for CachePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CachePolicy::NonCacheable => "nc",
            CachePolicy::WriteBackWriteAllocate => "wb-wa",
            CachePolicy::WriteThrough => "wt",
            CachePolicy::WriteBack => "wb",
        })
    }
}

/// The memory type of a region: ARM1176 TRM chapter 6, *Memory region attributes*
/// (TEX, C and B with TEX remap disabled, SCTLR.TR = 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryType {
    /// TEX=000 C=0 B=0: strongly ordered (always shared).
    StronglyOrdered,
    /// TEX=000 C=0 B=1: shared device (the BCM2835 peripherals).
    Device,
    /// TEX=010 C=0 B=0: non-shared device.
    NonSharedDevice,
    /// Normal memory with the given outer and inner cache policies.
    ///
    /// Encoded with the short TEX\[2\]=0 forms when outer == inner (WB-WA is TEX=001
    /// C=1 B=1, non-cacheable TEX=001 C=0 B=0, write-through TEX=000 C=1 B=0, write-back
    /// no allocate TEX=000 C=1 B=1), otherwise as TEX=1OO C,B=II.
    Normal {
        /// Outer (L2 / bus) policy.
        outer: CachePolicy,
        /// Inner (L1) policy.
        inner: CachePolicy,
    },
    /// A reserved TEX/C/B combination found while decoding (never encoded).
    Reserved {
        /// TEX\[2:0\].
        tex: u8,
        /// C.
        c: bool,
        /// B.
        b: bool,
    },
}

impl MemoryType {
    /// (TEX, C, B), or `None` for [`MemoryType::Reserved`].
    pub const fn encode(self) -> Option<(u8, bool, bool)> {
        use CachePolicy::*;
        Some(match self {
            MemoryType::StronglyOrdered => (0b000, false, false),
            MemoryType::Device => (0b000, false, true),
            MemoryType::NonSharedDevice => (0b010, false, false),
            MemoryType::Normal {
                outer: WriteThrough,
                inner: WriteThrough,
            } => (0b000, true, false),
            MemoryType::Normal {
                outer: WriteBack,
                inner: WriteBack,
            } => (0b000, true, true),
            MemoryType::Normal {
                outer: NonCacheable,
                inner: NonCacheable,
            } => (0b001, false, false),
            MemoryType::Normal {
                outer: WriteBackWriteAllocate,
                inner: WriteBackWriteAllocate,
            } => (0b001, true, true),
            MemoryType::Normal { outer, inner } => {
                let i = inner.bits();
                (0b100 | outer.bits(), i & 0b10 != 0, i & 0b01 != 0)
            }
            MemoryType::Reserved { .. } => return None,
        })
    }

    /// Decodes TEX, C, B.
    pub const fn decode(tex: u8, c: bool, b: bool) -> Self {
        use CachePolicy::*;
        const fn same(p: CachePolicy) -> MemoryType {
            MemoryType::Normal { outer: p, inner: p }
        }
        match (tex & 0b111, c, b) {
            (0b000, false, false) => MemoryType::StronglyOrdered,
            (0b000, false, true) => MemoryType::Device,
            (0b000, true, false) => same(WriteThrough),
            (0b000, true, true) => same(WriteBack),
            (0b001, false, false) => same(NonCacheable),
            (0b001, true, true) => same(WriteBackWriteAllocate),
            (0b010, false, false) => MemoryType::NonSharedDevice,
            (t, c, b) if t & 0b100 != 0 => MemoryType::Normal {
                outer: CachePolicy::from_bits(t),
                inner: CachePolicy::from_bits(((c as u8) << 1) | b as u8),
            },
            (tex, c, b) => MemoryType::Reserved { tex, c, b },
        }
    }
}

impl fmt::Display for MemoryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryType::StronglyOrdered => f.write_str("strongly-ordered"),
            MemoryType::Device => f.write_str("device"),
            MemoryType::NonSharedDevice => f.write_str("device-nonshared"),
            MemoryType::Normal { outer, inner } if outer == inner => write!(f, "normal-{inner}"),
            MemoryType::Normal { outer, inner } => write!(f, "normal-o{outer}-i{inner}"),
            MemoryType::Reserved { tex, c, b } => {
                write!(f, "reserved-tex{tex:03b}-c{}-b{}", *c as u8, *b as u8)
            }
        }
    }
}

/// Access permissions (APX, AP\[1:0\]): ARM1176 TRM chapter 6, *Access permissions*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// APX=0 AP=00: no access at all.
    NoAccess,
    /// APX=0 AP=01: privileged read/write, user none.
    PrivRw,
    /// APX=0 AP=10: privileged read/write, user read-only.
    PrivRwUserRo,
    /// APX=0 AP=11: read/write for everyone.
    FullRw,
    /// APX=1 AP=01: privileged read-only, user none.
    PrivRo,
    /// APX=1 AP=10 (or 11): read-only for everyone.
    FullRo,
    /// APX=1 AP=00: reserved (only from decoding).
    Reserved,
}

impl Access {
    /// (APX, AP), or `None` for [`Access::Reserved`].
    pub const fn encode(self) -> Option<(bool, u8)> {
        Some(match self {
            Access::NoAccess => (false, 0b00),
            Access::PrivRw => (false, 0b01),
            Access::PrivRwUserRo => (false, 0b10),
            Access::FullRw => (false, 0b11),
            Access::PrivRo => (true, 0b01),
            Access::FullRo => (true, 0b10),
            Access::Reserved => return None,
        })
    }

    /// Decodes APX, AP.
    pub const fn decode(apx: bool, ap: u8) -> Self {
        match (apx, ap & 0b11) {
            (false, 0b00) => Access::NoAccess,
            (false, 0b01) => Access::PrivRw,
            (false, 0b10) => Access::PrivRwUserRo,
            (false, _) => Access::FullRw,
            (true, 0b00) => Access::Reserved,
            (true, 0b01) => Access::PrivRo,
            (true, _) => Access::FullRo,
        }
    }

    /// Whether privileged code may write.
    pub const fn privileged_writable(self) -> bool {
        matches!(self, Access::PrivRw | Access::PrivRwUserRo | Access::FullRw)
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::NoAccess => "no-access",
            Access::PrivRw => "priv-rw",
            Access::PrivRwUserRo => "priv-rw/user-ro",
            Access::FullRw => "rw",
            Access::PrivRo => "priv-ro",
            Access::FullRo => "ro",
            Access::Reserved => "reserved-ap",
        })
    }
}

/// The attributes of a mapping, independent of its addresses.
///
/// Displayed as space-separated words for the shell's `map` command, e.g.
/// `normal-wb-wa priv-rw` or `device priv-rw xn` (then `shared`, `ng`, `domain=N` when
/// they differ from the defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    /// Memory type and cache policy.
    pub memory: MemoryType,
    /// Access permissions.
    pub access: Access,
    /// XN: instruction fetches fault.
    pub execute_never: bool,
    /// Domain 0..=15 (the kernel makes only domain 0 a client).
    pub domain: u8,
    /// S: shared (meaningful for normal memory only).
    pub shared: bool,
    /// nG: not global (TLB entry tagged with the ASID).
    pub not_global: bool,
}

impl Attrs {
    /// Normal memory, outer and inner write-back write-allocate (TEX=001 C=1 B=1),
    /// privileged read/write (APX=0 AP=01), executable, domain 0, non-shared, global.
    /// The kernel's RAM.
    pub const fn normal_wb() -> Self {
        Attrs {
            memory: MemoryType::Normal {
                outer: CachePolicy::WriteBackWriteAllocate,
                inner: CachePolicy::WriteBackWriteAllocate,
            },
            access: Access::PrivRw,
            execute_never: false,
            domain: 0,
            shared: false,
            not_global: false,
        }
    }

    /// Normal non-cacheable memory (TEX=001 C=0 B=0), privileged read/write, executable.
    pub const fn normal_nc() -> Self {
        Attrs {
            memory: MemoryType::Normal {
                outer: CachePolicy::NonCacheable,
                inner: CachePolicy::NonCacheable,
            },
            ..Self::normal_wb()
        }
    }

    /// Shared device memory (TEX=000 C=0 B=1), privileged read/write, execute never:
    /// the peripheral window.
    pub const fn device() -> Self {
        Attrs {
            memory: MemoryType::Device,
            execute_never: true,
            ..Self::normal_wb()
        }
    }

    /// Strongly-ordered memory (TEX=000 C=0 B=0), privileged read/write, execute never.
    pub const fn strongly_ordered() -> Self {
        Attrs {
            memory: MemoryType::StronglyOrdered,
            ..Self::device()
        }
    }

    /// The same attributes, privileged read-only (APX=1 AP=01).
    pub const fn read_only(self) -> Self {
        Attrs {
            access: Access::PrivRo,
            ..self
        }
    }

    /// The same attributes with XN set.
    pub const fn execute_never(self) -> Self {
        Attrs {
            execute_never: true,
            ..self
        }
    }

    /// The same attributes in another domain (0..=15; others are rejected on encoding).
    pub const fn with_domain(self, domain: u8) -> Self {
        Attrs { domain, ..self }
    }
}

impl fmt::Display for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.memory, self.access)?;
        if self.execute_never {
            f.write_str(" xn")?;
        }
        if self.shared {
            f.write_str(" shared")?;
        }
        if self.not_global {
            f.write_str(" ng")?;
        }
        if self.domain != 0 {
            write!(f, " domain={}", self.domain)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn cacheable_rw_section_at_1mib_exact_word() {
        // base 0x001 | TEX=001 (0x1000) | AP=01 (0x400) | C (0x8) | B (0x4) | type 0b10
        let d = SectionDescriptor::new(0x0010_0000, Attrs::normal_wb()).unwrap();
        assert_eq!(d.raw(), 0x0010_140E);
    }

    #[test]
    fn device_section_exact_word() {
        // base 0x200 | AP=01 | XN (0x10) | B | type
        let d = SectionDescriptor::new(0x2000_0000, Attrs::device()).unwrap();
        assert_eq!(d.raw(), 0x2000_0416);
    }

    #[test]
    fn other_presets_exact_words() {
        let nc = SectionDescriptor::new(0x0030_0000, Attrs::normal_nc()).unwrap();
        assert_eq!(nc.raw(), 0x0030_1402);
        let ro = SectionDescriptor::new(0x0000_0000, Attrs::normal_wb().read_only()).unwrap();
        assert_eq!(ro.raw(), 0x0000_940E); // APX (0x8000) | TEX=001 | AP=01 | C | B
        let so = SectionDescriptor::new(0xFFF0_0000, Attrs::strongly_ordered()).unwrap();
        assert_eq!(so.raw(), 0xFFF0_0412);
        let xn_d3 = SectionDescriptor::new(
            0x8000_0000,
            Attrs::normal_wb().execute_never().with_domain(3),
        )
        .unwrap();
        assert_eq!(xn_d3.raw(), 0x8000_147E); // domain 3 = 0x60, XN = 0x10
    }

    #[test]
    fn misaligned_addresses_are_rejected() {
        for pa in [0x0000_0001, 0x0008_0000, 0x000F_FFFF, 0x2000_1000] {
            assert_eq!(
                SectionDescriptor::new(pa, Attrs::normal_wb()),
                Err(MmuError::misaligned(pa, 1 << 20))
            );
        }
        assert_eq!(
            CoarseDescriptor::new(0x104, 0),
            Err(MmuError::misaligned(0x104, 1 << 10))
        );
    }

    #[test]
    fn invalid_attributes_are_rejected() {
        assert_eq!(
            SectionDescriptor::new(0, Attrs::normal_wb().with_domain(16)),
            Err(MmuError::InvalidAttributes)
        );
        let reserved = Attrs {
            memory: MemoryType::Reserved {
                tex: 0b011,
                c: false,
                b: false,
            },
            ..Attrs::normal_wb()
        };
        assert_eq!(
            SectionDescriptor::new(0, reserved),
            Err(MmuError::InvalidAttributes)
        );
        let bad_ap = Attrs {
            access: Access::Reserved,
            ..Attrs::normal_wb()
        };
        assert_eq!(
            SectionDescriptor::new(0, bad_ap),
            Err(MmuError::InvalidAttributes)
        );
    }

    #[test]
    fn fields_read_back() {
        let d = SectionDescriptor::new(0x1230_0000, Attrs::device()).unwrap();
        assert_eq!(d.kind(), 0b10);
        assert!(d.b() && !d.c() && d.xn() && !d.apx() && !d.s() && !d.ng());
        assert!(!d.supersection() && !d.ns() && !d.p());
        assert_eq!((d.tex(), d.ap(), d.domain()), (0, 0b01, 0));
        assert_eq!(d.base(), 0x1230_0000);
        assert_eq!(d.base_index(), 0x123);
    }

    #[test]
    fn attrs_round_trip() {
        use CachePolicy::*;
        let policies = [
            NonCacheable,
            WriteBackWriteAllocate,
            WriteThrough,
            WriteBack,
        ];
        let mut memories = std::vec![
            MemoryType::StronglyOrdered,
            MemoryType::Device,
            MemoryType::NonSharedDevice
        ];
        for outer in policies {
            for inner in policies {
                memories.push(MemoryType::Normal { outer, inner });
            }
        }
        let accesses = [
            Access::NoAccess,
            Access::PrivRw,
            Access::PrivRwUserRo,
            Access::FullRw,
            Access::PrivRo,
            Access::FullRo,
        ];
        for memory in memories {
            for access in accesses {
                for (xn, shared, ng, domain) in [(false, false, false, 0), (true, true, true, 15)] {
                    let a = Attrs {
                        memory,
                        access,
                        execute_never: xn,
                        domain,
                        shared,
                        not_global: ng,
                    };
                    let d = SectionDescriptor::new(0x0ab0_0000, a).unwrap();
                    assert_eq!(d.attrs(), a, "{a:?} -> {:#010x}", d.raw());
                    assert_eq!(d.base(), 0x0ab0_0000);
                    assert_eq!(L1Entry::decode(d.raw()), L1Entry::Section(d));
                }
            }
        }
    }

    #[test]
    fn long_form_normal_encoding() {
        let a = Attrs {
            memory: MemoryType::Normal {
                outer: CachePolicy::WriteThrough,
                inner: CachePolicy::WriteBackWriteAllocate,
            },
            ..Attrs::normal_wb()
        };
        let d = SectionDescriptor::new(0, a).unwrap();
        assert_eq!((d.tex(), d.c(), d.b()), (0b110, false, true));
        assert_eq!(format!("{}", d.attrs()), "normal-owt-iwb-wa priv-rw");
    }

    #[test]
    fn entry_decoding() {
        assert_eq!(L1Entry::decode(0), L1Entry::Fault);
        assert_eq!(L1Entry::decode(0xFFFF_FFFC), L1Entry::Fault);
        assert_eq!(
            L1Entry::decode(0x0004_0002),
            L1Entry::Supersection(0x0004_0002)
        );
        assert_eq!(L1Entry::decode(3), L1Entry::Reserved(3));
        let c = CoarseDescriptor::new(0x0001_2400, 2).unwrap();
        assert_eq!(c.raw(), 0x0001_2441);
        assert_eq!(L1Entry::decode(c.raw()), L1Entry::Coarse(c));
        assert_eq!(c.table(), 0x0001_2400);
    }

    #[test]
    fn small_page_exact_words() {
        // base 0x8 | APX (0x200) | TEX=001 (0x40) | AP=01 (0x10) | C | B | small (0x2)
        let text = SmallPageDescriptor::new(0x0000_8000, Attrs::normal_wb().read_only()).unwrap();
        assert_eq!(text.raw(), 0x0000_825E);
        // RW data, XN in bit 0
        let data =
            SmallPageDescriptor::new(0x0001_2000, Attrs::normal_wb().execute_never()).unwrap();
        assert_eq!(data.raw(), 0x0001_205F);
        let rodata =
            SmallPageDescriptor::new(0x000F_F000, Attrs::normal_wb().read_only().execute_never())
                .unwrap();
        assert_eq!(rodata.raw(), 0x000F_F25F);
        // device: B | AP=01 | small | XN
        let dev = SmallPageDescriptor::new(0x2020_1000, Attrs::device()).unwrap();
        assert_eq!(dev.raw(), 0x2020_1017);
        let shared_ng = Attrs {
            shared: true,
            not_global: true,
            ..Attrs::normal_nc()
        };
        // TEX=001 | AP=01 | S (0x400) | nG (0x800) | small
        assert_eq!(
            SmallPageDescriptor::new(0xFFFF_F000, shared_ng)
                .unwrap()
                .raw(),
            0xFFFF_FC52
        );
    }

    #[test]
    fn small_page_rejects_misaligned_and_invalid() {
        for pa in [0x0000_0001, 0x0000_0800, 0x0000_8FFF, 0x2020_1004] {
            assert_eq!(
                SmallPageDescriptor::new(pa, Attrs::normal_wb()),
                Err(MmuError::misaligned(pa, 4 << 10))
            );
        }
        assert_eq!(
            SmallPageDescriptor::new(0, Attrs::normal_wb().with_domain(16)),
            Err(MmuError::InvalidAttributes)
        );
        let bad_ap = Attrs {
            access: Access::Reserved,
            ..Attrs::normal_wb()
        };
        assert_eq!(
            SmallPageDescriptor::new(0x1000, bad_ap),
            Err(MmuError::InvalidAttributes)
        );
    }

    #[test]
    fn small_page_round_trip_and_l2_decoding() {
        for a in [
            Attrs::normal_wb(),
            Attrs::normal_wb().read_only(),
            Attrs::normal_wb().execute_never(),
            Attrs::normal_nc().read_only().execute_never(),
            Attrs::device(),
            Attrs::strongly_ordered(),
        ] {
            let d = SmallPageDescriptor::new(0x0ab3_4000, a).unwrap();
            assert_eq!(d.attrs(), a, "{a:?} -> {:#010x}", d.raw());
            assert_eq!(d.base(), 0x0ab3_4000);
            assert!(d.small());
            assert_eq!(L2Entry::decode(d.raw()), L2Entry::SmallPage(d));
        }
        assert_eq!(L2Entry::decode(0), L2Entry::Fault);
        assert_eq!(L2Entry::decode(0xFFFF_FFFC), L2Entry::Fault);
        assert_eq!(
            L2Entry::decode(0x0001_0001),
            L2Entry::LargePage(0x0001_0001)
        );
        // Bit 0 is XN, not part of the type: 0b11 is an executable-never small page.
        assert!(matches!(L2Entry::decode(0x0000_1003), L2Entry::SmallPage(d) if d.xn()));
    }

    #[test]
    fn display_words() {
        assert_eq!(format!("{}", Attrs::normal_wb()), "normal-wb-wa priv-rw");
        assert_eq!(format!("{}", Attrs::device()), "device priv-rw xn");
        assert_eq!(
            format!("{}", Attrs::normal_nc().read_only()),
            "normal-nc priv-ro"
        );
        let a = Attrs {
            shared: true,
            not_global: true,
            ..Attrs::normal_wb().with_domain(2)
        };
        assert_eq!(format!("{a}"), "normal-wb-wa priv-rw shared ng domain=2");
        let r = SectionDescriptor(0x0000_3002).attrs();
        assert_eq!(format!("{}", r.memory), "reserved-tex011-c0-b0");
    }
}
