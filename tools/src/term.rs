//! `vmcirc term`: an interactive serial terminal for the real board.
//!
//! Keyboard bytes go to the port unchanged (stdin in raw mode, so Ctrl-C, arrows and
//! Enter (`\r`) reach the board's line editor); the board's bytes go to stdout
//! unchanged. Ctrl-] (0x1d, as in telnet) quits. The terminal settings are restored
//! on every way out: the exit key, end of input, a port error, SIGINT/SIGTERM/SIGHUP
//! (the [`Cancel`] passed in), and a panic (the guard's `Drop`).

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use anyhow::Context;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::termios::{self, OptionalActions, Termios};

use crate::cancel::Cancel;

/// The exit key: Ctrl-].
pub const EXIT_KEY: u8 = 0x1d;

/// Puts a terminal in raw mode and restores the saved settings when dropped.
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// `None` when stdin is not a terminal (input from a pipe or file).
    pub(crate) fn enter() -> anyhow::Result<Option<RawMode>> {
        let stdin = rustix::stdio::stdin();
        if !termios::isatty(stdin) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(stdin).context("cannot read the terminal settings")?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin, OptionalActions::Now, &raw).context("cannot set raw mode")?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Run the terminal until the exit key, end of input, a signal or a port error.
pub fn run(port_path: &str, baud: u32, cancel: &Cancel) -> anyhow::Result<()> {
    let mut port = crate::link::open_serial(port_path, baud)?;
    let mut reader = port
        .try_clone_native()
        .with_context(|| format!("cannot clone the handle of {port_path}"))?;
    println!("vmcirc term: {port_path} at {baud} baud, 8N1; exit with Ctrl-]");
    let raw = RawMode::enter()?;

    let stop = Arc::new(AtomicBool::new(false));
    let port_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let (stop2, err2) = (stop.clone(), port_error.clone());
    let board_to_screen = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut out = io::stdout();
        while !stop2.load(Ordering::Relaxed) {
            match reader.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
                Err(e)
                    if e.kind() == io::ErrorKind::TimedOut
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    *err2.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    stop2.store(true, Ordering::SeqCst);
                }
            }
        }
    });

    let result = keyboard_to_port(&mut port, &stop, cancel);
    stop.store(true, Ordering::SeqCst);
    let _ = board_to_screen.join();
    drop(raw);
    println!("\nvmcirc term: closed");
    if let Some(e) = port_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        anyhow::bail!("{port_path}: {e}");
    }
    result
}

fn keyboard_to_port(
    port: &mut impl Write,
    stop: &AtomicBool,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    let stdin = rustix::stdio::stdin();
    let mut buf = [0u8; 1024];
    let tick = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        if stop.load(Ordering::Relaxed) || cancel.is_cancelled() {
            return Ok(());
        }
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).context("poll on stdin"),
        }
        let n = match rustix::io::read(stdin.as_fd(), &mut buf) {
            Ok(0) => return Ok(()), // end of input
            Ok(n) => n,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(e) => return Err(e).context("reading stdin"),
        };
        let data = &buf[..n];
        let (data, quit) = match data.iter().position(|&b| b == EXIT_KEY) {
            Some(p) => (&data[..p], true),
            None => (data, false),
        };
        write_all_retrying(port, data, cancel).context("writing to the serial port")?;
        if quit {
            return Ok(());
        }
    }
}

/// `write_all` that survives the port's write timeout (a full transmit buffer).
fn write_all_retrying(port: &mut impl Write, mut data: &[u8], cancel: &Cancel) -> io::Result<()> {
    while !data.is_empty() {
        match port.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                if cancel.is_cancelled() {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
    port.flush()
}
