//! An in-memory console for running the shell off the board (host tests, and
//! anything that wants to drive the shell from a byte buffer).

use std::vec::Vec;

use super::{Clock, Console};

std::thread_local! {
    /// The fake time of this thread's [`MemConsole`], in microseconds.
    static FAKE_US: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// [`MemConsole`]'s clock: advances 1 ms every time it is read.
fn fake_clock() -> u64 {
    FAKE_US.with(|t| {
        t.set(t.get() + 1000);
        t.get()
    })
}

/// A console reading from a fixed input and recording the output. Its clock
/// advances 1 ms every time it is read (and every time input is polled), so
/// timeouts run out quickly; the time is per thread and starts at 0 with each new
/// console.
pub struct MemConsole {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
    closed_when_empty: bool,
}

impl MemConsole {
    /// A console that will read `input`, then report end of input.
    pub fn new(input: &[u8]) -> Self {
        FAKE_US.with(|t| t.set(0));
        MemConsole {
            input: input.to_vec(),
            pos: 0,
            output: Vec::new(),
            closed_when_empty: true,
        }
    }

    /// Whether running out of input counts as closed (no more will come). With
    /// `false` the console behaves like a silent serial line.
    pub fn set_closed_when_empty(&mut self, closed: bool) {
        self.closed_when_empty = closed;
    }

    /// Everything written so far.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// The output as text with the prompt's terminal control removed, for
    /// assertions.
    pub fn text(&self) -> std::string::String {
        let s = std::string::String::from_utf8_lossy(&self.output).into_owned();
        strip_ansi(&s).replace("\r\n", "\n")
    }
}

/// Removes ANSI escape sequences (CSI and two-byte ESC forms) and lone CRs used
/// for redrawing.
pub fn strip_ansi(s: &str) -> std::string::String {
    let mut out = std::string::String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&d) {
                        break;
                    }
                }
            }
        } else if c == '\r' {
            if chars.peek() == Some(&'\n') {
                out.push('\r');
            }
        } else if c != '\x07' {
            out.push(c);
        }
    }
    out
}

impl embedded_io::ErrorType for MemConsole {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for MemConsole {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io::Write for MemConsole {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Console for MemConsole {
    fn try_read_byte(&mut self) -> Option<u8> {
        fake_clock();
        let b = self.input.get(self.pos).copied()?;
        self.pos += 1;
        Some(b)
    }
    fn clock(&self) -> Clock {
        fake_clock
    }
    fn input_closed(&self) -> bool {
        self.closed_when_empty && self.pos >= self.input.len()
    }
}
