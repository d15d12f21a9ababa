//! `vmcirc ipc`: move a byte stream between two unrelated processes through a
//! named shared mirrored ring (`vmcirc::vmcirc::shared::SpscRing`).
//!
//! ```text
//! vmcirc ipc recv q > b &      # either may start first
//! vmcirc ipc send q < a
//! ```
//!
//! The ring is the POSIX shm object `/vmcirc.NAME` (`/dev/shm/vmcirc.NAME` on
//! Linux), created by whichever side comes first with mode 0600. The sender reads
//! its input straight into the ring's free space and closes the stream at the end
//! of its input; the receiver writes the ring's contiguous bytes straight to its
//! output, ends at the sender's end-of-stream with exit status 0, and removes the
//! name (one stream per name). A sender that vanishes without closing (killed)
//! makes the receiver write out everything that was committed and then fail with
//! exit status 1; a receiver that vanishes or closes makes the sender fail
//! (status 1), like a broken pipe. A sender whose whole input fits in the ring
//! finishes without waiting; the receiver started later still gets the stream.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use vmcirc::vmcirc::shared::{Error, Options, Side, SpscRing};

#[derive(Subcommand)]
pub enum IpcCommand {
    /// Send FILE (default: stdin) through the shared ring NAME, creating it if needed.
    Send {
        /// Ring name: letters, digits, '.', '_' or '-' (the shm object /vmcirc.NAME).
        name: String,
        /// Input file (default: stdin).
        file: Option<PathBuf>,
        /// Ring capacity in bytes when this side creates it (rounded up to the page size).
        #[arg(long, default_value_t = 1 << 20)]
        capacity: usize,
        /// Give up after this many seconds without room in the ring (default: wait for ever).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Receive from the shared ring NAME into FILE (default: stdout) until the sender's end of stream.
    Recv {
        /// Ring name (as for send).
        name: String,
        /// Output file (default: stdout).
        file: Option<PathBuf>,
        /// Ring capacity in bytes when this side creates it.
        #[arg(long, default_value_t = 1 << 20)]
        capacity: usize,
        /// Give up after this many seconds without data (default: wait for ever).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Remove the ring NAME (e.g. left behind by a receiver that was killed).
    Rm {
        /// Ring name.
        name: String,
    },
}

/// The shm name of ring `name`, checked.
fn shm_name(name: &str) -> anyhow::Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "."
        && name != "..";
    if !ok {
        bail!("bad ring name {name:?}: use 1 to 200 letters, digits, '.', '_' or '-'");
    }
    Ok(format!("/vmcirc.{name}"))
}

fn timeout(secs: Option<f64>) -> anyhow::Result<Option<Duration>> {
    secs.map(|s| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| anyhow::anyhow!("--timeout: {s} is not a valid number of seconds"))
    })
    .transpose()
}

/// A ring side as the user sees it.
fn who(side: Side) -> &'static str {
    match side {
        Side::Producer => "sender",
        Side::Consumer => "receiver",
    }
}

/// A ring error as the user should read it.
fn explain(e: Error, name: &str, bytes: u64) -> anyhow::Error {
    match e {
        Error::PeerDied { side, pid } => anyhow::anyhow!(
            "the {} on ring {name} (process {pid}) vanished without closing the stream, after {bytes} bytes",
            who(side)
        ),
        Error::Closed(side) => anyhow::anyhow!(
            "the {} on ring {name} closed it, after {bytes} bytes",
            who(side)
        ),
        Error::SideTaken { side, pid: 0 } => anyhow::anyhow!(
            "ring {name} already carried a stream with another {}; remove it with `vmcirc ipc rm {name}`",
            who(side)
        ),
        Error::SideTaken { side, pid } => {
            anyhow::anyhow!(
                "ring {name} already has a {} (process {pid}); if that process is gone, remove the ring with `vmcirc ipc rm {name}`",
                who(side)
            )
        }
        Error::TimedOut => anyhow::anyhow!("ring {name}: timed out after {bytes} bytes"),
        e => anyhow::anyhow!("ring {name}: {e}"),
    }
}

pub fn run(cmd: IpcCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IpcCommand::Send {
            name,
            file,
            capacity,
            timeout: t,
        } => {
            let shm = shm_name(&name)?;
            let t = timeout(t)?;
            // Open the input first: a bad path changes nothing.
            let input: Box<dyn Read> = match &file {
                Some(p) => {
                    Box::new(File::open(p).with_context(|| format!("cannot open {}", p.display()))?)
                }
                // The descriptor itself, not `Stdin`'s buffer: reads go straight
                // into the ring.
                None => Box::new(File::from(
                    io::stdin().as_fd().try_clone_to_owned().context("stdin")?,
                )),
            };
            send(&shm, &name, input, capacity, t)
        }
        IpcCommand::Recv {
            name,
            file,
            capacity,
            timeout: t,
        } => {
            let shm = shm_name(&name)?;
            let t = timeout(t)?;
            let output: Box<dyn Write> = match &file {
                Some(p) => Box::new(
                    File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
                ),
                // Unbuffered: each write goes out at once (`Stdout` would hold
                // back bytes after the last newline while we wait for more).
                None => Box::new(File::from(
                    io::stdout()
                        .as_fd()
                        .try_clone_to_owned()
                        .context("stdout")?,
                )),
            };
            recv(&shm, &name, output, capacity, t)
        }
        IpcCommand::Rm { name } => {
            let shm = shm_name(&name)?;
            SpscRing::unlink_named(&shm).map_err(|e| anyhow::anyhow!("ring {name}: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn send(
    shm: &str,
    name: &str,
    mut input: Box<dyn Read>,
    capacity: usize,
    t: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let ring = SpscRing::open_or_create_named(shm, &Options::new(capacity))
        .map_err(|e| explain(e, name, 0))?;
    let mut tx = ring.producer().map_err(|e| explain(e, name, 0))?;
    let mut sent = 0u64;
    loop {
        tx.wait_writable(1, t).map_err(|e| explain(e, name, sent))?;
        // Read straight into the ring's contiguous free space.
        let w = tx.writable().map_err(|e| explain(e, name, sent))?;
        let n = match input.read(w) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Not a clean end: the receiver writes out what was sent and then
            // reports a vanished sender when this process exits.
            Err(e) => {
                tx.abandon();
                return Err(e).context("reading the input");
            }
        };
        tx.commit(n).map_err(|e| explain(e, name, sent))?;
        sent += n as u64;
    }
    tx.close();
    Ok(ExitCode::SUCCESS)
}

fn recv(
    shm: &str,
    name: &str,
    mut output: Box<dyn Write>,
    capacity: usize,
    t: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let ring = SpscRing::open_or_create_named(shm, &Options::new(capacity))
        .map_err(|e| explain(e, name, 0))?;
    let mut rx = ring.consumer().map_err(|e| explain(e, name, 0))?;
    let result = drain(&mut rx, &mut output, t);
    // One stream per name: remove it whatever happened (the sender keeps its
    // mapping; a new pair of processes starts a fresh ring).
    let _ = SpscRing::unlink_named(shm);
    let flushed = output.flush();
    match result {
        Ok(_) => {
            flushed.context("writing the output")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(Failure::Ring(e, bytes)) => Err(explain(e, name, bytes)),
        Err(Failure::Output(e)) => Err(anyhow::Error::new(e).context("writing the output")),
    }
}

enum Failure {
    /// The ring failed after this many bytes.
    Ring(Error, u64),
    /// Writing the output failed.
    Output(io::Error),
}

/// Copies the stream to `output`; returns the byte count.
fn drain(
    rx: &mut vmcirc::vmcirc::shared::Consumer,
    output: &mut dyn Write,
    t: Option<Duration>,
) -> Result<u64, Failure> {
    let mut got = 0u64;
    loop {
        match rx.wait_readable(1, t) {
            Ok(0) => return Ok(got),
            Ok(_) => {}
            Err(e) => return Err(Failure::Ring(e, got)),
        }
        let r = rx.readable().map_err(|e| Failure::Ring(e, got))?;
        // Write the contiguous bytes straight from the ring.
        let n = match output.write(r) {
            Ok(0) => return Err(Failure::Output(io::ErrorKind::WriteZero.into())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Output(e)),
        };
        rx.consume(n).map_err(|e| Failure::Ring(e, got))?;
        got += n as u64;
    }
}
