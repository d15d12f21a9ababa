//! In-memory consoles and a fake platform for running the shell off the board
//! (host tests, and anything that wants to drive the shell from a byte buffer).

use std::vec::Vec;

use super::{Console, Platform, PlatformError};

/// A console reading from a fixed input and recording the output. Its clock
/// advances 1 ms every time it is read, so timeouts run out quickly.
pub struct MemConsole {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
    clock: u64,
    closed_when_empty: bool,
}

impl MemConsole {
    /// A console that will read `input`, then report end of input.
    pub fn new(input: &[u8]) -> Self {
        MemConsole {
            input: input.to_vec(),
            pos: 0,
            output: Vec::new(),
            clock: 0,
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
            match chars.next() {
                Some('[') => {
                    for d in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&d) {
                            break;
                        }
                    }
                }
                Some(_) | None => {}
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
        self.clock += 1000;
        let b = self.input.get(self.pos).copied()?;
        self.pos += 1;
        Some(b)
    }
    fn now_us(&mut self) -> u64 {
        self.clock += 1000;
        self.clock
    }
    fn input_closed(&self) -> bool {
        self.closed_when_empty && self.pos >= self.input.len()
    }
}

/// A platform for tests: memory is a 64 KiB buffer at 0x1000_0000; anything
/// else is "unmapped". Rings are Linux memfd mirrors; `ring new N` makes one of
/// N * `ring_unit` bytes (default 64 KiB, so tests stay small), and at most
/// `budget` units exist at once.
pub struct FakePlatform {
    /// The readable memory.
    pub mem: Vec<u8>,
    /// Set by `reboot`.
    pub rebooted: bool,
    /// Bytes per `ring new` unit.
    pub ring_unit: usize,
    /// Units still available.
    pub budget: u64,
    rings: super::ring::Rings<crate::vmcirc::MemfdMirror>,
}

impl Default for FakePlatform {
    fn default() -> Self {
        FakePlatform {
            mem: (0..65536u32).map(|i| (i * 7) as u8).collect(),
            rebooted: false,
            ring_unit: 64 * 1024,
            budget: 64,
            rings: Default::default(),
        }
    }
}

fn fake_clock() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64
}

/// Where [`FakePlatform`]'s memory starts.
pub const FAKE_MEM_BASE: u64 = 0x1000_0000;

impl Platform for FakePlatform {
    fn info(&mut self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        writeln!(out, "cpu: fake")
    }
    fn uptime_us(&mut self) -> u64 {
        1_500_000
    }
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), PlatformError> {
        let start = addr
            .checked_sub(FAKE_MEM_BASE)
            .ok_or(PlatformError::from("x: address not mapped"))? as usize;
        let src = self
            .mem
            .get(start..start + buf.len())
            .ok_or(PlatformError::from("x: address not mapped"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn reboot(&mut self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        self.rebooted = true;
        writeln!(out, "error: reboot: not on this platform")
    }

    type Mirror = crate::vmcirc::MemfdMirror;

    fn rings(&mut self) -> &mut super::ring::Rings<Self::Mirror> {
        &mut self.rings
    }

    fn create_mirror(&mut self, units: u64) -> Result<Self::Mirror, PlatformError> {
        if units > self.budget {
            return Err(PlatformError::from("ring new: not enough free memory"));
        }
        let m = crate::vmcirc::MemfdMirror::new(units as usize * self.ring_unit)
            .map_err(|_| PlatformError::from("ring new: mirror creation failed"))?;
        self.budget -= units;
        Ok(m)
    }

    fn destroy_mirror(&mut self, mirror: Self::Mirror) {
        use crate::vmcirc::Mirror;
        self.budget += (mirror.capacity() / self.ring_unit) as u64;
    }

    fn describe_mirror(m: &Self::Mirror, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        use crate::vmcirc::Mirror;
        write!(out, "memfd mirror of {} bytes, window {:#x}", m.capacity(), m.base() as usize)
    }

    fn write_map(&mut self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        writeln!(out, "(no translation table on the host)")
    }

    fn clock_fn(&self) -> fn() -> u64 {
        fake_clock
    }
}
