//! First-fit allocators of 1 MiB sections: physical RAM for mirror stores
//! ([`SectionAllocator`]) and virtual windows to map them in ([`WindowAllocator`]).
//!
//! Both keep one bit per section in a fixed array, so they need no heap:
//!
//! | allocator           | manages                                           | bits  |
//! |---------------------|---------------------------------------------------|-------|
//! | [`SectionAllocator`]| free RAM above the kernel, up to the firmware's ARM memory size | 512 (BCM2835 max 512 MiB) |
//! | [`WindowAllocator`] | `0x8000_0000..0xFFF0_0000`                        | 2047  |
//!
//! What they hand out are ownership tokens ([`PhysSections`], [`VirtWindow`]): not
//! `Clone`, given back by value to `free`, which checks that this allocator handed them
//! out. Dropping a token leaks its sections (safe, never reused).

use super::{MmuError, MIRROR_VA_BASE, MIRROR_VA_END, SECTION_MASK, SECTION_SHIFT};

/// Most physical sections a [`SectionAllocator`] manages (the BCM2835 has at most
/// 512 MiB of RAM).
pub const MAX_PHYS_SECTIONS: u32 = 512;

/// A bitmap over `len <= 32 * W` sections starting at section number `first`: one
/// `used` bit per section, and a `start` bit on the first section of each allocation so
/// that `free` accepts exactly the ranges `alloc` handed out.
#[derive(Clone, Debug)]
struct Bitmap<const W: usize> {
    used: [u32; W],
    start: [u32; W],
    first: u32,
    len: u32,
}

fn bit<const W: usize>(words: &[u32; W], i: u32) -> bool {
    words[(i / 32) as usize] & (1 << (i % 32)) != 0
}

fn set_bit<const W: usize>(words: &mut [u32; W], i: u32, v: bool) {
    let (w, b) = ((i / 32) as usize, 1u32 << (i % 32));
    if v {
        words[w] |= b;
    } else {
        words[w] &= !b;
    }
}

impl<const W: usize> Bitmap<W> {
    const fn new(first: u32, len: u32) -> Self {
        assert!(len as usize <= W * 32);
        Bitmap {
            used: [0; W],
            start: [0; W],
            first,
            len,
        }
    }

    fn is_used(&self, i: u32) -> bool {
        bit(&self.used, i)
    }

    /// First fit: the lowest run of `count` free bits.
    fn find(&self, count: u32) -> Option<u32> {
        let mut run = 0;
        for i in 0..self.len {
            if self.is_used(i) {
                run = 0;
            } else {
                run += 1;
                if run == count {
                    return Some(i + 1 - count);
                }
            }
        }
        None
    }

    fn free_count(&self) -> u32 {
        (0..self.len).filter(|&i| !self.is_used(i)).count() as u32
    }

    fn largest_free(&self) -> u32 {
        let (mut best, mut run) = (0, 0);
        for i in 0..self.len {
            run = if self.is_used(i) { 0 } else { run + 1 };
            best = best.max(run);
        }
        best
    }

    /// The bit index of `section` if `[section, section + count)` is exactly one
    /// allocation: inside the map, starting with a start bit, all used, no other start
    /// inside, and followed by the end of the map, a free bit or another start.
    fn allocation(&self, section: u32, count: u32) -> Option<u32> {
        let s = section.checked_sub(self.first)?;
        let end = s.checked_add(count)?;
        let exact = count > 0
            && end <= self.len
            && bit(&self.start, s)
            && (s..end).all(|i| self.is_used(i))
            && (s + 1..end).all(|i| !bit(&self.start, i))
            && (end == self.len || !self.is_used(end) || bit(&self.start, end));
        exact.then_some(s)
    }

    fn alloc(&mut self, count: u32) -> Option<u32> {
        let s = self.find(count)?;
        for i in s..s + count {
            set_bit(&mut self.used, i, true);
        }
        set_bit(&mut self.start, s, true);
        Some(self.first + s)
    }

    /// Frees `[section, section + count)` if it is exactly one allocation of this map.
    fn free(&mut self, section: u32, count: u32) -> Result<(), MmuError> {
        let s = self
            .allocation(section, count)
            .ok_or(MmuError::NotAllocated)?;
        for i in s..s + count {
            set_bit(&mut self.used, i, false);
        }
        set_bit(&mut self.start, s, false);
        Ok(())
    }

    fn owns(&self, section: u32, count: u32) -> bool {
        self.allocation(section, count).is_some()
    }
}

/// Contiguous physical sections owned by whoever holds this token.
#[derive(Debug, PartialEq, Eq)]
pub struct PhysSections {
    base: u32,
    count: u32,
}

impl PhysSections {
    /// Physical address of the first section.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Number of sections (MiB).
    pub fn sections(&self) -> u32 {
        self.count
    }

    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        (self.count as usize) << SECTION_SHIFT
    }
}

/// Allocator of free physical RAM in 1 MiB sections (first fit, at most
/// [`MAX_PHYS_SECTIONS`]).
#[derive(Debug)]
pub struct SectionAllocator {
    map: Bitmap<{ MAX_PHYS_SECTIONS as usize / 32 }>,
}

impl SectionAllocator {
    /// Manages the whole sections inside `phys_start..phys_end`: the start is rounded up
    /// and the end down to 1 MiB; beyond [`MAX_PHYS_SECTIONS`] sections the rest is left
    /// unmanaged. The kernel passes the first byte after its image, stacks and heap, and
    /// the ARM memory size the firmware reports.
    ///
    /// Errors: [`MmuError::ZeroSize`] when no whole section fits.
    ///
    /// # Safety
    ///
    /// The range is RAM that nothing else uses for as long as the allocator (or any
    /// section it hands out) lives, no other allocator manages any part of it, and it is
    /// mapped as normal write-back memory wherever it is mapped (the boot identity map).
    pub unsafe fn new(phys_start: u32, phys_end: u32) -> Result<Self, MmuError> {
        let first = phys_start
            .checked_add(SECTION_MASK)
            .ok_or(MmuError::ZeroSize)?
            >> SECTION_SHIFT;
        let end = phys_end >> SECTION_SHIFT;
        if end <= first {
            return Err(MmuError::ZeroSize);
        }
        let len = (end - first).min(MAX_PHYS_SECTIONS);
        Ok(SectionAllocator {
            map: Bitmap::new(first, len),
        })
    }

    /// Allocates `count` contiguous sections, the lowest that fit.
    ///
    /// Errors: [`MmuError::ZeroSize`], [`MmuError::OutOfPhysicalMemory`] (with the
    /// largest free run, for the shell's message).
    pub fn alloc(&mut self, count: u32) -> Result<PhysSections, MmuError> {
        if count == 0 {
            return Err(MmuError::ZeroSize);
        }
        match self.map.alloc(count) {
            Some(s) => Ok(PhysSections {
                base: s << SECTION_SHIFT,
                count,
            }),
            None => Err(MmuError::OutOfPhysicalMemory {
                requested_mib: count,
                largest_free_mib: self.map.largest_free(),
            }),
        }
    }

    /// Gives sections back. Errors ([`MmuError::NotAllocated`], nothing changed) when
    /// they were not allocated here.
    pub fn free(&mut self, sections: PhysSections) -> Result<(), MmuError> {
        self.map
            .free(sections.base >> SECTION_SHIFT, sections.count)
    }

    /// Whether `sections` is currently allocated from this allocator.
    pub fn owns(&self, sections: &PhysSections) -> bool {
        self.map
            .owns(sections.base >> SECTION_SHIFT, sections.count)
    }

    /// The managed physical range `(start, end)`.
    pub fn range(&self) -> (u32, u32) {
        (
            self.map.first << SECTION_SHIFT,
            (self.map.first + self.map.len) << SECTION_SHIFT,
        )
    }

    /// Number of managed sections.
    pub fn total_sections(&self) -> u32 {
        self.map.len
    }

    /// Number of free sections.
    pub fn free_sections(&self) -> u32 {
        self.map.free_count()
    }

    /// The largest contiguous free run: the biggest store that can be allocated now.
    pub fn largest_free_run(&self) -> u32 {
        self.map.largest_free()
    }
}

/// A reserved virtual window: `2 * store` sections for the two mirror halves plus one
/// unmapped guard section after them, so an overrun faults instead of reaching the next
/// window.
#[derive(Debug, PartialEq, Eq)]
pub struct VirtWindow {
    base: u32,
    store: u32,
}

impl VirtWindow {
    /// Virtual address of the first half.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Virtual address of the second half.
    pub fn second_half(&self) -> u32 {
        self.base + (self.store << SECTION_SHIFT)
    }

    /// Virtual address of the guard section.
    pub fn guard(&self) -> u32 {
        self.base + ((2 * self.store) << SECTION_SHIFT)
    }

    /// Sections in one half.
    pub fn half_sections(&self) -> u32 {
        self.store
    }

    /// Sections reserved in all (both halves and the guard).
    pub fn reserved_sections(&self) -> u32 {
        2 * self.store + 1
    }
}

/// Allocator of mirror windows in `0x8000_0000..0xFFF0_0000` (first fit).
#[derive(Debug)]
pub struct WindowAllocator {
    map: Bitmap<64>,
}

impl Default for WindowAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowAllocator {
    /// The whole window range [`MIRROR_VA_BASE`]..[`MIRROR_VA_END`] free.
    ///
    /// Safe: mapping a window checks that every entry is still a fault, so a window that
    /// overlaps another mapping is refused, never aliased.
    pub const fn new() -> Self {
        WindowAllocator {
            map: Bitmap::new(
                MIRROR_VA_BASE >> SECTION_SHIFT,
                (MIRROR_VA_END - MIRROR_VA_BASE) >> SECTION_SHIFT,
            ),
        }
    }

    /// Reserves a window for a store of `store_sections` MiB (`2 * store_sections + 1`
    /// sections of virtual space).
    pub fn alloc(&mut self, store_sections: u32) -> Result<VirtWindow, MmuError> {
        if store_sections == 0 {
            return Err(MmuError::ZeroSize);
        }
        let total = store_sections.checked_mul(2).and_then(|n| n.checked_add(1));
        let err = MmuError::OutOfVirtualSpace {
            requested_mib: total.unwrap_or(u32::MAX),
        };
        let s = self.map.alloc(total.ok_or(err)?).ok_or(err)?;
        Ok(VirtWindow {
            base: s << SECTION_SHIFT,
            store: store_sections,
        })
    }

    /// Gives a window back. Errors ([`MmuError::NotAllocated`], nothing changed) when it
    /// was not reserved here.
    pub fn free(&mut self, window: VirtWindow) -> Result<(), MmuError> {
        self.map
            .free(window.base >> SECTION_SHIFT, window.reserved_sections())
    }

    /// Whether `window` is currently reserved from this allocator.
    pub fn owns(&self, window: &VirtWindow) -> bool {
        self.map
            .owns(window.base >> SECTION_SHIFT, window.reserved_sections())
    }

    /// Number of free virtual sections.
    pub fn free_sections(&self) -> u32 {
        self.map.free_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(start: u32, end: u32) -> SectionAllocator {
        // SAFETY: host test: bookkeeping only, the memory is never touched.
        unsafe { SectionAllocator::new(start, end) }.unwrap()
    }

    #[test]
    fn range_is_rounded_inwards() {
        let a = alloc(0x0012_3456, 0x1C00_0000 + 0x8_0000);
        assert_eq!(a.range(), (0x0020_0000, 0x1C00_0000));
        assert_eq!(a.total_sections(), 0x1C0 - 2);
        assert_eq!(a.free_sections(), a.total_sections());
        // SAFETY: host test, bookkeeping only.
        unsafe {
            assert_eq!(
                SectionAllocator::new(0x0010_0001, 0x0020_0000).unwrap_err(),
                MmuError::ZeroSize
            );
            assert_eq!(
                SectionAllocator::new(0x0300_0000, 0x0200_0000).unwrap_err(),
                MmuError::ZeroSize
            );
            assert_eq!(
                SectionAllocator::new(0xFFFF_FFFF, 0xFFFF_FFFF).unwrap_err(),
                MmuError::ZeroSize
            );
        }
        // More than 512 sections: capped.
        assert_eq!(alloc(0x0010_0000, 0x4000_0000).total_sections(), 512);
    }

    #[test]
    fn first_fit_alloc_and_free() {
        let mut a = alloc(0x0100_0000, 0x0200_0000); // 16 sections
        let x = a.alloc(4).unwrap();
        let y = a.alloc(8).unwrap();
        assert_eq!(
            (x.base(), x.sections(), x.bytes()),
            (0x0100_0000, 4, 4 << 20)
        );
        assert_eq!(y.base(), 0x0140_0000);
        assert_eq!(a.free_sections(), 4);
        assert_eq!(
            a.alloc(5).unwrap_err(),
            MmuError::OutOfPhysicalMemory {
                requested_mib: 5,
                largest_free_mib: 4
            }
        );
        assert!(a.owns(&x));
        a.free(x).unwrap();
        assert_eq!(a.largest_free_run(), 4);
        // First fit: the hole at the bottom is reused for something that fits.
        let z = a.alloc(3).unwrap();
        assert_eq!(z.base(), 0x0100_0000);
        let w = a.alloc(4).unwrap();
        assert_eq!(w.base(), 0x01C0_0000);
        assert_eq!(a.alloc(0).unwrap_err(), MmuError::ZeroSize);
        a.free(y).unwrap();
        a.free(z).unwrap();
        a.free(w).unwrap();
        assert_eq!(a.free_sections(), 16);
        assert_eq!(a.alloc(16).unwrap().base(), 0x0100_0000);
    }

    #[test]
    fn foreign_or_double_free_is_refused() {
        let mut a = alloc(0x0100_0000, 0x0200_0000);
        let mut b = alloc(0x0100_0000, 0x0200_0000);
        let x = a.alloc(2).unwrap();
        assert!(!b.owns(&x));
        assert_eq!(
            b.free(PhysSections {
                base: x.base(),
                count: 2
            }),
            Err(MmuError::NotAllocated)
        );
        assert_eq!(
            a.free(PhysSections {
                base: 0x0100_0000,
                count: 3
            }),
            Err(MmuError::NotAllocated)
        );
        assert_eq!(
            a.free(PhysSections {
                base: 0x0080_0000,
                count: 1
            }),
            Err(MmuError::NotAllocated)
        );
        assert_eq!(
            a.free(PhysSections {
                base: 0x01F0_0000,
                count: 2
            }),
            Err(MmuError::NotAllocated)
        );
        assert_eq!(a.free_sections(), 14);
        a.free(x).unwrap();
        assert_eq!(
            a.free(PhysSections {
                base: 0x0100_0000,
                count: 2
            }),
            Err(MmuError::NotAllocated)
        );
    }

    #[test]
    fn free_accepts_exactly_what_alloc_handed_out() {
        let mut a = alloc(0x0100_0000, 0x0200_0000);
        let x = a.alloc(2).unwrap(); // sections 0x10, 0x11
        let y = a.alloc(3).unwrap(); // 0x12..=0x14
        let fake = |base: u32, count: u32| PhysSections {
            base: base << 20,
            count,
        };
        for (base, count) in [
            (0x10, 1),
            (0x11, 1),
            (0x10, 3),
            (0x10, 5),
            (0x12, 2),
            (0x13, 2),
        ] {
            assert!(!a.owns(&fake(base, count)), "{base:#x}+{count}");
            assert_eq!(a.free(fake(base, count)), Err(MmuError::NotAllocated));
        }
        assert!(a.owns(&x) && a.owns(&y));
        a.free(y).unwrap();
        a.free(x).unwrap();
        assert_eq!(a.free_sections(), 16);
    }

    #[test]
    fn full_bcm2835_range() {
        let mut a = alloc(0x0100_0000, 0x2000_0000);
        assert_eq!(a.total_sections(), 496);
        let all = a.alloc(496).unwrap();
        assert_eq!(
            a.alloc(1).unwrap_err(),
            MmuError::OutOfPhysicalMemory {
                requested_mib: 1,
                largest_free_mib: 0
            }
        );
        a.free(all).unwrap();
    }

    #[test]
    fn windows_have_guards_and_return_on_free() {
        let mut w = WindowAllocator::new();
        assert_eq!(w.free_sections(), 2047);
        let a = w.alloc(1).unwrap();
        assert_eq!(
            (a.base(), a.second_half(), a.guard()),
            (0x8000_0000, 0x8010_0000, 0x8020_0000)
        );
        let b = w.alloc(4).unwrap();
        assert_eq!(
            (b.base(), b.second_half(), b.guard()),
            (0x8030_0000, 0x8070_0000, 0x80B0_0000)
        );
        assert_eq!(b.reserved_sections(), 9);
        let c = w.alloc(2).unwrap();
        let d = w.alloc(3).unwrap();
        assert_eq!((c.base(), d.base()), (0x80C0_0000, 0x8110_0000));
        assert!(w.owns(&b));
        w.free(b).unwrap();
        // Freed virtual range is reused, first fit.
        assert_eq!(w.alloc(4).unwrap().base(), 0x8030_0000);
        assert_eq!(w.alloc(0).unwrap_err(), MmuError::ZeroSize);
        assert_eq!(
            w.alloc(1024).unwrap_err(),
            MmuError::OutOfVirtualSpace {
                requested_mib: 2049
            }
        );
        assert_eq!(
            w.alloc(u32::MAX).unwrap_err(),
            MmuError::OutOfVirtualSpace {
                requested_mib: u32::MAX
            }
        );
        assert_eq!(
            w.free(VirtWindow {
                base: 0x8000_0000,
                store: 2
            }),
            Err(MmuError::NotAllocated)
        );
        w.free(a).unwrap();
        w.free(c).unwrap();
        w.free(d).unwrap();
    }

    #[test]
    fn biggest_window_fits() {
        let mut w = WindowAllocator::new();
        let big = w.alloc(1023).unwrap();
        assert_eq!(big.guard(), 0xFFE0_0000);
        assert_eq!(w.free_sections(), 0);
        w.free(big).unwrap();
    }
}
