//! The interactive command shell: line editing (`noline`), parsing and dispatch,
//! and the commands themselves. It is generic over the byte stream
//! ([`Console`], i.e. `embedded-io` plus a clock) and over the machine
//! ([`Platform`]), so the kernel runs it on the UART, and host tests and the host
//! shell run exactly the same code on in-memory streams or a terminal.
//!
//! Output rules scripts rely on: every command's output is complete before the
//! next prompt (`vmcirc> `); an error is one line starting `error: `, and the
//! shell goes on; numbers are decimal or `0x` hex.

pub mod args;
pub mod hexdump;
#[cfg(all(unix, any(test, feature = "std")))]
pub mod host;
pub mod hs;
pub mod ring;
pub mod term;
#[cfg(any(test, feature = "std"))]
pub mod testio;

use core::fmt::{self, Write as _};

use noline::builder::EditorBuilder;
use noline::error::NolineError;
use noline::history::SliceHistory;
use noline::line_buffer::SliceBuffer;
use noline::sync_editor::Editor;

use args::{parse_max, parse_u64, split, ArgError};
pub use term::{LineIo, LineState};

/// The prompt.
pub const PROMPT: &str = "vmcirc> ";
/// Longest command line, in bytes; longer lines are rejected whole.
pub const LINE_MAX: usize = 255;
/// Bytes for the line buffer (one more than [`LINE_MAX`], to detect overflow).
pub const LINE_BUFFER_BYTES: usize = LINE_MAX + 1;
/// Bytes of history: at least 16 lines of [`LINE_MAX`].
pub const HISTORY_BYTES: usize = 16 * LINE_BUFFER_BYTES;
/// `x` dumps at most this many bytes at once.
pub const X_MAX: u64 = 64 * 1024;
/// `rx` gives up when no byte arrived for this long.
pub const RX_IDLE_TIMEOUT_US: u64 = 3_000_000;
/// Largest `rx` transfer.
pub const RX_MAX: u64 = 0x7fff_ffff;

/// A byte stream with a clock: what the shell runs on.
pub trait Console: embedded_io::Read + embedded_io::Write {
    /// One input byte if one is available now, without waiting.
    fn try_read_byte(&mut self) -> Option<u8>;
    /// A monotonic clock in microseconds (timeouts).
    fn now_us(&mut self) -> u64;
    /// True when no more input can ever arrive (finite host streams).
    fn input_closed(&self) -> bool {
        false
    }
}

/// A platform error, rendered after `error: ` (one line, at most 96 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError(pub heapless::String<96>);

impl PlatformError {
    /// An error from formatted text (truncated to fit).
    pub fn text(args: fmt::Arguments<'_>) -> Self {
        let mut s = heapless::String::new();
        let _ = s.write_fmt(args);
        PlatformError(s)
    }
}

impl From<&str> for PlatformError {
    fn from(s: &str) -> Self {
        PlatformError::text(format_args!("{s}"))
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the shell needs from the machine it runs on.
pub trait Platform {
    /// Writes the machine-specific lines of `info` (CPU, board, memory, MMU).
    fn info(&mut self, out: &mut dyn fmt::Write) -> fmt::Result;
    /// Microseconds since boot (uptime, throughput).
    fn uptime_us(&mut self) -> u64;
    /// Copies raw memory at `addr` into `buf`. On the board an unmapped address
    /// takes a data abort, which the kernel reports and recovers from.
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), PlatformError>;
    /// Resets the machine. Returns only when that did not happen, after writing
    /// why (e.g. an emulator without a watchdog).
    fn reboot(&mut self, out: &mut dyn fmt::Write) -> fmt::Result;
    /// Deliberately takes an exception (`fault undef|pabt|dabt|stack|xn|ro`), to show and
    /// test the fault path. On the board it never returns: the fault handler
    /// reports it and re-enters the shell. Elsewhere it returns an error.
    fn trigger_fault(&mut self, kind: FaultRequest) -> Result<(), PlatformError>;

    /// The mirrored memory this platform makes for rings.
    type Mirror: crate::vmcirc::Mirror;
    /// The session's rings (the platform stores them).
    fn rings(&mut self) -> &mut ring::Rings<Self::Mirror>;
    /// Makes a zeroed mirror of `units` allocation units (the store mapped twice
    /// back to back): 1 MiB sections on the board, the host platform's unit there
    /// (`ring new N` asks for N units).
    fn create_mirror_units(&mut self, units: u64) -> Result<Self::Mirror, PlatformError>;
    /// Unmaps a mirror and returns its memory.
    fn destroy_mirror(&mut self, mirror: Self::Mirror);
    /// One line fragment: where the mirror's store and window are.
    fn describe_mirror(mirror: &Self::Mirror, out: &mut dyn fmt::Write) -> fmt::Result;
    /// The `map` command: the non-identity mappings, virtual -> physical.
    fn write_map(&mut self, out: &mut dyn fmt::Write) -> fmt::Result;
    /// A microsecond clock usable while the rings are borrowed.
    fn clock_fn(&self) -> fn() -> u64;
}

/// Which exception `fault` should take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultRequest {
    /// Execute a permanently undefined instruction.
    Undefined,
    /// Branch to an unmapped address.
    PrefetchAbort,
    /// Load from an unmapped address.
    DataAbort,
    /// Unbounded recursion on the SVC stack, into its guard page (a data abort).
    StackOverflow,
    /// Branch into RAM that holds data, mapped execute never (a prefetch abort:
    /// permission fault).
    ExecuteData,
    /// Store to the kernel's code, mapped read-only (a data abort: permission
    /// fault).
    WriteCode,
}

/// Writes formatted text to the console, turning `\n` into `\r\n`.
pub struct Out<'a, 'c, C: Console>(pub &'a mut LineIo<'c, C>);

impl<C: Console> fmt::Write for Out<'_, '_, C> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        use embedded_io::Write;
        let mut rest = s.as_bytes();
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.0.write_all(&rest[..i]).map_err(|_| fmt::Error)?;
            self.0.write_all(b"\r\n").map_err(|_| fmt::Error)?;
            rest = &rest[i + 1..];
        }
        self.0.write_all(rest).map_err(|_| fmt::Error)
    }
}

/// One entry of `help`.
pub struct CommandHelp {
    /// Usage, e.g. `x ADDR [LEN]`.
    pub usage: &'static str,
    /// One-line synopsis.
    pub synopsis: &'static str,
}

/// Width of the usage column in `help`.
const HELP_COLUMN: usize = 22;

/// Every command, for `help` (and the README).
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        usage: "help",
        synopsis: "list the commands",
    },
    CommandHelp {
        usage: "info",
        synopsis: "CPU, board, memory, MMU/cache state, uptime",
    },
    CommandHelp {
        usage: "echo ARGS",
        synopsis: "print ARGS",
    },
    CommandHelp {
        usage: "x ADDR [LEN]",
        synopsis: "hexdump LEN (default 64, max 65536) bytes of memory at ADDR",
    },
    CommandHelp {
        usage: "rx LEN",
        synopsis: "receive LEN raw bytes, print 'rx LEN crc32=XXXXXXXX'",
    },
    CommandHelp {
        usage: "reboot",
        synopsis: "reset the board with the watchdog",
    },
    CommandHelp {
        usage: "fault undef|pabt|dabt|stack|xn|ro",
        synopsis: "take an exception on purpose (stack: overflow the SVC stack into its guard page; xn: run data; ro: write code); the handler reports it, the shell comes back",
    },
    CommandHelp {
        usage: "ring new MIB",
        synopsis: "create a ring of MIB MiB mapped twice, make it current",
    },
    CommandHelp {
        usage: "ring free [ID]",
        synopsis: "free ring ID (default: the current one)",
    },
    CommandHelp {
        usage: "ring list",
        synopsis: "list the rings (* marks the current one)",
    },
    CommandHelp {
        usage: "ring use ID",
        synopsis: "make ring ID current",
    },
    CommandHelp {
        usage: "push TEXT",
        synopsis: "push TEXT; prints 'pushed N bytes' or 'pushed N of M bytes (ring full, F free)'",
    },
    CommandHelp {
        usage: "pushx HEX...",
        synopsis: "push bytes given as hex pairs",
    },
    CommandHelp {
        usage: "fill N [byte B|seq|rand SEED]",
        synopsis: "push N generated bytes (default zeros)",
    },
    CommandHelp {
        usage: "push rx LEN",
        synopsis: "receive LEN raw bytes from the UART straight into the ring",
    },
    CommandHelp {
        usage: "pop N",
        synopsis: "discard up to N bytes; prints 'popped N bytes'",
    },
    CommandHelp {
        usage: "peek [N]",
        synopsis: "the first N buffered bytes as one quoted, escaped string",
    },
    CommandHelp {
        usage: "dump [OFF [LEN]]",
        synopsis: "hexdump buffered bytes at their window addresses, marking the mirror boundary",
    },
    CommandHelp {
        usage: "stat",
        synopsis: "capacity, len, read/write addresses, store and window, totals",
    },
    CommandHelp {
        usage: "map",
        synopsis: "the non-identity mappings (virtual -> physical, attributes)",
    },
    CommandHelp {
        usage: "stress BYTES [MAXCHUNK [SEED]]",
        synopsis: "random pushes, verified pops; mirrored then modular ring; throughput",
    },
    CommandHelp {
        usage: "bench [BYTES]",
        synopsis: "push+pop throughput for chunks of 1..4096 bytes, mirrored vs modular",
    },
    CommandHelp { usage: "hs W L LEN", synopsis: "receive LEN bytes of heatshrink data, decompress through a mirrored ring; size, CRC-32, time" },
    CommandHelp { usage: "hs demo", synopsis: "decompress a built-in stream through the mirrored and a modular window; check and time" },
];

/// Why [`Shell::step`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A line was handled (or abandoned); call again.
    Continue,
    /// The input ended (host streams).
    Eof,
}

/// A command's failure, rendered as one `error: ` line.
#[derive(Debug)]
pub enum CmdError<'a> {
    /// Bad arguments.
    Arg(ArgError<'a>),
    /// The platform refused.
    Platform(PlatformError),
    /// Unknown command.
    Unknown(&'a str),
    /// Fixed text.
    Msg(&'static str),
    /// A transfer that stopped early.
    RxTimeout {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        len: u64,
        /// Stray bytes dropped while resynchronising.
        discarded: usize,
    },
}

impl<'a> From<ArgError<'a>> for CmdError<'a> {
    fn from(e: ArgError<'a>) -> Self {
        CmdError::Arg(e)
    }
}

impl From<PlatformError> for CmdError<'_> {
    fn from(e: PlatformError) -> Self {
        CmdError::Platform(e)
    }
}

impl fmt::Display for CmdError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Arg(e) => e.fmt(f),
            CmdError::Platform(e) => e.fmt(f),
            CmdError::Unknown(w) => {
                f.write_str("unknown command '")?;
                args::write_escaped(f, w)?;
                f.write_str("' (try 'help')")
            }
            CmdError::Msg(m) => f.write_str(m),
            CmdError::RxTimeout { got, len, discarded } => write!(
                f,
                "rx: timed out after {got} of {len} bytes (no data for {} s); discarded {discarded} stray bytes",
                RX_IDLE_TIMEOUT_US / 1_000_000
            ),
        }
    }
}

/// The shell: a line editor plus the command set.
pub struct Shell<'b> {
    editor: Editor<SliceBuffer<'b>, SliceHistory<'b>>,
}

impl<'b> Shell<'b> {
    /// A shell using `line` (at least [`LINE_BUFFER_BYTES`]) and `history`
    /// (e.g. [`HISTORY_BYTES`]) as its storage.
    pub fn new<C: Console>(
        line: &'b mut [u8; LINE_BUFFER_BYTES],
        history: &'b mut [u8],
        io: &mut LineIo<'_, C>,
    ) -> Self {
        let editor = EditorBuilder::from_slice(line)
            .with_slice_history(history)
            .build_sync(io)
            .unwrap_or_else(|_| unreachable_editor());
        Shell { editor }
    }

    /// Reads one line (prompting) and runs it.
    pub fn step<C: Console, P: Platform>(
        &mut self,
        io: &mut LineIo<'_, C>,
        platform: &mut P,
    ) -> Step {
        let mut line: heapless::String<LINE_BUFFER_BYTES> = heapless::String::new();
        let result = match self.editor.readline(PROMPT, io) {
            Ok(l) => {
                // Fits: the editor's buffer is LINE_BUFFER_BYTES long.
                let _ = line.push_str(l);
                Ok(())
            }
            Err(e) => Err(e),
        };
        let mut out = Out(io);
        match result {
            Ok(()) => {}
            Err(NolineError::Aborted) => {
                if out.0.at_eof() {
                    return Step::Eof;
                }
                // Ctrl-C (or Ctrl-D on an empty line): the editor has already
                // ended the line on screen; abandon it.
                return Step::Continue;
            }
            Err(NolineError::ParserError) => {
                let _ = out.write_str(
                    "error: unreadable input (bad UTF-8 or control sequence); line dropped\n",
                );
                return Step::Continue;
            }
            Err(NolineError::IoError(_)) => {
                let _ = out.write_str("error: console i/o error\n");
                return Step::Continue;
            }
        }
        if line.len() > LINE_MAX {
            let _ = writeln!(
                out,
                "error: line too long (at most {LINE_MAX} bytes); discarded"
            );
            return Step::Continue;
        }
        execute(&line, io, platform);
        Step::Continue
    }
}

#[cold]
fn unreachable_editor<T>() -> T {
    // `build_sync` in noline 0.5 performs no I/O and cannot fail.
    panic!("noline editor construction failed")
}

/// Runs one command line, writing its output (or one `error: ` line).
pub fn execute<C: Console, P: Platform>(line: &str, io: &mut LineIo<'_, C>, platform: &mut P) {
    if let Err(e) = dispatch(line, io, platform) {
        let mut out = Out(io);
        let _ = writeln!(out, "error: {e}");
    }
}

pub(crate) fn no_more<'a>(words: &[&'a str], n: usize) -> Result<(), ArgError<'a>> {
    match words.get(n) {
        Some(w) => Err(ArgError::Extra(w)),
        None => Ok(()),
    }
}

fn dispatch<'a, C: Console, P: Platform>(
    line: &'a str,
    io: &mut LineIo<'_, C>,
    platform: &mut P,
) -> Result<(), CmdError<'a>> {
    let words = split(line)?;
    let Some(&cmd) = words.first() else {
        return Ok(());
    };
    let mut out = Out(io);
    match cmd {
        "help" => {
            no_more(&words, 1)?;
            let _ = out.write_str("commands:\n");
            for c in COMMANDS {
                // A usage too wide for the column gets a line of its own.
                if c.usage.len() > HELP_COLUMN {
                    let _ = writeln!(out, "  {}", c.usage);
                    let _ = writeln!(out, "  {:HELP_COLUMN$} {}", "", c.synopsis);
                } else {
                    let _ = writeln!(out, "  {:<HELP_COLUMN$} {}", c.usage, c.synopsis);
                }
            }
            let _ = out.write_str("numbers are decimal or 0x-hex; Ctrl-C abandons a line\n");
        }
        "echo" => {
            let mut first = true;
            for w in &words[1..] {
                if !first {
                    let _ = out.write_char(' ');
                }
                let _ = args::write_escaped(&mut out, w);
                first = false;
            }
            let _ = out.write_char('\n');
        }
        "info" => {
            no_more(&words, 1)?;
            let _ = platform.info(&mut out);
            let up = platform.uptime_us();
            let _ = writeln!(out, "uptime: {}.{:06} s", up / 1_000_000, up % 1_000_000);
        }
        "x" => {
            let addr = parse_u64(words.get(1).ok_or(ArgError::Missing("ADDR"))?)?;
            let len = match words.get(2) {
                Some(w) => parse_max(w, "LEN", X_MAX)?,
                None => 64,
            };
            no_more(&words, 3)?;
            if addr.checked_add(len).is_none() {
                return Err(CmdError::Msg("x: range beyond the address space"));
            }
            let mut row = [0u8; hexdump::ROW];
            let mut off = 0;
            while off < len {
                let n = (len - off).min(hexdump::ROW as u64) as usize;
                platform.read_memory(addr + off, &mut row[..n])?;
                let _ = hexdump::write_row(&mut out, addr + off, &row[..n], "");
                off += n as u64;
            }
        }
        "rx" => {
            let len = parse_max(words.get(1).ok_or(ArgError::Missing("LEN"))?, "LEN", RX_MAX)?;
            no_more(&words, 2)?;
            let _ = writeln!(out, "rx: waiting for {len} bytes");
            let _ = embedded_io::Write::flush(out.0);
            let mut digest = crate::crc32::CRC32.digest();
            receive(out.0, len, |chunk| digest.update(chunk))?;
            let _ = writeln!(Out(io), "rx {len} crc32={:08x}", digest.finalize());
        }
        "fault" => {
            let kind = match words.get(1).copied() {
                Some("undef") => FaultRequest::Undefined,
                Some("pabt") => FaultRequest::PrefetchAbort,
                Some("dabt") => FaultRequest::DataAbort,
                Some("stack") => FaultRequest::StackOverflow,
                Some("xn") => FaultRequest::ExecuteData,
                Some("ro") => FaultRequest::WriteCode,
                Some(other) => return Err(ArgError::Extra(other).into()),
                None => {
                    return Err(
                        ArgError::Missing("KIND (undef, pabt, dabt, stack, xn or ro)").into(),
                    )
                }
            };
            no_more(&words, 2)?;
            let _ = embedded_io::Write::flush(out.0);
            platform.trigger_fault(kind)?;
        }
        "reboot" => {
            no_more(&words, 1)?;
            let _ = out.write_str("rebooting\n");
            let _ = embedded_io::Write::flush(out.0);
            let _ = platform.reboot(&mut out);
        }
        "hs" => return hs::dispatch(&words, out.0, platform),
        other => {
            return ring::dispatch(line, &words, out.0, platform)
                .unwrap_or(Err(CmdError::Unknown(other)));
        }
    }
    Ok(())
}

/// Receives exactly `len` raw bytes, handing them to `sink` in chunks as they
/// arrive. Gives up (and drops whatever else is queued, to resynchronise) when
/// no byte arrives for [`RX_IDLE_TIMEOUT_US`].
pub fn receive<C: Console>(
    io: &mut LineIo<'_, C>,
    len: u64,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), CmdError<'static>> {
    let mut got: u64 = 0;
    let mut chunk = [0u8; 256];
    let mut last = io.console().now_us();
    while got < len {
        let want = (len - got).min(chunk.len() as u64) as usize;
        let mut n = 0;
        while n < want {
            match io.try_read_raw() {
                Some(b) => {
                    chunk[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        if n > 0 {
            sink(&chunk[..n]);
            got += n as u64;
            last = io.console().now_us();
            continue;
        }
        let now = io.console().now_us();
        if now.saturating_sub(last) >= RX_IDLE_TIMEOUT_US || io.console().input_closed() {
            let discarded = io.discard_input();
            return Err(CmdError::RxTimeout {
                got,
                len,
                discarded,
            });
        }
        core::hint::spin_loop();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
