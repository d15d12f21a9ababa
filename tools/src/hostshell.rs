//! `vmcirc shell`: the kernel's own shell (same code, same commands, same output)
//! on this terminal, with rings that are Linux memfd mirrors instead of 1 MiB
//! sections. `ring new N` makes a ring of N MiB; `--capacity BYTES` creates the
//! first ring; all rings together take at most [`BUDGET_MIB`] MiB.
//!
//! The session ends at end of input: end of file on stdin, or Ctrl-D on an empty
//! line when stdin is a terminal. Ctrl-D is otherwise an editing key (delete the
//! character under the cursor), and inside data (`rx`, `push rx`, `hs`) it is
//! data like any byte. A last line without a newline is run. When stdout is
//! closed (`vmcirc shell | head -c1`) the session ends quietly with status 141
//! (128 + SIGPIPE, what a shell reports for a filter stopped by a closed pipe);
//! another output error is reported on stderr with status 1.

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;

use vmcirc::shell::host::HostPlatform;
use vmcirc::shell::{Console, LineIo, LineState, Shell, Step, HISTORY_BYTES, LINE_BUFFER_BYTES};

/// Most MiB of rings at once (`--capacity` included).
pub const BUDGET_MIB: u64 = 4096;

/// Exit status when stdout was closed: 128 + SIGPIPE.
const EXIT_BROKEN_PIPE: i32 = 141;

/// stdin (read by a thread, so the shell can poll without blocking) and stdout.
struct StdConsole {
    rx: Receiver<u8>,
    closed: bool,
    out: std::io::Stdout,
    /// stdin is a terminal: Ctrl-D on an empty line ends the session.
    tty: bool,
    /// The first failed write.
    write_error: Option<std::io::Error>,
}

impl StdConsole {
    fn new(tty: bool) -> Self {
        let (tx, rx) = mpsc::sync_channel::<u8>(64 * 1024);
        thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        for &b in &buf[..n] {
                            if tx.send(b).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        StdConsole {
            rx,
            closed: false,
            out: std::io::stdout(),
            tty,
            write_error: None,
        }
    }
}

impl embedded_io::ErrorType for StdConsole {
    type Error = std::io::Error;
}

impl embedded_io::Read for StdConsole {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        if buf.is_empty() || self.closed {
            return Ok(0);
        }
        match self.rx.recv() {
            Ok(b) => {
                buf[0] = b;
                Ok(1)
            }
            Err(_) => {
                self.closed = true;
                Ok(0)
            }
        }
    }
}

impl StdConsole {
    /// Remembers the first output error (how the session ends) and passes it on.
    fn failed(&mut self, e: std::io::Error) -> std::io::Error {
        let copy = std::io::Error::new(e.kind(), e.to_string());
        self.write_error.get_or_insert(e);
        copy
    }
}

impl embedded_io::Write for StdConsole {
    fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        match self.out.write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => Err(self.failed(e)),
        }
    }
    fn flush(&mut self) -> Result<(), std::io::Error> {
        self.out.flush().map_err(|e| self.failed(e))
    }
}

impl Console for StdConsole {
    fn try_read_byte(&mut self) -> Option<u8> {
        match self.rx.try_recv() {
            Ok(b) => Some(b),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.closed = true;
                None
            }
        }
    }
    fn clock(&self) -> vmcirc::shell::Clock {
        vmcirc::shell::host::clock
    }
    fn input_closed(&self) -> bool {
        self.closed
    }
    fn ctrl_d_ends_input(&self) -> bool {
        self.tty
    }
}

/// Runs the host shell until end of input.
pub fn run(capacity: Option<usize>) -> anyhow::Result<()> {
    // `ring new N`: N MiB, like the board.
    let mut platform = HostPlatform::new(1 << 20, BUDGET_MIB);
    if let Some(bytes) = capacity {
        platform
            .add_ring(bytes)
            .map_err(|e| anyhow::anyhow!("--capacity {bytes}: {e}"))?;
    }
    let raw = crate::term::RawMode::enter()?;
    if raw.is_some() {
        let mut out = std::io::stdout();
        let _ = out.write_all(b"vmcirc host shell: Linux memfd mirrors; leave with Ctrl-D\r\n");
    }
    let mut console = StdConsole::new(raw.is_some());
    let mut line = [0u8; LINE_BUFFER_BYTES];
    let mut history = vec![0u8; HISTORY_BYTES];
    let mut state = LineState::new();
    let mut io = LineIo::new(&mut console, &mut state);
    let mut shell = Shell::new(&mut line, &mut history, &mut io);
    let end = loop {
        match shell.step(&mut io, &mut platform) {
            Step::Continue => {}
            end => break end,
        }
    };
    drop(raw);
    if end == Step::OutputFailed {
        let e = console.write_error.take();
        // The rings go before the process does.
        drop(platform);
        match e {
            Some(e) if e.kind() != ErrorKind::BrokenPipe => {
                eprintln!("error: vmcirc shell: writing to stdout: {e}");
                std::process::exit(1);
            }
            _ => std::process::exit(EXIT_BROKEN_PIPE),
        }
    }
    let _ = std::io::stdout().write_all(b"\n");
    Ok(())
}
