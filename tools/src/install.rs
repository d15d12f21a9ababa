//! `vmcirc install KERNEL.img... (--port PATH [--baud B] | --qemu [RUNNING.img])`:
//! the host side of the UART chainloader, so the SD card is flashed once.
//!
//! For each image: wait for the running kernel's prompt (provoking a fresh one with
//! Ctrl-C when none comes), type `load LEN CRC32`, then send the image in blocks of
//! 1024 bytes, each only after the kernel's ACK (0x06), with a progress bar (bytes,
//! rate, ETA; hidden when stdout is not a terminal). The kernel checks the CRC-32 and
//! starts the image; this waits for the new kernel's banner, prints it, and waits for
//! its prompt. Several images are installed one after the other on the same link.
//! With `--term` a terminal on the port follows.
//!
//! The kernel side is `src/shell/load.rs` (the protocol) and
//! `src/kernel/chainload.rs` (starting the image).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cancel::Cancel;
use crate::link::{Event, Link};
use crate::{qemu, term};

/// The kernel's acknowledgement byte and block size (`src/shell/load.rs`).
const ACK: u8 = vmcirc::shell::load::ACK;
const BLOCK: usize = vmcirc::shell::load::BLOCK;
const PROMPT: &[u8] = b"vmcirc> ";

/// Arguments of `vmcirc install`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["port", "qemu"]).required(true)))]
pub struct InstallArgs {
    /// Raw kernel images (build/kernel.img), installed in this order.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// The board on this serial device, running a vmcirc kernel.
    #[arg(long)]
    port: Option<String>,
    /// Baud rate for --port.
    #[arg(long, default_value_t = 115_200, requires = "port")]
    baud: u32,
    /// QEMU as the board, booting RUNNING (default: build/kernel.img) first.
    #[arg(long, value_name = "RUNNING", num_args = 0..=1)]
    qemu: Option<Option<PathBuf>>,
    /// QEMU machine for --qemu.
    #[arg(long, value_enum, default_value_t = qemu::Machine::Raspi0)]
    machine: qemu::Machine,
    /// Stay in a terminal on the port afterwards (--port only; leave with Ctrl-]).
    #[arg(long, requires = "port")]
    term: bool,
    /// Test: damage each transfer and check that the kernel refuses it with one
    /// error line and that the old kernel still answers (exit 0 only then).
    #[arg(long, value_enum, hide = true)]
    damage: Option<Damage>,
}

/// How `--damage` spoils a transfer.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Damage {
    /// Flip a byte in the middle; the announced CRC-32 is the original's.
    Corrupt,
    /// Stop sending after half of the image.
    Truncate,
}

/// Runs `vmcirc install`.
pub fn run(args: InstallArgs, cancel: Cancel) -> Result<()> {
    let mut images = Vec::new();
    for path in &args.images {
        let data =
            std::fs::read(path).with_context(|| format!("install: reading {}", path.display()))?;
        if data.is_empty() {
            bail!("install: {} is empty", path.display());
        }
        if data.starts_with(b"\x7fELF") {
            bail!(
                "install: {} is an ELF file; install the raw image (build/kernel.img)",
                path.display()
            );
        }
        if data.len() as u64 > vmcirc::shell::load::LOAD_MAX {
            bail!(
                "install: {} is larger than the kernel accepts",
                path.display()
            );
        }
        images.push((path.clone(), data));
    }
    let link = match (&args.port, &args.qemu) {
        (Some(port), _) => Link::serial(port, args.baud)?,
        (None, Some(running)) => {
            let kernel = qemu::resolve_kernel(running.clone())?;
            qemu::Qemu::new(kernel, args.machine, &[]).spawn_piped()?
        }
        (None, None) => bail!("install: say where: --port DEVICE or --qemu [RUNNING.img]"),
    };
    let mut s = Session::new(link, cancel.clone());
    // QEMU boots the running kernel first; a board is (usually) at its prompt already.
    s.prompt(Duration::from_secs(if args.qemu.is_some() {
        30
    } else {
        3
    }))?;
    for (path, data) in &images {
        match args.damage {
            None => install(&mut s, path, data)?,
            Some(d) => refused(&mut s, path, data, d)?,
        }
    }
    drop(s);
    if args.term {
        if let Some(port) = &args.port {
            return term::run(port, args.baud, &cancel);
        }
    }
    Ok(())
}

/// One image, to the new kernel's prompt.
fn install(s: &mut Session, path: &std::path::Path, data: &[u8]) -> Result<()> {
    let crc = vmcirc::crc32::crc32(data);
    println!(
        "install: {} ({} bytes, crc32 {crc:08x}) to {}",
        path.display(),
        data.len(),
        s.link.description
    );
    let start = Instant::now();
    send(s, data, crc, data.len())?;
    let secs = start.elapsed().as_secs_f64();
    s.expect(b"ok; starting the new kernel", Duration::from_secs(30))?;
    let banner = s.line_with(b" booting ", Duration::from_secs(30))?;
    s.prompt(Duration::from_secs(30))?;
    println!(
        "install: sent in {secs:.1} s ({:.1} KiB/s); the new kernel answers: {banner}",
        data.len() as f64 / 1024.0 / secs.max(1e-6)
    );
    Ok(())
}

/// One damaged transfer: the kernel must refuse it and keep answering.
fn refused(s: &mut Session, path: &std::path::Path, data: &[u8], d: Damage) -> Result<()> {
    let crc = vmcirc::crc32::crc32(data);
    let mut bytes = data.to_vec();
    let sent = match d {
        Damage::Corrupt => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            bytes.len()
        }
        Damage::Truncate => bytes.len() / 2,
    };
    println!(
        "install: {} with the transfer damaged ({d:?}); the kernel must refuse it",
        path.display()
    );
    // A ring with data in it, which must come through untouched.
    s.send_line("ring new 1")?;
    s.expect(b"MiB store at phys", Duration::from_secs(10))?;
    s.prompt(Duration::from_secs(10))?;
    s.send_line("push ring-kept")?;
    s.expect(b"pushed 9 bytes", Duration::from_secs(10))?;
    s.prompt(Duration::from_secs(10))?;
    send(s, &bytes, crc, sent)?;
    let error = s.line_with(b"error: load: ", Duration::from_secs(30))?;
    s.prompt(Duration::from_secs(10))?;
    // The old kernel still answers, with the ring as it was (`peek` quotes it, the
    // typed line has no quotes).
    s.send_line("peek")?;
    s.expect(b"\"ring-kept\"", Duration::from_secs(10))?;
    s.prompt(Duration::from_secs(10))?;
    s.send_line("ring free")?;
    s.prompt(Duration::from_secs(10))?;
    println!(
        "install: refused as it must be ({error}); the old kernel still answers, its ring intact"
    );
    Ok(())
}

/// Types `load`, then sends the first `count` bytes of `data` block by block, each
/// after the kernel's ACK.
fn send(s: &mut Session, data: &[u8], crc: u32, count: usize) -> Result<()> {
    s.send_line(&format!("load {} {crc:#010x}", data.len()))?;
    s.expect(b"load: waiting for ", Duration::from_secs(10))?;
    let bar = ProgressBar::new(count as u64);
    if std::io::stdout().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template(
                "install: [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut off = 0;
    while off < count {
        s.ack(Duration::from_secs(10))
            .with_context(|| format!("install: no acknowledgement after {off} bytes"))?;
        let end = (off + BLOCK).min(count);
        s.link.send(data[off..end].to_vec());
        off = end;
        bar.set_position(off as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Everything the target sent, searched from a moving position.
struct Session {
    link: Link,
    cancel: Cancel,
    seen: Vec<u8>,
    pos: usize,
}

impl Session {
    fn new(link: Link, cancel: Cancel) -> Self {
        Session {
            link,
            cancel,
            seen: Vec::new(),
            pos: 0,
        }
    }

    /// Waits up to `wait` for more output; false on a timeout.
    fn pull(&mut self, wait: Duration) -> Result<bool> {
        if self.cancel.is_cancelled() {
            bail!("install: interrupted");
        }
        match self.link.next_event(wait) {
            Some(Event::Data(d)) => {
                self.seen.extend_from_slice(&d);
                Ok(true)
            }
            Some(Event::Closed(why)) => bail!("install: the target went away: {why}"),
            None => Ok(false),
        }
    }

    /// Waits for `needle` after the current position and moves past it; an error
    /// line from the kernel or a timeout is an error that shows the last output.
    fn expect(&mut self, needle: &[u8], timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = find(&self.seen[self.pos..], needle) {
                self.pos += i + needle.len();
                return Ok(());
            }
            if let Some(e) = self.error_line() {
                bail!("install: the kernel said: {e}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "install: waited {} s for {:?}; last output: {:?}",
                    timeout.as_secs(),
                    String::from_utf8_lossy(needle),
                    self.tail()
                );
            }
            self.pull(left.min(Duration::from_millis(200)))?;
        }
    }

    /// The text of the first line holding `needle` after the current position (the
    /// line is waited for until it ends), moving past it.
    fn line_with(&mut self, needle: &[u8], timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = find(&self.seen[self.pos..], needle) {
                let at = self.pos + i;
                let start = self.seen[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                if let Some(n) = self.seen[at..].iter().position(|&b| b == b'\n') {
                    let line = clean(&self.seen[start..at + n]);
                    self.pos = at + n + 1;
                    return Ok(line);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "install: waited {} s for a line with {:?}; last output: {:?}",
                    timeout.as_secs(),
                    String::from_utf8_lossy(needle),
                    self.tail()
                );
            }
            self.pull(left.min(Duration::from_millis(200)))?;
        }
    }

    /// Waits for the kernel's ACK.
    fn ack(&mut self, timeout: Duration) -> Result<()> {
        self.expect(&[ACK], timeout)
    }

    /// Waits for a prompt; when none comes within a second, asks for a fresh one
    /// with Ctrl-C (which abandons whatever was typed), as often as needed.
    fn prompt(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut poke = Instant::now() + Duration::from_secs(1);
        loop {
            if let Some(i) = find(&self.seen[self.pos..], PROMPT) {
                self.pos += i + PROMPT.len();
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "install: no prompt from the kernel within {} s (is a vmcirc kernel running?); last output: {:?}",
                    timeout.as_secs(),
                    self.tail()
                );
            }
            if now >= poke {
                self.link.send(vec![0x03]);
                poke = now + Duration::from_secs(1);
            }
            self.pull(Duration::from_millis(100))?;
        }
    }

    fn send_line(&mut self, line: &str) -> Result<()> {
        let mut v = line.as_bytes().to_vec();
        v.push(b'\r');
        self.link.send(v);
        Ok(())
    }

    /// An `error: ` line the kernel printed after the current position.
    fn error_line(&self) -> Option<String> {
        let rest = &self.seen[self.pos..];
        let i = find(rest, b"\nerror: ")?;
        let line = &rest[i + 1..];
        let end = line.iter().position(|&b| b == b'\n')?;
        Some(clean(&line[..end]))
    }

    fn tail(&self) -> String {
        let from = self.seen.len().saturating_sub(300);
        clean(&self.seen[from..])
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Text without terminal control sequences, CRs and ACKs.
fn clean(b: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x1b => {
                i += 1;
                if b.get(i) == Some(&b'[') {
                    i += 1;
                    while i < b.len() && !(0x40..=0x7e).contains(&b[i]) {
                        i += 1;
                    }
                }
            }
            b'\r' | ACK => {}
            c => out.push(c as char),
        }
        i += 1;
    }
    out
}
