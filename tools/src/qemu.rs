//! Running the kernel under `qemu-system-arm` (`-M raspi0` or `raspi1ap`).
//!
//! A raw image (`build/kernel.img`) is passed with `-bios`: QEMU's raspi boards then
//! load it at 0x8000 and jump there, as the Pi firmware does with `kernel.img`. An ELF
//! (`build/kernel.elf`) is passed with `-kernel` and started at its entry point. The
//! choice is made from the file's first bytes, not its name.
//!
//! Serial index 0 is the PL011 (the board's GPIO14/15 UART), the kernel's console.
//! Interactively (`vmcirc qemu`) it is muxed with the monitor on the terminal
//! (`-nographic`): Ctrl-A X quits, Ctrl-A H lists the other keys. For scripts it is
//! on the child's piped stdin/stdout (`-serial stdio`, `-monitor none`,
//! `-display none`): no TCP port, no leftover socket.
//!
//! [`Qemu::spawn_pty`] puts it on a pseudo-terminal instead (`-serial pty`) and opens
//! that with the serial-port code a real board uses (termios, baud, `--port`), so
//! `make test` also covers that path: QEMU prints `char device redirected to
//! /dev/pts/N (label serial0)`, the tool reads the path from QEMU's output and opens
//! it. The guest runs from the start, so the session attaches to a running board,
//! as with `--port`. The returned link owns QEMU and kills it when dropped.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rustix::process::Signal;

use crate::link::{self, Link};

/// How long QEMU may take to say which pty it opened.
const PTY_WAIT: Duration = Duration::from_secs(20);

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-arm";

/// The emulated board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// Raspberry Pi Zero (BCM2835, ARM1176JZF-S).
    Raspi0,
    /// Raspberry Pi 1 model A+ (BCM2835, ARM1176JZF-S).
    Raspi1ap,
}

impl Machine {
    fn name(self) -> &'static str {
        match self {
            Machine::Raspi0 => "raspi0",
            Machine::Raspi1ap => "raspi1ap",
        }
    }
}

/// The kernel to boot when none is given: `build/kernel.img` in the current directory
/// if it exists there, else in the repository this tool was built from.
pub fn resolve_kernel(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(k) = given {
        if !k.is_file() {
            bail!(
                "kernel image {} does not exist (build it with `make`)",
                k.display()
            );
        }
        return Ok(k);
    }
    let here = PathBuf::from("build/kernel.img");
    if here.is_file() {
        return Ok(here);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/kernel.img");
    if repo.is_file() {
        return Ok(repo);
    }
    bail!(
        "no kernel image: neither ./build/kernel.img nor {} exists (build it with `make`, or pass one)",
        repo.display()
    )
}

/// Whether `path` holds an ELF file (else it is taken as a raw image).
pub fn is_elf(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let n = f.read(&mut magic)?;
    Ok(n == 4 && magic == *b"\x7fELF")
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn require_qemu() -> anyhow::Result<()> {
    if find_in_path(QEMU).is_none() {
        bail!("`{QEMU}` not found in PATH: install it (Debian/Ubuntu: `apt-get install qemu-system-arm`, or `make run` does it)");
    }
    Ok(())
}

/// One QEMU configuration.
pub struct Qemu {
    kernel: PathBuf,
    machine: Machine,
    extra: Vec<String>,
}

impl Qemu {
    /// `extra` entries are split on whitespace (so `"-icount shift=0"` is two args).
    pub fn new(kernel: PathBuf, machine: Machine, extra: &[String]) -> Qemu {
        Qemu {
            kernel,
            machine,
            extra: extra
                .iter()
                .flat_map(|s| s.split_whitespace().map(String::from))
                .collect(),
        }
    }

    fn base_args(&self) -> anyhow::Result<Vec<OsString>> {
        let how = if is_elf(&self.kernel)? {
            "-kernel"
        } else {
            "-bios"
        };
        Ok(vec![
            "-M".into(),
            self.machine.name().into(),
            how.into(),
            self.kernel.clone().into_os_string(),
        ])
    }

    /// Arguments for a scripted session: console on piped stdio, nothing else.
    pub fn piped_args(&self) -> anyhow::Result<Vec<OsString>> {
        let mut a = self.base_args()?;
        for s in ["-display", "none", "-monitor", "none", "-serial", "stdio"] {
            a.push(s.into());
        }
        a.extend(self.extra.iter().map(OsString::from));
        Ok(a)
    }

    /// Start QEMU for a scripted session.
    pub fn spawn_piped(&self) -> anyhow::Result<Link> {
        require_qemu()?;
        let mut cmd = Command::new(QEMU);
        cmd.args(self.piped_args()?);
        Link::spawn(cmd, self.describe(), link::Stop::Kill)
    }

    fn describe(&self) -> String {
        format!(
            "{QEMU} -M {} with {}",
            self.machine.name(),
            self.kernel.display()
        )
    }

    /// Arguments for a console on a pseudo-terminal.
    pub fn pty_args(&self) -> anyhow::Result<Vec<OsString>> {
        let mut a = self.base_args()?;
        for s in ["-display", "none", "-monitor", "none", "-serial", "pty"] {
            a.push(s.into());
        }
        a.extend(self.extra.iter().map(OsString::from));
        Ok(a)
    }

    /// Start QEMU with the console on a pty and open the pty as a serial port at
    /// `baud`. QEMU is killed when the link is dropped, or when it fails to say
    /// which pty it opened.
    pub fn spawn_pty(&self, baud: u32) -> anyhow::Result<Link> {
        require_qemu()?;
        let mut cmd = Command::new(QEMU);
        cmd.args(self.pty_args()?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = link::spawn_child(cmd, Signal::KILL)?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let found = (|| {
            let (tx, rx) = mpsc::channel();
            let tail = Arc::new(Mutex::new(Vec::new()));
            for r in [
                stdout.map(|r| Box::new(r) as Box<dyn Read + Send>),
                stderr.map(|r| Box::new(r) as Box<dyn Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                watch_output(r, tx.clone(), tail.clone());
            }
            drop(tx);
            let path = match rx.recv_timeout(PTY_WAIT) {
                Ok(p) => p,
                Err(_) => {
                    let said = tail.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    bail!(
                        "{QEMU} did not say which pty it opened within {}s; it said: {}",
                        PTY_WAIT.as_secs(),
                        vmcirc::escape::Bytes(&said)
                    );
                }
            };
            let link = Link::serial(&path, baud)?;
            Ok((link, path, tail))
        })();
        match found {
            Ok((link, path, tail)) => {
                let mut link = link.with_child(child, tail);
                link.description = format!("{} on {path} (-serial pty)", self.describe());
                Ok(link)
            }
            Err(e) => {
                let pid = rustix::process::Pid::from_child(&child);
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Replace this process with QEMU, console and monitor on the terminal.
    pub fn run_interactive(&self) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        require_qemu()?;
        let mut a = self.base_args()?;
        a.push("-nographic".into());
        a.extend(self.extra.iter().map(OsString::from));
        println!(
            "vmcirc: booting {} on {QEMU} -M {}; exit with Ctrl-A X",
            self.kernel.display(),
            self.machine.name()
        );
        let err = Command::new(QEMU).args(&a).exec();
        Err(anyhow::Error::new(err).context(format!("cannot run {QEMU}")))
    }
}

/// The pty path in a line QEMU prints: `char device redirected to /dev/pts/N
/// (label serial0)`.
fn pty_path(line: &str) -> Option<String> {
    let rest = &line[line.find("redirected to ")? + "redirected to ".len()..];
    let path = rest.split_whitespace().next()?;
    (path.starts_with("/dev/") && (line.contains("serial0") || !line.contains("label")))
        .then(|| path.to_string())
}

/// Reads QEMU's output in a thread: sends the first pty path found on `found`, and
/// keeps the tail of everything (for error reports) in `tail`.
fn watch_output(
    mut r: Box<dyn Read + Send>,
    found: mpsc::Sender<String>,
    tail: Arc<Mutex<Vec<u8>>>,
) {
    std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut searching = true;
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            link::push_tail(&tail, &chunk[..n]);
            if !searching {
                continue;
            }
            for &b in &chunk[..n] {
                if b != b'\n' {
                    if line.len() < 4096 {
                        line.push(b);
                    }
                    continue;
                }
                if let Some(p) = pty_path(&String::from_utf8_lossy(&line)) {
                    let _ = found.send(p);
                    searching = false;
                    break;
                }
                line.clear();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_image_uses_bios_elf_uses_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("kernel.img");
        std::fs::write(&img, [0x00, 0x00, 0xa0, 0xe1]).unwrap();
        let elf = dir.path().join("kernel.elf");
        std::fs::write(&elf, b"\x7fELF\x01\x01\x01\0").unwrap();
        let q = Qemu::new(img.clone(), Machine::Raspi0, &["-icount shift=0".into()]);
        let a: Vec<String> = q
            .piped_args()
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(&a[..4], ["-M", "raspi0", "-bios", img.to_str().unwrap()]);
        assert!(a.windows(2).any(|w| w == ["-serial", "stdio"]));
        assert!(a.windows(2).any(|w| w == ["-monitor", "none"]));
        assert_eq!(&a[a.len() - 2..], ["-icount", "shift=0"]);
        let q = Qemu::new(elf, Machine::Raspi1ap, &[]);
        let a = q.piped_args().unwrap();
        assert_eq!(a[1], "raspi1ap");
        assert_eq!(a[2], "-kernel");
    }

    #[test]
    fn the_pty_path_is_read_from_qemus_message() {
        assert_eq!(
            pty_path("char device redirected to /dev/pts/7 (label serial0)").as_deref(),
            Some("/dev/pts/7")
        );
        assert_eq!(
            pty_path("qemu-system-arm: -serial pty: char device redirected to /dev/pts/12 (label serial0)\r")
                .as_deref(),
            Some("/dev/pts/12")
        );
        assert_eq!(
            pty_path("char device redirected to /dev/pts/3 (label serial1)"),
            None
        );
        assert_eq!(pty_path("warning: something else"), None);
        assert_eq!(pty_path("redirected to nowhere"), None);
    }

    #[test]
    fn missing_kernel_is_a_clear_error() {
        let e = resolve_kernel(Some("/nonexistent/kernel.img".into())).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
