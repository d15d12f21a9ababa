//! ARMv6 short-descriptor translation tables for the ARM1176JZF-S, and the mirrored
//! section windows the ring buffer lives in.
//!
//! First-level (L1) 1 MiB sections map almost everything: 4096 entries cover the 4 GiB
//! virtual space. The one exception is the first MiB, which goes through a coarse
//! second-level table of 4 KiB pages ([`PageTable`]) so the kernel image gets per-page
//! permissions and each mode stack an unmapped guard page. The split follows the
//! project's generic / CPU / board layering:
//!
//! | file            | what                                                             | host-testable |
//! |-----------------|------------------------------------------------------------------|---------------|
//! | `descriptor.rs` | typed L1 and L2 descriptors (`bitfield`), [`Attrs`] presets      | yes           |
//! | `table.rs`      | [`TranslationTable`]: map / unmap / translate, the boot map      | yes           |
//! | `page.rs`       | [`PageTable`] (L2, small pages), [`KernelLayout`], stack guards  | yes           |
//! | `live.rs`       | [`LiveTable`]: changes to the table the MMU walks, with maintenance | yes (recorded) |
//! | `cp15.rs`       | one function per cp15 operation, [`enable_mmu`], [`mmu_state`]   | recorded fake |
//! | `alloc.rs`      | [`SectionAllocator`] (physical MiB), [`WindowAllocator`] (virtual) | yes         |
//! | `mirror.rs`     | [`SectionMirror`]: K MiB mapped twice back to back               | table side    |
//!
//! On a target other than `arm` the cp15 operations do nothing (and, under `cfg(test)`,
//! record themselves), so the same code builds tables and mirrors in host tests.
//!
//! # Virtual memory map
//!
//! | virtual                     | physical            | attributes                     |
//! |-----------------------------|---------------------|--------------------------------|
//! | `0x0000_0000..0x0010_0000`  | identity, 4 KiB pages | normal WB-WA; per page, see [`KernelLayout`]: vectors and `.text` priv RO exec, `.rodata` priv RO XN, the rest priv RW XN, stack guard pages fault |
//! | `0x0010_0000..ram_bytes`    | identity            | normal WB-WA, priv RW, exec    |
//! | `ram_bytes..0x2000_0000`    | -                   | fault                          |
//! | `0x2000_0000..0x2100_0000`  | identity (BCM2835 peripherals) | shared device, priv RW, XN |
//! | `0x2100_0000..0x8000_0000`  | -                   | fault                          |
//! | `0x8000_0000..0xFFF0_0000`  | mirror windows: per ring `[store][store][guard]` | normal WB-WA, priv RW, XN |
//! | `0xFFF0_0000..`             | - (left for high vectors)                        | fault          |
//!
//! `ram_bytes` is the ARM memory size the firmware reports (at most 512 MiB on the
//! BCM2835, so RAM never reaches the peripherals). Mirror stores come from the RAM above
//! the kernel image, stacks and heap; they stay identity mapped too, so the shell can
//! look at a store through its physical address as well as through both window halves.
//! Why those three aliases of one physical section stay coherent is explained in
//! `mirror.rs` ([`SectionMirror`]).
//!
//! # Use from the kernel
//!
//! [`enable_mmu`] is the one unsafe hand-off: it consumes the boot table and returns
//! the [`LiveTable`]; from then on mirrors are created and destroyed with safe calls.
//!
//! ```no_run
//! use vmcirc::mmu::{self, MmuError, SectionAllocator, TranslationTable, WindowAllocator};
//!
//! static mut TABLE: TranslationTable = TranslationTable::new();
//!
//! fn boot(ram_bytes: u32, heap_end: u32) -> Result<(), MmuError> {
//!     // SAFETY: early boot, single core: nothing else refers to TABLE.
//!     let table = unsafe { &mut *core::ptr::addr_of_mut!(TABLE) };
//!     table.build_boot_map(ram_bytes)?;
//!     // SAFETY: MMU off; the boot map identity-maps the kernel, stacks, vectors, UART.
//!     let mut live = unsafe { mmu::enable_mmu(table) };
//!     // SAFETY: heap_end..ram_bytes is RAM nothing else uses.
//!     let mut sections = unsafe { SectionAllocator::new(heap_end, ram_bytes) }?;
//!     let mut windows = WindowAllocator::new();
//!     let mirror = mmu::mirror_create(&mut live, &mut sections, &mut windows, 1)?;
//!     // ... hand `mirror` to a ring (vmcirc::Ring), take it back when the ring is freed ...
//!     mmu::mirror_destroy(&mut live, &mut sections, &mut windows, mirror).map_err(|(e, _)| e)?;
//!     for run in live.non_identity_runs() {
//!         let _ = run; // the shell's `map`: "0x80000000-0x800fffff -> 0x01000000 1 MiB ..."
//!     }
//!     Ok(())
//! }
//! ```

mod alloc;
pub mod cp15;
mod descriptor;
mod live;
mod mirror;
mod page;
mod table;

use core::fmt;

pub use alloc::{PhysSections, SectionAllocator, VirtWindow, WindowAllocator, MAX_PHYS_SECTIONS};
pub use cp15::{enable_mmu, mmu_state, CacheType, MmuState};
pub use descriptor::{
    Access, Attrs, CachePolicy, CoarseDescriptor, L1Entry, L2Entry, MemoryType, SectionDescriptor,
    SmallPageDescriptor,
};
pub use live::LiveTable;
pub use mirror::{mirror_create, mirror_destroy, SectionMirror};
pub use page::{KernelLayout, PageTable, StackGuard};
pub use table::{MappingRun, Runs, TranslationTable};

/// log2 of the section size.
pub const SECTION_SHIFT: u32 = 20;
/// One section: 1 MiB.
pub const SECTION_SIZE: u32 = 1 << SECTION_SHIFT;
/// Offset bits within a section.
pub const SECTION_MASK: u32 = SECTION_SIZE - 1;
/// log2 of the small page size.
pub const PAGE_SHIFT: u32 = 12;
/// One small page: 4 KiB.
pub const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;
/// Offset bits within a small page.
pub const PAGE_MASK: u32 = PAGE_SIZE - 1;
/// First byte of the BCM2835 peripheral window (ARM physical address).
pub const PERIPHERAL_BASE: u32 = 0x2000_0000;
/// One past the last byte of the peripheral window.
pub const PERIPHERAL_END: u32 = 0x2100_0000;
/// Start of the virtual range the mirror windows are placed in.
pub const MIRROR_VA_BASE: u32 = 0x8000_0000;
/// End of that range (the last MiB stays unmapped for the high vectors).
pub const MIRROR_VA_END: u32 = 0xFFF0_0000;

/// Why a table, allocator or mirror operation was refused. Nothing was changed when one
/// of these is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuError {
    /// An address that must be aligned (1 MiB for a section, 4 KiB for a small page,
    /// 1 KiB for a coarse table) is not.
    Misaligned {
        /// The offending address.
        addr: u32,
        /// The alignment it needs, in bytes.
        align: u32,
    },
    /// A range runs past 4 GiB or outside what the allocator manages.
    OutOfRange,
    /// A size of zero sections.
    ZeroSize,
    /// The virtual section is already mapped (mappings never overlap).
    AlreadyMapped {
        /// Virtual address of the section.
        va: u32,
    },
    /// The virtual section is not mapped by a section descriptor.
    NotMapped {
        /// Virtual address of the section.
        va: u32,
    },
    /// Attributes with no encoding (domain above 15, reserved type or access).
    InvalidAttributes,
    /// Not enough contiguous free physical sections.
    OutOfPhysicalMemory {
        /// MiB asked for.
        requested_mib: u32,
        /// Largest contiguous free run, in MiB.
        largest_free_mib: u32,
    },
    /// Not enough contiguous free virtual space for the window.
    OutOfVirtualSpace {
        /// MiB of window asked for (both halves and the guard section).
        requested_mib: u32,
    },
    /// Freeing sections or a window that this allocator did not hand out.
    NotAllocated,
    /// The table does not hold the mapping a mirror expects at this address.
    MappingMismatch {
        /// Virtual address of the section.
        va: u32,
    },
    /// A byte written through the first half of a new window did not read back through
    /// the second half.
    MirrorSelfTest {
        /// Virtual address of the second-half byte.
        va: u32,
    },
}

impl MmuError {
    /// [`MmuError::Misaligned`]: `addr` is not a multiple of `align` bytes.
    pub const fn misaligned(addr: u32, align: u32) -> Self {
        MmuError::Misaligned { addr, align }
    }
}

impl fmt::Display for MmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmuError::Misaligned { addr, align } => write!(f, "address {addr:#010x} is not {} aligned", Size(align)),
            MmuError::OutOfRange => f.write_str("address range out of bounds"),
            MmuError::ZeroSize => f.write_str("size must be at least one section (1 MiB)"),
            MmuError::AlreadyMapped { va } => write!(f, "virtual section {va:#010x} is already mapped"),
            MmuError::NotMapped { va } => write!(f, "virtual section {va:#010x} is not mapped"),
            MmuError::InvalidAttributes => f.write_str("invalid mapping attributes"),
            MmuError::OutOfPhysicalMemory { requested_mib, largest_free_mib } => write!(
                f,
                "not enough free RAM: {requested_mib} MiB requested, largest free run {largest_free_mib} MiB"
            ),
            MmuError::OutOfVirtualSpace { requested_mib } => {
                write!(f, "no free virtual window of {requested_mib} MiB")
            }
            MmuError::NotAllocated => f.write_str("range was not allocated here"),
            MmuError::MappingMismatch { va } => {
                write!(f, "mapping at {va:#010x} is not the one expected")
            }
            MmuError::MirrorSelfTest { va } => write!(f, "mirror self-test failed at {va:#010x}"),
        }
    }
}

/// An alignment as people write it: `1 MiB`, `4 KiB`, `1 KiB`, `2-byte`.
struct Size(u32);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            a if a >= 1 << 20 && a.is_multiple_of(1 << 20) => write!(f, "{} MiB", a >> 20),
            a if a >= 1 << 10 && a.is_multiple_of(1 << 10) => write!(f, "{} KiB", a >> 10),
            a => write!(f, "{a}-byte"),
        }
    }
}

/// Index of the L1 entry translating `va`.
pub(crate) const fn section_index(va: u32) -> usize {
    (va >> SECTION_SHIFT) as usize
}

/// Checks that `addr` is section aligned.
pub(crate) const fn check_aligned(addr: u32) -> Result<(), MmuError> {
    if addr & SECTION_MASK != 0 {
        Err(MmuError::misaligned(addr, SECTION_SIZE))
    } else {
        Ok(())
    }
}

/// Checks that `count` sections from `addr` stay below 4 GiB.
pub(crate) fn check_span(addr: u32, count: u32) -> Result<(), MmuError> {
    check_aligned(addr)?;
    if count == 0 {
        return Err(MmuError::ZeroSize);
    }
    let end = u64::from(addr) + (u64::from(count) << SECTION_SHIFT);
    if end > 1 << 32 {
        return Err(MmuError::OutOfRange);
    }
    Ok(())
}
