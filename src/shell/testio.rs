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

/// [`MemConsole`]'s time now, without advancing it.
fn fake_now() -> u64 {
    FAKE_US.with(|t| t.get())
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
    /// Input offsets where the sender pauses (ascending), and until when the
    /// current pause lasts.
    pauses: Vec<usize>,
    paused_until: u64,
    ctrl_d_ends_input: bool,
    /// Writes fail once this many bytes were written.
    write_limit: Option<usize>,
}

/// How long a pause set with [`MemConsole::pause_at`] lasts: longer than any
/// timeout of the shell.
pub const PAUSE_US: u64 = 10_000_000;

impl MemConsole {
    /// A console that will read `input`, then report end of input.
    pub fn new(input: &[u8]) -> Self {
        FAKE_US.with(|t| t.set(0));
        MemConsole {
            input: input.to_vec(),
            pos: 0,
            output: Vec::new(),
            closed_when_empty: true,
            pauses: Vec::new(),
            paused_until: 0,
            ctrl_d_ends_input: false,
            write_limit: None,
        }
    }

    /// The sender pauses for [`PAUSE_US`] before input offset `at` (a timeout
    /// in the middle of the input; a blocking read just waits it out).
    pub fn pause_at(&mut self, at: usize) {
        self.pauses.push(at);
        self.pauses.sort_unstable();
    }

    /// Makes Ctrl-D on an empty line end the session (a terminal on the host).
    pub fn set_ctrl_d_ends_input(&mut self, on: bool) {
        self.ctrl_d_ends_input = on;
    }

    /// Every write fails once `n` bytes were written (a closed stdout).
    pub fn fail_writes_after(&mut self, n: usize) {
        self.write_limit = Some(n);
    }

    /// How many input bytes were consumed.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// Whether a pause starts at the current position; starts it if so.
    fn pausing(&mut self) -> bool {
        let now = fake_now();
        if now < self.paused_until {
            return true;
        }
        if self.pauses.first() == Some(&self.pos) {
            self.pauses.remove(0);
            self.paused_until = now + PAUSE_US;
            return true;
        }
        false
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

/// The error of a [`MemConsole`] whose output was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl embedded_io::Error for Closed {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::BrokenPipe
    }
}

impl embedded_io::ErrorType for MemConsole {
    type Error = Closed;
}

impl embedded_io::Read for MemConsole {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() || self.pos >= self.input.len() {
            return Ok(0);
        }
        if self.pausing() {
            // A blocking read waits the pause out.
            FAKE_US.with(|t| t.set(self.paused_until));
        }
        // Up to the next pause.
        let end = self
            .pauses
            .first()
            .copied()
            .filter(|&e| e > self.pos)
            .unwrap_or(self.input.len())
            .min(self.input.len());
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io::Write for MemConsole {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if let Some(limit) = self.write_limit {
            if self.output.len() + buf.len() > limit {
                return Err(Closed);
            }
        }
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
        if self.pausing() {
            return None;
        }
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
    fn ctrl_d_ends_input(&self) -> bool {
        self.ctrl_d_ends_input
    }
}
