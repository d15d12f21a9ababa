//! `vmcirc install KERNEL.img... TARGET`: the host side of the UART chainloader, so
//! the SD card is flashed once.
//!
//! The target is named with the options every session command shares
//! ([`crate::target`]): `--port` (a board running a vmcirc kernel, attached to by
//! provoking a fresh prompt, as `vmcirc script --port` does; `--wait-boot` for a board
//! about to be powered on), `--qemu [RUNNING]` (QEMU boots RUNNING first, the install
//! waits for its prompt) and `--qemu-pty [RUNNING]` (QEMU's console on a pty opened
//! like `--port`: the real board's serial path).
//!
//! The install is a scripted session ([`crate::runner`]) built per image, so the
//! prompt, attaching, timeouts, Ctrl-C and stopping QEMU are exactly those of
//! `vmcirc script`. For each image: type `load LEN CRC32`, check the kernel's
//! `load: waiting for LEN bytes in blocks of 1024`, send the image with
//! `sendfile-acked 1024 \x06` (each block only after the kernel's ACK, so a real
//! USB-serial adapter cannot overrun the UART), with a progress bar (bytes, rate, ETA;
//! only when stdout is a terminal); then check the kernel's `ok; starting the new
//! kernel`, print the new kernel's banner (which names its build) and wait for its
//! prompt. Several images are installed one after the other on the same link. With
//! `--term` a terminal on the port follows.
//!
//! The kernel side is `src/shell/load.rs` (the protocol) and
//! `src/kernel/chainload.rs` (starting the image).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cancel::Cancel;
use crate::runner::{self, Runner, Start};
use crate::target::TargetArgs;
use crate::{script, term};

/// The kernel's acknowledgement byte and block size (`src/shell/load.rs`).
const ACK: u8 = vmcirc::shell::load::ACK;
const BLOCK: usize = vmcirc::shell::load::BLOCK;
/// The image as sent, in the session's temporary folder.
const IMAGE: &str = "image.img";

/// Arguments of `vmcirc install`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("where").args(["port", "qemu", "qemu_pty", "exec"]).required(true)))]
pub struct InstallArgs {
    /// Raw kernel images (build/kernel.img), installed in this order.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Where the running vmcirc kernel is (with --qemu/--qemu-pty: the kernel QEMU
    /// boots first).
    #[command(flatten)]
    target: TargetArgs,
    /// Test transport: run `sh -c CMD` with piped stdin/stdout as the board.
    #[arg(long, hide = true)]
    exec: Option<String>,
    /// Seconds to wait for each answer of the kernel (a prompt, each block's
    /// acknowledgement); the new kernel's banner may take three times as long.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Show everything the target sends (on stderr) as it arrives.
    #[arg(short, long)]
    verbose: bool,
    /// Stay in a terminal on the port afterwards (--port only; leave with Ctrl-]).
    // (Checked in `run`: clap lets `requires = "port"` pass when another target,
    // which excludes --port, is given.)
    #[arg(long)]
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
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| {
            format!(
                "install: --timeout {} is not a number of seconds above 0",
                args.timeout
            )
        })?;
    if args.term && args.target.port.is_none() {
        bail!("install: --term opens a terminal on the board's serial device: it needs --port");
    }
    let images = args
        .images
        .iter()
        .map(|p| read_image(p).map(|data| (p.as_path(), data)))
        .collect::<Result<Vec<_>>>()?;
    let dir = tempfile::Builder::new()
        .prefix("vmcirc-install-")
        .tempdir()
        .context("install: creating a temporary folder")?;
    let (link, start) = args.target.connect(args.exec.as_deref())?;
    let mut opts = runner::Options::new(dir.path().to_path_buf(), cancel.clone());
    opts.step_timeout = timeout;
    // Every wait is bounded by its step timeout (each block's ACK included), and a
    // 64 MiB image takes 1.6 hours at 115200 baud: no bound on the whole session.
    opts.session_timeout = Duration::MAX;
    opts.start = start;
    opts.verbose = args.verbose;
    opts.quiet = true;
    opts.progress = true;
    let target = link.description.clone();
    println!(
        "install: {} image{} to {target}",
        images.len(),
        if images.len() == 1 { "" } else { "s" }
    );
    let mut s = Install {
        r: Runner::start(link, &[], &opts),
        dir: dir.path(),
        cancel: &cancel,
        timeout,
    };
    // The boot's first prompt, or (attached) the fresh one.
    s.part(
        &format!("timeout {}\nwait-prompt\n", 3.0 * timeout.as_secs_f64()),
        || format!("no prompt from a vmcirc kernel on {target}"),
    )?;
    if start == Start::Attach {
        println!("install: attached: the kernel answered with a fresh prompt");
    }
    for (path, data) in &images {
        match args.damage {
            None => s.install(path, data)?,
            Some(d) => s.refused(path, data, d)?,
        }
    }
    let sum = s.r.finish();
    if !sum.ok() {
        bail!("install: the kernel did not come back to its prompt (see above)");
    }
    match (&args.target.port, args.term) {
        (Some(port), true) => term::run(port, args.target.baud, &cancel),
        _ => Ok(()),
    }
}

/// Reads an image and refuses what the kernel's `load` cannot start.
fn read_image(path: &Path) -> Result<Vec<u8>> {
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
            "install: {} has {} bytes, more than the kernel's load takes ({} MiB)",
            path.display(),
            data.len(),
            vmcirc::shell::load::LOAD_MAX >> 20
        );
    }
    Ok(data)
}

/// A running install session.
struct Install<'a, 'o> {
    r: Runner<'o>,
    /// The temporary folder the image to send is written to.
    dir: &'a Path,
    cancel: &'a Cancel,
    timeout: Duration,
}

impl Install<'_, '_> {
    /// Runs one part of the session (script text); an error naming `what` if a step
    /// failed (the runner has shown which and the output).
    fn part(&mut self, text: &str, what: impl FnOnce() -> String) -> Result<()> {
        let lines =
            script::parse(text).map_err(|e| anyhow::anyhow!("install: internal script: {e}"))?;
        if self.r.run(&lines) {
            return Ok(());
        }
        self.stop()?;
        bail!("install: {} (see above)", what())
    }

    /// The error to give when the session stopped: Ctrl-C, or none.
    fn stop(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            bail!("install: interrupted");
        }
        Ok(())
    }

    /// `load` and the acknowledged transfer of `bytes` (announced as `len` bytes
    /// with `crc`), as script text.
    fn load(&self, bytes: &[u8], len: usize, crc: u32) -> Result<String> {
        std::fs::write(self.dir.join(IMAGE), bytes)
            .context("install: writing the image to the temporary folder")?;
        Ok(format!(
            "timeout {t}\n\
             > load {len} {crc:#010x}\n\
             expect-line load: waiting for {len} bytes in blocks of {BLOCK}\n\
             sendfile-acked {BLOCK} \\x{ACK:02x} {IMAGE}\n",
            t = self.timeout.as_secs_f64()
        ))
    }

    /// One image, to the new kernel's prompt.
    fn install(&mut self, path: &Path, data: &[u8]) -> Result<()> {
        let crc = vmcirc::crc32::crc32(data);
        let len = data.len();
        println!("install: {} ({len} bytes, crc32 {crc:08x})", path.display());
        let t0 = Instant::now();
        let load = self.load(data, len, crc)?;
        self.part(&load, || format!("{} was not sent", path.display()))?;
        let secs = t0.elapsed().as_secs_f64();
        // The kernel's verdict: it starts the image, or says in one line why not.
        let verdict = format!(
            "timeout {t}\n\
             expect-re ^(load: {len} bytes, crc32={crc:08x} ok; starting the new kernel|error: .*)$\n",
            t = 3.0 * self.timeout.as_secs_f64()
        );
        self.part(&verdict, || {
            format!("the kernel said nothing about {}", path.display())
        })?;
        let said = self.r.last_match().unwrap_or_default();
        if let Some(why) = said.strip_prefix("error: ") {
            bail!("install: the kernel refused {}: {why}", path.display());
        }
        self.part("expect-re ^.* booting\\b.*$\nwait-prompt\n", || {
            format!("the new kernel ({}) did not come up", path.display())
        })?;
        let banner = self.r.last_match().unwrap_or_default();
        println!(
            "install: sent in {secs:.1} s ({:.1} KiB/s); the new kernel answers: {banner}",
            len as f64 / 1024.0 / secs.max(1e-6)
        );
        Ok(())
    }

    /// One damaged transfer: the kernel must refuse it and keep answering, with a
    /// ring it holds intact (`peek` quotes the ring's bytes, the typed line has no
    /// quotes).
    fn refused(&mut self, path: &Path, data: &[u8], d: Damage) -> Result<()> {
        let crc = vmcirc::crc32::crc32(data);
        let mut bytes = data.to_vec();
        match d {
            Damage::Corrupt => {
                let mid = bytes.len() / 2;
                if let Some(b) = bytes.get_mut(mid) {
                    *b ^= 0xff;
                }
            }
            Damage::Truncate => bytes.truncate(bytes.len() / 2),
        }
        println!(
            "install: {} with the transfer damaged ({d:?}); the kernel must refuse it",
            path.display()
        );
        let load = self.load(&bytes, data.len(), crc)?;
        let text = format!(
            "> ring new 1\n\
             expect MiB store at phys\n\
             > push ring-kept\n\
             expect-line pushed 9 bytes\n\
             {load}\
             timeout {t}\n\
             expect-re ^error: load: .*$\n",
            t = 3.0 * self.timeout.as_secs_f64()
        );
        self.part(&text, || "the damaged transfer was not refused".into())?;
        let error = self.r.last_match().unwrap_or_default();
        self.part(
            "> peek\nexpect \"ring-kept\"\n> ring free\nexpect-not error\n",
            || "the old kernel did not answer as before".into(),
        )?;
        println!(
            "install: refused as it must be ({error}); the old kernel still answers, its ring intact"
        );
        Ok(())
    }
}
