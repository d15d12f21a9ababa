//! The firmware's ATAG list (the ARM Linux boot protocol, Documentation/arm/Booting:
//! a list of tags at 0x100, each `size` words long, `ATAG_CORE` first, `ATAG_NONE`
//! last), read for its memory tags when the mailbox does not answer.

/// First tag of a list.
pub const ATAG_CORE: u32 = 0x5441_0001;
/// A memory bank: size, start.
pub const ATAG_MEM: u32 = 0x5441_0002;
/// End of the list.
pub const ATAG_NONE: u32 = 0;

/// The total size of the `ATAG_MEM` banks in `words` (the list as 32-bit words from
/// its start), or `None` when it is not an ATAG list or names no memory. Never reads
/// outside `words`, whatever the sizes in it say.
pub fn memory_bytes(words: &[u32]) -> Option<u32> {
    if words.get(1) != Some(&ATAG_CORE) {
        return None;
    }
    let mut at = 0usize;
    let mut total = 0u32;
    while let (Some(&size), Some(&tag)) = (words.get(at), words.get(at + 1)) {
        if tag == ATAG_NONE || size < 2 {
            break;
        }
        if tag == ATAG_MEM {
            total = total.saturating_add(words.get(at + 2).copied().unwrap_or(0));
        }
        at = at.saturating_add(size as usize);
    }
    (total != 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_from_a_list() {
        // CORE (5 words), MEM 448 MiB at 0, NONE.
        let list = [
            5,
            ATAG_CORE,
            0,
            4096,
            0,
            4,
            ATAG_MEM,
            448 << 20,
            0,
            0,
            ATAG_NONE,
        ];
        assert_eq!(memory_bytes(&list), Some(448 << 20));
        // Two banks add up.
        let two = [
            2,
            ATAG_CORE,
            4,
            ATAG_MEM,
            1 << 20,
            0,
            4,
            ATAG_MEM,
            2 << 20,
            0,
            0,
            0,
        ];
        assert_eq!(memory_bytes(&two), Some(3 << 20));
    }

    #[test]
    fn garbage_is_refused_without_reading_outside() {
        assert_eq!(memory_bytes(&[]), None);
        assert_eq!(
            memory_bytes(&[0xd00d_feed, 0x1234]),
            None,
            "a device tree, not ATAGs"
        );
        assert_eq!(memory_bytes(&[2, ATAG_CORE, 0, 0]), None, "no memory tag");
        // A huge size runs off the end: stops there.
        assert_eq!(memory_bytes(&[u32::MAX, ATAG_CORE, 4, ATAG_MEM]), None);
        // A memory tag cut short.
        assert_eq!(memory_bytes(&[2, ATAG_CORE, 4, ATAG_MEM]), None);
    }
}
