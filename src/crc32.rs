//! CRC-32 (IEEE 802.3, the zlib/`cksum -o3` polynomial) used by `rx`, uploads and `hs`.
//!
//! A thin wrapper over the `crc` crate so every caller agrees on the algorithm.

/// The CRC-32 algorithm used everywhere in vmcirc (ISO-HDLC, as zlib and Python's `zlib.crc32`).
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 of a whole buffer.
pub fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_vector() {
        // The standard check value for "123456789".
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
