//! Where a session runs: the options naming a target, shared by `vmcirc script`,
//! `vmcirc hs send` and `vmcirc install` (and any later command that talks to the
//! board's shell), and how to open a [`Link`] to it.
//!
//! | option | target | the session starts |
//! |---|---|---|
//! | `--port PATH [--baud B]` | a board on a serial device | attached (the board is running) |
//! | `--qemu [KERNEL]` | QEMU, console on pipes | at boot |
//! | `--qemu-pty [KERNEL]` | QEMU, console on a pty opened as `--port` | attached |
//!
//! `--wait-boot` makes a session wait for the first prompt of a boot (a board being
//! powered on); `--attach` makes it provoke a fresh prompt from a running target
//! ([`crate::runner::Start`]).

use std::path::PathBuf;

use anyhow::bail;

use crate::link::{Link, Stop};
use crate::qemu;
use crate::runner::Start;

/// The target options.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// A board on this serial device, e.g. /dev/ttyUSB0 (attaches to it running).
    #[arg(long)]
    pub port: Option<String>,
    /// Baud rate for --port and --qemu-pty (8N1, no flow control).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Boot KERNEL in QEMU, console on pipes (default: build/kernel.img). Put files
    /// before this option.
    #[arg(long, value_name = "KERNEL", num_args = 0..=1)]
    pub qemu: Option<Option<PathBuf>>,
    /// Boot KERNEL in QEMU with the console on a pseudo-terminal, opened like --port
    /// (the real board's serial code path; attaches to the running kernel).
    #[arg(long = "qemu-pty", value_name = "KERNEL", num_args = 0..=1)]
    pub qemu_pty: Option<Option<PathBuf>>,
    /// QEMU machine for --qemu and --qemu-pty.
    #[arg(long, value_enum, default_value_t = qemu::Machine::Raspi0)]
    pub machine: qemu::Machine,
    /// Extra QEMU arguments, split on whitespace (repeatable), e.g. --qemu-arg "-icount shift=0".
    #[arg(long = "qemu-arg", allow_hyphen_values = true)]
    pub qemu_args: Vec<String>,
    /// Wait for the first prompt of a boot (a board being powered on) instead of
    /// attaching (the default for --port and --qemu-pty).
    #[arg(long, conflicts_with = "attach")]
    pub wait_boot: bool,
    /// Attach to a running target: drain its output, send Ctrl-C (then Enter) until a
    /// fresh prompt comes (the default for --port and --qemu-pty).
    #[arg(long)]
    pub attach: bool,
}

impl TargetArgs {
    /// Whether any target was named.
    pub fn named(&self) -> bool {
        self.port.is_some() || self.qemu.is_some() || self.qemu_pty.is_some()
    }

    /// How the session starts on a target whose default is `default`.
    fn start(&self, default: Start) -> Start {
        if self.wait_boot {
            Start::Boot
        } else if self.attach {
            Start::Attach
        } else {
            default
        }
    }

    /// Opens the link: to the named target, or (`exec`, the test transport of
    /// `vmcirc script`) to `sh -c EXEC` under a supervisor ([`crate::supervise`]).
    pub fn connect(&self, exec: Option<&str>) -> anyhow::Result<(Link, Start)> {
        if let Some(port) = &self.port {
            return Ok((Link::serial(port, self.baud)?, self.start(Start::Attach)));
        }
        if let Some(kernel) = &self.qemu_pty {
            let kernel = qemu::resolve_kernel(kernel.clone())?;
            let q = qemu::Qemu::new(kernel, self.machine, &self.qemu_args);
            return Ok((q.spawn_pty(self.baud)?, self.start(Start::Attach)));
        }
        if let Some(kernel) = &self.qemu {
            let kernel = qemu::resolve_kernel(kernel.clone())?;
            let q = qemu::Qemu::new(kernel, self.machine, &self.qemu_args);
            return Ok((q.spawn_piped()?, self.start(Start::Boot)));
        }
        if let Some(cmd) = exec {
            let link = Link::spawn(
                crate::supervise::command(cmd)?,
                format!("`{cmd}`"),
                Stop::Ask,
            )?;
            return Ok((link, self.start(Start::Boot)));
        }
        bail!("say where to run: --port DEVICE, --qemu [KERNEL] or --qemu-pty [KERNEL]")
    }
}
