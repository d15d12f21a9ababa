//! Board revision codes (the firmware's "new style" scheme, bit 23 set) decoded to
//! a board name and memory size, for `info`.

/// A decoded revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// Marketing name, e.g. "Raspberry Pi Zero W".
    pub name: &'static str,
    /// Total SDRAM in MiB (ARM + VideoCore), when the code says.
    pub memory_mib: Option<u32>,
    /// Board revision (the low nibble), e.g. 2 for "1.2".
    pub board_rev: u32,
}

/// Decodes a revision code. Old-style codes (bit 23 clear) are the original Pi 1
/// boards; new-style codes carry type, memory and revision fields.
pub fn decode(code: u32) -> Board {
    if code & (1 << 23) == 0 {
        // Old-style codes, with the warranty bit (24) masked off.
        let (name, mib) = match code & 0x00ff_ffff {
            0x2..=0x6 | 0xd..=0xf => ("Raspberry Pi 1 Model B", 256),
            0x7..=0x9 => ("Raspberry Pi 1 Model A", 256),
            0x10 | 0x13 => ("Raspberry Pi 1 Model B+", 512),
            0x11 | 0x14 => ("Raspberry Pi Compute Module 1", 512),
            0x12 | 0x15 => ("Raspberry Pi 1 Model A+", 256),
            _ => ("unknown Raspberry Pi (old-style revision)", 0),
        };
        return Board {
            name,
            memory_mib: if mib == 0 { None } else { Some(mib) },
            board_rev: 0,
        };
    }
    let kind = (code >> 4) & 0xff;
    let mem = (code >> 20) & 0x7;
    let name = match kind {
        0x00 => "Raspberry Pi 1 Model A",
        0x01 => "Raspberry Pi 1 Model B",
        0x02 => "Raspberry Pi 1 Model A+",
        0x03 => "Raspberry Pi 1 Model B+",
        0x04 => "Raspberry Pi 2 Model B",
        0x06 => "Raspberry Pi Compute Module 1",
        0x08 => "Raspberry Pi 3 Model B",
        0x09 => "Raspberry Pi Zero",
        0x0c => "Raspberry Pi Zero W",
        0x12 => "Raspberry Pi Zero 2 W",
        _ => "unknown Raspberry Pi",
    };
    Board {
        name,
        memory_mib: if mem <= 5 { Some(256 << mem) } else { None },
        board_rev: code & 0xf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_and_real_codes() {
        // QEMU raspi0 reports 0x920092; raspi1ap 0x900021; a Zero W is 0x9000c1.
        assert_eq!(decode(0x920092).name, "Raspberry Pi Zero");
        assert_eq!(decode(0x920092).memory_mib, Some(512));
        assert_eq!(decode(0x920092).board_rev, 2);
        assert_eq!(decode(0x900021).name, "Raspberry Pi 1 Model A+");
        assert_eq!(decode(0x9000c1).name, "Raspberry Pi Zero W");
        assert_eq!(decode(0x0010).name, "Raspberry Pi 1 Model B+");
        assert_eq!(decode(0x0100_0010).memory_mib, Some(512));
    }
}
