//! Terminal-control filtering: turns what a terminal program sends into the plain
//! text the script checks match against.
//!
//! ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, two-byte
//! `ESC x`) and control characters other than `\n` and `\t` (so `\r`, BEL, backspace)
//! are removed. The filter works byte by byte with its state kept between calls, so
//! a sequence split across reads is still removed; a malformed CSI resynchronises at
//! the first byte that cannot belong to it instead of eating the rest of the output,
//! and an OSC string ends after 256 bytes at most.

/// The filter's state between bytes.
#[derive(Default)]
pub struct Filter {
    state: State,
}

#[derive(Default, Clone, Copy)]
enum State {
    #[default]
    Normal,
    Esc,
    /// Inside a CSI, with the number of parameter bytes so far.
    Csi(u8),
    /// Inside an OSC string, with its length so far and whether an ESC (of an ST)
    /// was the last byte.
    Osc(u16, bool),
}

impl Filter {
    /// Filters `data`, appending the text to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            self.push(b, out);
        }
    }

    fn push(&mut self, b: u8, out: &mut Vec<u8>) {
        use State::*;
        self.state = match self.state {
            Normal => return self.normal(b, out),
            Esc => match b {
                b'[' => Csi(0),
                b']' => Osc(0, false),
                0x20..=0x7e => Normal, // a two-byte sequence such as ESC c
                _ => return self.normal(b, out),
            },
            Csi(n) => match b {
                0x20..=0x3f if n < 32 => Csi(n + 1),
                0x40..=0x7e => Normal,
                _ => return self.normal(b, out), // malformed: resync
            },
            Osc(n, saw_esc) => match b {
                0x07 => Normal,
                b'\\' if saw_esc => Normal,
                0x1b => Osc(n + 1, true),
                _ if n >= 256 => Normal,
                _ => Osc(n + 1, false),
            },
        };
    }

    fn normal(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = State::Normal;
        match b {
            0x1b => self.state = State::Esc,
            b'\n' | b'\t' => out.push(b),
            0x00..=0x1f | 0x7f => {}
            _ => out.push(b),
        }
    }
}

/// `data` as a terminal shows it, in one go (for text the tool itself sends, such as
/// the echo it expects of a command line).
pub fn clean(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    Filter::default().feed(data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fed byte by byte: sequences split across reads must still be removed.
    fn bytewise(raw: &[u8]) -> Vec<u8> {
        let mut f = Filter::default();
        let mut out = Vec::new();
        for b in raw {
            f.feed(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out, clean(raw), "split reads change nothing");
        out
    }

    #[test]
    fn removes_terminal_control() {
        assert_eq!(
            bytewise(b"a\x1b[6nb\r\n\x1b[1;32mc\x1b[0m\x07\x08"),
            b"ab\nc"
        );
        assert_eq!(bytewise(b"x\x1b]0;title\x07y\x1b]2;t\x1b\\z"), b"xyz");
        assert_eq!(bytewise(b"tab\there\x1bcok"), b"tab\thereok");
        // Malformed CSI resyncs instead of eating the rest of the output.
        assert_eq!(bytewise(b"a\x1b[12\nb"), b"a\nb");
        // An unterminated OSC ends after 256 bytes.
        let mut long = b"\x1b]".to_vec();
        long.extend(std::iter::repeat_n(b'x', 300));
        assert_eq!(bytewise(&long).len(), 300 - 257);
    }
}
