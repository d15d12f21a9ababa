//! [`Memory`]: the one owner of the MMU and RAM after boot: the live translation
//! table, the allocators of physical sections and virtual windows, the rings made
//! from them, and the buffer a kernel image is loaded into (`load`). The kernel state
//! owns it; the shell's platform borrows it for a command.

use core::fmt;

use vmcirc::mmu::{
    mirror_create, mirror_destroy, LiveTable, MmuError, PhysSections, SectionAllocator,
    SectionMirror, WindowAllocator, SECTION_SHIFT, SECTION_SIZE,
};
use vmcirc::shell::ring::Rings;

/// See the module docs.
pub struct Memory {
    table: LiveTable,
    /// `None` when no whole MiB of RAM lies above the kernel.
    sections: Option<SectionAllocator>,
    windows: WindowAllocator,
    rings: Rings<SectionMirror>,
    /// The sections holding a kernel image being loaded.
    load: Option<PhysSections>,
}

/// Where a loaded image is copied to and started: where the firmware loads
/// `kernel.img`.
pub const IMAGE_START: u32 = 0x8000;
/// Room after a loaded image for the copier (boot.S `chainload` puts it there).
pub const COPIER_ROOM: usize = 256;

impl Memory {
    /// The live table, and the allocator of the free RAM above the kernel.
    pub fn new(table: LiveTable, sections: Option<SectionAllocator>) -> Self {
        Memory {
            table,
            sections,
            windows: WindowAllocator::new(),
            rings: Rings::default(),
            load: None,
        }
    }

    /// A buffer for a kernel image of `len` bytes, in whole free sections (RAM no
    /// ring uses, identity mapped read/write) with [`COPIER_ROOM`] to spare, placed
    /// so that copying the image to [`IMAGE_START`] cannot overwrite it. An earlier
    /// buffer is freed first.
    pub fn load_buffer(&mut self, len: usize) -> Result<&mut [u8], &'static str> {
        self.release_load_buffer();
        let sections = self
            .sections
            .as_mut()
            .ok_or("load: no free RAM above the kernel")?;
        let count = len
            .checked_add(COPIER_ROOM + SECTION_SIZE as usize - 1)
            .map(|n| n >> SECTION_SHIFT)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("load: LEN too large")?;
        let s = sections
            .alloc(count)
            .map_err(|_| "load: not enough free RAM for the image (free a ring?)")?;
        if IMAGE_START as usize + len > s.base() as usize {
            let _ = sections.free(s);
            return Err("load: image too large: it would overwrite its own buffer");
        }
        let (base, bytes) = (s.base() as usize, s.bytes());
        self.load = Some(s);
        // SAFETY: the sections were just allocated, so no ring or other user has
        // them; all RAM is identity mapped normal read/write memory, so `base` is
        // their address and the `bytes` after it are valid, initialised (RAM holds
        // some value) and not aliased while `self` is borrowed.
        Ok(unsafe { core::slice::from_raw_parts_mut(base as *mut u8, bytes) })
    }

    /// The buffer's physical address and size, if one is allocated.
    pub fn load_region(&self) -> Option<(u32, usize)> {
        self.load.as_ref().map(|s| (s.base(), s.bytes()))
    }

    /// Frees the load buffer, if any.
    pub fn release_load_buffer(&mut self) {
        if let (Some(s), Some(sections)) = (self.load.take(), self.sections.as_mut()) {
            let _ = sections.free(s);
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
