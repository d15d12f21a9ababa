//! [`Memory`]: the one owner of the MMU and RAM after boot: the live translation
//! table, the allocators of physical sections and virtual windows, and the rings
//! made from them. The kernel state owns it; the shell's platform borrows it for a
//! command.

use core::fmt;

use vmcirc::mmu::{
    mirror_create, mirror_destroy, LiveTable, MmuError, SectionAllocator, SectionMirror,
    WindowAllocator,
};
use vmcirc::shell::ring::Rings;

/// See the module docs.
pub struct Memory {
    table: LiveTable,
    /// `None` when no whole MiB of RAM lies above the kernel.
    sections: Option<SectionAllocator>,
    windows: WindowAllocator,
    rings: Rings<SectionMirror>,
}

impl Memory {
    /// The live table, and the allocator of the free RAM above the kernel.
    pub fn new(table: LiveTable, sections: Option<SectionAllocator>) -> Self {
        Memory {
            table,
            sections,
            windows: WindowAllocator::new(),
            rings: Rings::default(),
        }
    }

    /// The rings.
    pub fn rings(&mut self) -> &mut Rings<SectionMirror> {
        &mut self.rings
    }

    /// A mirror of `mib` MiB from the free RAM; `None` when there is no free RAM.
    pub fn create_mirror(&mut self, mib: u32) -> Option<Result<SectionMirror, MmuError>> {
        let sections = self.sections.as_mut()?;
        Some(mirror_create(
            &mut self.table,
            sections,
            &mut self.windows,
            mib,
        ))
    }

    /// Unmaps `mirror` and frees its RAM and window. A mirror this memory did not
    /// make is refused, and then its mapping and memory stay as they were.
    pub fn destroy_mirror(&mut self, mirror: SectionMirror) {
        if let Some(sections) = self.sections.as_mut() {
            let _ = mirror_destroy(&mut self.table, sections, &mut self.windows, mirror);
        }
    }

    /// The `map` command: the non-identity mappings and the free RAM for rings.
    pub fn write_map(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let mut any = false;
        for run in self.table.table().non_identity_runs() {
            writeln!(out, "{run}")?;
            any = true;
        }
        if !any {
            writeln!(
                out,
                "only the identity map (RAM and peripherals); no rings mapped"
            )?;
        }
        if let Some(s) = &self.sections {
            let (lo, hi) = s.range();
            writeln!(
                out,
                "free RAM for rings: {} of {} MiB ({:#010x}..{:#010x}), largest run {} MiB",
                s.free_sections(),
                s.total_sections(),
                lo,
                hi,
                s.largest_free_run()
            )?;
        }
        Ok(())
    }
}
