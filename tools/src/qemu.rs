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

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::link::Link;

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
        Link::spawn(
            cmd,
            format!(
                "{QEMU} -M {} with {}",
                self.machine.name(),
                self.kernel.display()
            ),
        )
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
    fn missing_kernel_is_a_clear_error() {
        let e = resolve_kernel(Some("/nonexistent/kernel.img".into())).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
