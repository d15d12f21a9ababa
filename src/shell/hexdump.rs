//! Hexdump rows: `0x00008000: 01 02 ... 0f 10  |................|`, 16 bytes a row,
//! used by `x` and `dump`.

use core::fmt;

/// Bytes per row.
pub const ROW: usize = 16;

/// Writes one row for up to 16 `bytes` at address `addr`; a short row is padded
/// so the ASCII column lines up. `mark` (when set) is written after the row, e.g.
/// to flag the mirror boundary.
pub fn write_row(out: &mut dyn fmt::Write, addr: u64, bytes: &[u8], mark: &str) -> fmt::Result {
    debug_assert!(bytes.len() <= ROW);
    write!(out, "{addr:#010x}:")?;
    for i in 0..ROW {
        if i == 8 {
            out.write_char(' ')?;
        }
        match bytes.get(i) {
            Some(b) => write!(out, " {b:02x}")?,
            None => out.write_str("   ")?,
        }
    }
    out.write_str("  |")?;
    for &b in bytes {
        out.write_char(if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        })?;
    }
    for _ in bytes.len()..ROW {
        out.write_char(' ')?;
    }
    out.write_char('|')?;
    out.write_str(mark)?;
    out.write_str("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn rows() {
        let mut s = String::new();
        write_row(&mut s, 0x8000, b"Hello, world!\x00\x01\xff", "").unwrap();
        write_row(&mut s, 0x8010, b"ab", " <- mirror").unwrap();
        assert_eq!(
            s,
            "0x00008000: 48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 00 01 ff  |Hello, world!...|\n\
             0x00008010: 61 62                                             |ab              | <- mirror\n"
        );
    }
}
