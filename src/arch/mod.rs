//! ARM1176JZF-S specifics the rest of the kernel needs: decoding the CPU id (MIDR)
//! and fault status registers into words, the fault report line, and interrupt
//! masking / wait-for-interrupt (ARMv6 forms). The decoders are plain functions,
//! tested on the host; the instructions sit behind `cfg(target_arch = "arm")`.

pub mod cpu;
pub mod fault;

/// A decoded Main ID Register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuId {
    /// Implementer name ("ARM" for 0x41).
    pub implementer: &'static str,
    /// Part name ("ARM1176" for 0xB76).
    pub part: &'static str,
    /// Major revision (variant field).
    pub variant: u32,
    /// Minor revision.
    pub revision: u32,
    /// The raw register.
    pub raw: u32,
}

/// Decodes MIDR (c0, c0, 0). QEMU's and the real ARM1176JZF-S r0p7 read 0x410FB767.
pub fn decode_midr(midr: u32) -> CpuId {
    let implementer = match midr >> 24 {
        0x41 => "ARM",
        0x69 => "Intel",
        _ => "unknown",
    };
    let part = match (midr >> 4) & 0xfff {
        0xb76 => "ARM1176",
        0xb36 => "ARM1136",
        0xb56 => "ARM1156",
        0xb02 => "ARM11 MPCore",
        0xc07 => "Cortex-A7",
        0xd03 => "Cortex-A53",
        _ => "unknown part",
    };
    CpuId {
        implementer,
        part,
        variant: (midr >> 20) & 0xf,
        revision: midr & 0xf,
        raw: midr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm1176_midr() {
        let id = decode_midr(0x410f_b767);
        assert_eq!(id.implementer, "ARM");
        assert_eq!(id.part, "ARM1176");
        assert_eq!((id.variant, id.revision), (0, 7));
    }
}
