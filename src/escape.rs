//! Byte escaping: the one way this project shows arbitrary bytes on one printable line,
//! and reads such text back.
//!
//! Used by the shell (error lines that quote what the user typed, `peek`) and by the
//! host tool (`vmcirc script` reports and its script syntax), so a byte looks the same
//! wherever it is shown, and what is shown can be typed back into a script.
//!
//! The syntax, C style:
//!
//! | byte | shown as |
//! |---|---|
//! | printable ASCII `0x20..=0x7e` except `\` | itself |
//! | `\` | `\\` |
//! | LF, CR, TAB, ESC | `\n`, `\r`, `\t`, `\e` |
//! | any other byte | `\xNN` (two lower-case hex digits) |
//!
//! [`write_quoted`] puts the text between `"` and also escapes `"` as `\"`.
//! [`write_str`] shows a `&str` by code point: ASCII as above, any other character as
//! `\u{X}` (as Rust's `char::escape_debug`), so an error line stays printable ASCII
//! whatever the user typed.
//!
//! [`unescape`] reads the byte escapes back: `\\` `\n` `\r` `\t` `\e` `\"` `\0`
//! `\xNN` (either case); any other `\` sequence is an error. For every byte string
//! `b`, unescaping what [`write_bytes`] wrote gives `b` again.

use core::fmt::{self, Write as _};

/// The escape of one byte, or `None` when the byte is shown as itself.
fn escape(b: u8, quoted: bool) -> Option<EscapedByte> {
    let fixed = |s: &'static [u8; 2]| Some(EscapedByte::Fixed(*s));
    match b {
        b'\\' => fixed(b"\\\\"),
        b'"' if quoted => fixed(b"\\\""),
        b'\n' => fixed(b"\\n"),
        b'\r' => fixed(b"\\r"),
        b'\t' => fixed(b"\\t"),
        0x1b => fixed(b"\\e"),
        0x20..=0x7e => None,
        _ => Some(EscapedByte::Hex(b)),
    }
}

enum EscapedByte {
    Fixed([u8; 2]),
    Hex(u8),
}

impl EscapedByte {
    fn write(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            EscapedByte::Fixed([a, b]) => {
                out.write_char(char::from(*a))?;
                out.write_char(char::from(*b))
            }
            EscapedByte::Hex(b) => write!(out, "\\x{b:02x}"),
        }
    }
}

fn write_with(out: &mut dyn fmt::Write, bytes: &[u8], quoted: bool) -> fmt::Result {
    // Runs of bytes shown as themselves are written as one `&str`.
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(e) = escape(b, quoted) {
            write_plain(out, &bytes[plain..i])?;
            e.write(out)?;
            plain = i + 1;
        }
    }
    write_plain(out, &bytes[plain..])
}

/// `run` holds only printable ASCII (bytes `escape` passes through).
fn write_plain(out: &mut dyn fmt::Write, run: &[u8]) -> fmt::Result {
    match core::str::from_utf8(run) {
        Ok(s) => out.write_str(s),
        // Unreachable for printable ASCII; never panic for it.
        Err(_) => Err(fmt::Error),
    }
}

/// Writes `bytes` escaped (see the module table).
pub fn write_bytes(out: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    write_with(out, bytes, false)
}

/// Writes `bytes` escaped between double quotes, `"` inside shown as `\"`.
pub fn write_quoted(out: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    out.write_char('"')?;
    write_with(out, bytes, true)?;
    out.write_char('"')
}

/// Writes `s` by code point: ASCII as [`write_bytes`] does, other characters as
/// `\u{X}`.
pub fn write_str(out: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii() {
            // An ASCII char is one byte.
            if let Some(e) = escape(c as u8, false) {
                out.write_str(&s[plain..i])?;
                e.write(out)?;
                plain = i + 1;
            }
        } else {
            out.write_str(&s[plain..i])?;
            write!(out, "\\u{{{:x}}}", u32::from(c))?;
            plain = i + c.len_utf8();
        }
    }
    out.write_str(&s[plain..])
}

/// Displays bytes escaped: `format!("{}", Bytes(b"a\n"))` is `a\n` with a backslash.
#[derive(Clone, Copy, Debug)]
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bytes(f, self.0)
    }
}

/// A bad escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnescapeError {
    /// A `\` at the very end.
    Trailing,
    /// `\x` not followed by two hex digits.
    BadHex,
    /// `\` followed by this byte, which starts no known escape.
    Unknown(u8),
}

impl fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnescapeError::Trailing => f.write_str("trailing `\\` (write `\\\\` for a backslash)"),
            UnescapeError::BadHex => f.write_str("`\\x` needs two hex digits"),
            UnescapeError::Unknown(b) => {
                f.write_str("unknown escape `\\")?;
                write_bytes(f, &[*b])?;
                f.write_char('`')
            }
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reads one escape: `rest` is the text right after a `\`. Returns the byte and how
/// many bytes of `rest` the escape used.
pub fn unescape_one(rest: &[u8]) -> Result<(u8, usize), UnescapeError> {
    let (&e, after) = rest.split_first().ok_or(UnescapeError::Trailing)?;
    let b = match e {
        b'\\' => b'\\',
        b'"' => b'"',
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'e' => 0x1b,
        b'0' => 0,
        b'x' => {
            return match after {
                [h, l, ..] => match (hex_digit(*h), hex_digit(*l)) {
                    (Some(h), Some(l)) => Ok((h << 4 | l, 3)),
                    _ => Err(UnescapeError::BadHex),
                },
                _ => Err(UnescapeError::BadHex),
            }
        }
        other => return Err(UnescapeError::Unknown(other)),
    };
    Ok((b, 1))
}

/// The bytes of escaped text `s`, one at a time; an error ends the iteration.
pub fn unescape(s: &[u8]) -> Unescape<'_> {
    Unescape { rest: s }
}

/// Iterator returned by [`unescape`].
#[derive(Clone, Debug)]
pub struct Unescape<'a> {
    rest: &'a [u8],
}

impl Iterator for Unescape<'_> {
    type Item = Result<u8, UnescapeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&b, after) = self.rest.split_first()?;
        if b != b'\\' {
            self.rest = after;
            return Some(Ok(b));
        }
        match unescape_one(after) {
            Ok((b, used)) => {
                self.rest = after.get(used..).unwrap_or(&[]);
                Some(Ok(b))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec::Vec;

    fn bytes(b: &[u8]) -> String {
        let mut s = String::new();
        write_bytes(&mut s, b).unwrap();
        s
    }

    fn quoted(b: &[u8]) -> String {
        let mut s = String::new();
        write_quoted(&mut s, b).unwrap();
        s
    }

    fn text(t: &str) -> String {
        let mut s = String::new();
        write_str(&mut s, t).unwrap();
        s
    }

    fn back(s: &str) -> Result<Vec<u8>, UnescapeError> {
        unescape(s.as_bytes()).collect()
    }

    #[test]
    fn table() {
        assert_eq!(
            bytes(b"a b~\\\n\r\t\x1b\x00\x7f\x80\xff\"'"),
            r#"a b~\\\n\r\t\e\x00\x7f\x80\xff"'"#
        );
        assert_eq!(bytes(b""), "");
        assert_eq!(format!("{}", Bytes(b"\x1b[6n")), r"\e[6n");
        assert_eq!(quoted(b"say \"hi\"\n"), r#""say \"hi\"\n""#);
        assert_eq!(quoted(b""), r#""""#);
    }

    #[test]
    fn str_by_code_point() {
        assert_eq!(text("\u{1}é\u{d7ff}x\t\\"), r"\x01\u{e9}\u{d7ff}x\t\\");
        assert_eq!(text("plain"), "plain");
        assert_eq!(text("\u{10ffff}"), r"\u{10ffff}");
    }

    #[test]
    fn unescape_reads_the_syntax() {
        assert_eq!(
            back(r#"a\\\n\r\t\e\0\x41\xfF\"b"#).unwrap(),
            b"a\\\n\r\t\x1b\x00A\xff\"b"
        );
        assert_eq!(back(r"x\"), Err(UnescapeError::Trailing));
        assert_eq!(back(r"\x4"), Err(UnescapeError::BadHex));
        assert_eq!(back(r"\xg0"), Err(UnescapeError::BadHex));
        assert_eq!(back(r"\q"), Err(UnescapeError::Unknown(b'q')));
        assert_eq!(
            UnescapeError::Unknown(0x07).to_string(),
            r"unknown escape `\\x07`"
        );
        assert_eq!(unescape_one(b"x41rest"), Ok((b'A', 3)));
        assert_eq!(unescape_one(b"nrest"), Ok((b'\n', 1)));
    }

    proptest! {
        #[test]
        fn round_trip(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let shown = bytes(&b);
            prop_assert!(shown.bytes().all(|c| (0x20..=0x7e).contains(&c)), "{shown:?}");
            prop_assert_eq!(back(&shown).unwrap(), b.clone());
            let q = quoted(&b);
            prop_assert_eq!(back(&q[1..q.len() - 1]).unwrap(), b);
        }

        #[test]
        fn str_is_printable_ascii(s in any::<String>()) {
            let shown = text(&s);
            prop_assert!(shown.bytes().all(|c| (0x20..=0x7e).contains(&c)), "{shown:?}");
            if s.is_ascii() {
                prop_assert_eq!(back(&shown).unwrap(), s.as_bytes());
            }
        }

        #[test]
        fn unescape_never_panics(s in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = unescape(&s).count();
        }
    }
}
