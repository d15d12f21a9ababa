//! `vmcirc`: the host tool for the vmcirc kernel.
//!
//! - `vmcirc qemu`: boot the kernel in QEMU with the console on this terminal.
//! - `vmcirc term`: an interactive serial terminal for the real board.
//! - `vmcirc hs`: heatshrink compress / decompress, and send to the board.
//! - `vmcirc shell`: the kernel's shell on this terminal, rings on Linux memfd mirrors.
//! - `vmcirc install`: send a kernel image to the running kernel's `load` (chainloader).
//! - `vmcirc ipc`: send / receive a byte stream between processes through a shared ring.
//! - `vmcirc script`: run a scripted console session (format in [`script`]) against
//!   the board, QEMU, or (for the tool's own tests) any program on a pipe.
//!
//! Every subcommand that starts a process or changes the terminal undoes it on every
//! exit path: emulators are killed and reaped, raw mode is restored. Ctrl-C reaches
//! the long-running loops as a [`cancel::Cancel`] value, made here.
//!
//! Modules, with the arrows one way (nothing imports a module that imports it):
//! `script` (parser) and `target` (where to run) feed `runner` (step executor), which
//! uses `transcript` (bounded output, via `filter`), `window`, `golden` (via `diff`
//! and `atomic`), `progress` and `link` (with `supervise` and `qemu`); `hs_send`
//! builds on `hs` and `runner`, `install` on `runner` (both as scripted sessions).

mod atomic;
mod cancel;
mod diff;
mod fake;
mod filter;
mod golden;
mod hostshell;
mod hs;
mod hs_send;
mod install;
mod ipc;
mod link;
mod progress;
mod qemu;
mod runner;
mod script;
mod supervise;
mod target;
mod term;
mod transcript;
mod window;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::cancel::Cancel;

#[derive(Parser)]
#[command(
    name = "vmcirc",
    version,
    about = "Host tool for the vmcirc Raspberry Pi kernel"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Boot the kernel in QEMU with its console on this terminal (exit with Ctrl-A X).
    Qemu {
        /// Kernel to boot: a raw image (loaded at 0x8000 like the firmware does) or an ELF.
        /// Default: build/kernel.img of the repository.
        #[arg(long)]
        kernel: Option<PathBuf>,
        /// QEMU machine.
        #[arg(long, value_enum, default_value_t = qemu::Machine::Raspi0)]
        machine: qemu::Machine,
        /// Extra QEMU arguments, split on whitespace (repeatable), e.g. --qemu-arg "-icount shift=0".
        #[arg(long = "qemu-arg", allow_hyphen_values = true)]
        qemu_args: Vec<String>,
    },
    /// Interactive serial terminal for the real board (exit with Ctrl-]).
    Term {
        /// Serial device, e.g. /dev/ttyUSB0.
        #[arg(long)]
        port: String,
        /// Baud rate (8N1, no flow control).
        #[arg(long, default_value_t = 115_200)]
        baud: u32,
    },
    /// Run a scripted console session; exits 0 only if every expectation held.
    Script(ScriptArgs),
    /// heatshrink: compress, decompress (streaming, constant memory), send to the board.
    Hs {
        #[command(subcommand)]
        cmd: HsCmd,
    },
    /// The kernel's shell on this terminal, with rings on Linux memfd mirrors (Ctrl-D exits).
    Shell {
        /// Create a first ring of this many bytes (rounded up to the page size).
        #[arg(long)]
        capacity: Option<usize>,
    },
    /// Install kernel images on a running vmcirc kernel over the UART (its `load` command).
    Install(install::InstallArgs),
    /// Move a byte stream between two processes through a named shared ring.
    Ipc {
        #[command(subcommand)]
        cmd: ipc::IpcCommand,
    },
    /// A fake board on stdin/stdout for testing `vmcirc script` without QEMU.
    #[command(hide = true)]
    FakeBoard(fake::FakeArgs),
    /// Runs a `script --exec` command so that it never outlives this tool.
    #[command(hide = true)]
    Supervise(supervise::SuperviseArgs),
}

#[derive(Subcommand)]
enum HsCmd {
    #[command(flatten)]
    Codec(hs::HsCommand),
    /// Compress FILE and send it to the board's `hs` command; check its CRC-32.
    Send(hs_send::SendArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("where").args(["port", "qemu", "qemu_pty", "exec"])))]
struct ScriptArgs {
    /// The script (format: see tools/src/script.rs or the README).
    file: PathBuf,
    #[command(flatten)]
    target: target::TargetArgs,
    /// Test transport: run `sh -c CMD` with piped stdin/stdout as the board.
    #[arg(long, hide = true)]
    exec: Option<String>,
    /// Default timeout of each step in seconds (the script's `timeout` changes it).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Bound on the whole session in seconds.
    #[arg(long, default_value_t = 300.0)]
    session_timeout: f64,
    /// Most bytes of the target's output text kept (at least 64 KiB); beyond it the
    /// oldest text is dropped (and failure reports say how much).
    #[arg(long, default_value_t = runner::DEFAULT_MAX_OUTPUT)]
    max_output: usize,
    /// Show everything the target sends (on stderr) as it arrives.
    #[arg(short, long)]
    verbose: bool,
    /// Take new output: each `expect-golden` writes what it received to its golden file
    /// instead of comparing (also when the environment has VMCIRC_ACCEPT=1).
    #[arg(long)]
    accept: bool,
}

/// `VMCIRC_ACCEPT` set to anything but empty or `0` means `--accept` (for `make accept`).
fn accept_from_env() -> bool {
    std::env::var_os("VMCIRC_ACCEPT").is_some_and(|v| !v.is_empty() && v != "0")
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| anyhow::anyhow!("{what}: {s} is not a valid number of seconds"))
}

fn run_script(args: ScriptArgs, cancel: Cancel) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read script {}", args.file.display()))?;
    let lines = match script::parse(&text) {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("{}: {e}", args.file.display());
            return Ok(ExitCode::from(2));
        }
    };
    if !args.target.named() && args.exec.is_none() {
        anyhow::bail!(
            "say where to run the script: --port DEVICE, --qemu [KERNEL] or --qemu-pty [KERNEL]"
        );
    }
    let base = args
        .file
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let step_timeout = secs(args.timeout, "--timeout")?;
    let session_timeout = secs(args.session_timeout, "--session-timeout")?;
    let (link, start) = args.target.connect(args.exec.as_deref())?;
    let mut opts = runner::Options::new(base, cancel);
    opts.step_timeout = step_timeout;
    opts.session_timeout = session_timeout;
    opts.verbose = args.verbose;
    opts.accept = args.accept || accept_from_env();
    opts.max_output = args.max_output;
    opts.start = start;
    let summary = runner::run(link, &lines, &opts);
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else if summary.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Signals become a flag the loops poll, so emulators get reaped and the terminal
    // restored. (`qemu` execs QEMU; the fake board and the codecs just die; the
    // supervisor handles its own.)
    let cancel = match &cli.cmd {
        Cmd::Term { .. }
        | Cmd::Script(_)
        | Cmd::Install(_)
        | Cmd::Hs {
            cmd: HsCmd::Send(_),
        } => Cancel::on_signals(),
        _ => Cancel::never(),
    };
    let result = match cli.cmd {
        Cmd::Qemu {
            kernel,
            machine,
            qemu_args,
        } => qemu::resolve_kernel(kernel).and_then(|k| {
            qemu::Qemu::new(k, machine, &qemu_args)
                .run_interactive()
                .map(|()| ExitCode::SUCCESS)
        }),
        Cmd::Term { port, baud } => term::run(&port, baud, &cancel).map(|()| ExitCode::SUCCESS),
        Cmd::Script(args) => run_script(args, cancel),
        Cmd::Hs {
            cmd: HsCmd::Codec(cmd),
        } => hs::run(cmd).map(|()| ExitCode::SUCCESS),
        Cmd::Hs {
            cmd: HsCmd::Send(args),
        } => hs_send::send(&args, cancel).map(|()| ExitCode::SUCCESS),
        Cmd::Shell { capacity } => hostshell::run(capacity).map(|()| ExitCode::SUCCESS),
        Cmd::Install(args) => install::run(args, cancel).map(|()| ExitCode::SUCCESS),
        Cmd::Ipc { cmd } => ipc::run(cmd),
        Cmd::FakeBoard(args) => fake::run(&args).map(|()| ExitCode::SUCCESS),
        Cmd::Supervise(args) => supervise::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
