//! `vmcirc shell`: the kernel's own shell (same code, same commands, same output)
//! on this terminal, with rings that are Linux memfd mirrors instead of 1 MiB
//! sections. `ring new N` makes a ring of N MiB; `--capacity BYTES` creates the
//! first ring. Leave with Ctrl-D (or end of input).

use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;

use vmcirc::shell::host::HostPlatform;
use vmcirc::shell::{Console, LineIo, LineState, Shell, Step, HISTORY_BYTES, LINE_BUFFER_BYTES};

/// Ctrl-D ends the session.
const EOT: u8 = 0x04;

/// stdin (read by a thread, so the shell can poll without blocking) and stdout.
struct StdConsole {
    rx: Receiver<u8>,
    closed: bool,
    out: std::io::Stdout,
}

impl StdConsole {
    fn new() -> Self {
        let (tx, rx) = mpsc::sync_channel::<u8>(64 * 1024);
        thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        for &b in &buf[..n] {
                            if b == EOT || tx.send(b).is_err() {
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

impl embedded_io::Write for StdConsole {
    fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        self.out.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), std::io::Error> {
        self.out.flush()
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
}

/// Runs the host shell until end of input.
pub fn run(capacity: Option<usize>) -> anyhow::Result<()> {
    // `ring new N`: N MiB, like the board; at most 4 GiB of rings at once.
    let mut platform = HostPlatform::new(1 << 20, 4096);
    if let Some(bytes) = capacity {
        platform
            .add_ring(bytes)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let raw = crate::term::RawMode::enter()?;
    if raw.is_some() {
        print!("vmcirc host shell: Linux memfd mirrors; leave with Ctrl-D\r\n");
    }
    let mut console = StdConsole::new();
    let mut line = [0u8; LINE_BUFFER_BYTES];
    let mut history = vec![0u8; HISTORY_BYTES];
    let mut state = LineState::new();
    let mut io = LineIo::new(&mut console, &mut state);
    let mut shell = Shell::new(&mut line, &mut history, &mut io);
    while shell.step(&mut io, &mut platform) == Step::Continue {}
    drop(raw);
    println!();
    Ok(())
}
