//! Command-line parsing for the shell: splitting a line into words and reading
//! numbers (decimal or `0x` hex) with one-line errors.

use core::fmt;

/// Words of a command line that are split out; commands with a fixed number of
/// arguments use them (and reject a word beyond their last argument), commands
/// taking the rest of the line (`echo`, `push TEXT`, `pushx`) read the line.
pub const MAX_WORDS: usize = 16;

/// The first [`MAX_WORDS`] words of a line.
pub type Words<'a> = heapless::Vec<&'a str, MAX_WORDS>;

/// Argument errors; each renders as the text after `error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// A word that should be a number is not one.
    BadNumber(&'a str),
    /// A number out of the command's range.
    OutOfRange {
        /// Which argument.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A required argument is missing.
    Missing(&'static str),
    /// More arguments than the command takes.
    Extra(&'a str),
    /// A bad hex string.
    BadHex(&'a str),
    /// Anything else, fixed text.
    Other(&'static str),
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::BadNumber(w) => {
                write!(f, "invalid number '")?;
                write_escaped(f, w)?;
                write!(f, "' (use decimal or 0x-hex)")
            }
            ArgError::OutOfRange { what, value, max } => {
                write!(f, "{what} {value} out of range (at most {max})")
            }
            ArgError::Missing(what) => write!(f, "missing {what}"),
            ArgError::Extra(w) => {
                write!(f, "unexpected argument '")?;
                write_escaped(f, w)?;
                write!(f, "'")
            }
            ArgError::BadHex(w) => {
                write!(f, "invalid hex '")?;
                write_escaped(f, w)?;
                write!(f, "' (pairs of 0-9a-f)")
            }
            ArgError::Other(s) => f.write_str(s),
        }
    }
}

/// Writes `s` with control and non-ASCII characters escaped ([`crate::escape`]), so
/// an error line stays one printable line whatever the user typed.
pub fn write_escaped(f: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    crate::escape::write_str(f, s)
}

/// Splits `line` on ASCII whitespace, keeping the first [`MAX_WORDS`] words.
pub fn split(line: &str) -> Words<'_> {
    line.split_ascii_whitespace().take(MAX_WORDS).collect()
}

/// Parses a decimal or `0x`/`0X` hexadecimal number (underscores allowed as
/// separators, as in `0x8000_0000`).
pub fn parse_u64(word: &str) -> Result<u64, ArgError<'_>> {
    let (digits, radix) = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (word, 10),
    };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' && any {
            continue;
        }
        let d = c.to_digit(radix).ok_or(ArgError::BadNumber(word))?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(ArgError::BadNumber(word))?;
        any = true;
    }
    if !any {
        return Err(ArgError::BadNumber(word));
    }
    Ok(value)
}

/// Parses a number and checks it against `max`.
pub fn parse_max<'a>(word: &'a str, what: &'static str, max: u64) -> Result<u64, ArgError<'a>> {
    let v = parse_u64(word)?;
    if v > max {
        return Err(ArgError::OutOfRange {
            what,
            value: v,
            max,
        });
    }
    Ok(v)
}

/// Decodes a hex string (`0a1B...`, even length) into `out`; returns the length.
pub fn parse_hex<'a>(word: &'a str, out: &mut [u8]) -> Result<usize, ArgError<'a>> {
    let b = word.as_bytes();
    if !b.len().is_multiple_of(2) || b.len() / 2 > out.len() {
        return Err(ArgError::BadHex(word));
    }
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char)
            .to_digit(16)
            .ok_or(ArgError::BadHex(word))?;
        let lo = (pair[1] as char)
            .to_digit(16)
            .ok_or(ArgError::BadHex(word))?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(b.len() / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0"), Ok(0));
        assert_eq!(parse_u64("4096"), Ok(4096));
        assert_eq!(parse_u64("0x8000_0000"), Ok(0x8000_0000));
        assert_eq!(parse_u64("0XfF"), Ok(255));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_u64("18446744073709551616").is_err());
        for bad in ["", "0x", "abc", "12a", "-1", "_1", "0x_"] {
            assert_eq!(parse_u64(bad), Err(ArgError::BadNumber(bad)), "{bad}");
        }
        assert_eq!(
            parse_u64("abc").unwrap_err().to_string(),
            "invalid number 'abc' (use decimal or 0x-hex)"
        );
        assert_eq!(
            parse_max("10", "LEN", 9).unwrap_err().to_string(),
            "LEN 10 out of range (at most 9)"
        );
    }

    #[test]
    fn hex_and_words() {
        let mut out = [0u8; 4];
        assert_eq!(parse_hex("00ff7A", &mut out), Ok(3));
        assert_eq!(&out[..3], &[0, 255, 0x7a]);
        assert!(parse_hex("0g", &mut out).is_err());
        assert!(parse_hex("abc", &mut out).is_err());
        assert!(parse_hex("0011223344", &mut out).is_err());
        assert_eq!(split("  a  b\tc ").as_slice(), &["a", "b", "c"]);
        // More words than MAX_WORDS: the first ones, no error (the commands
        // that take the rest of the line read the line itself).
        let many = "a ".repeat(MAX_WORDS + 5);
        assert_eq!(split(&many).len(), MAX_WORDS);
        assert_eq!(
            ArgError::BadNumber("\u{1}é").to_string(),
            "invalid number '\\x01\\u{e9}' (use decimal or 0x-hex)"
        );
    }
}
