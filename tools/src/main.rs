//! `vmcirc`: the host tool for the vmcirc kernel.
//!
//! - `vmcirc qemu`: boot the kernel in QEMU with the console on this terminal.
//! - `vmcirc term`: an interactive serial terminal for the real board.
//! - `vmcirc hs`: heatshrink compress / decompress (and send to the board).
//! - `vmcirc shell`: the kernel's shell on this terminal, rings on Linux memfd mirrors.
//! - `vmcirc ipc`: send / receive a byte stream between processes through a shared ring.
//! - `vmcirc script`: run a scripted console session (format in [`script`]) against
//!   the board, QEMU, or (for the tool's own tests) any program on a pipe.
//!
//! Every subcommand that starts a process or changes the terminal undoes it on every
//! exit path: emulators are killed and reaped, raw mode is restored.

mod fake;
mod hostshell;
mod hs;
mod hs_send;
mod ipc;
mod link;
mod qemu;
mod runner;
mod script;
mod term;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Set by SIGINT/SIGTERM/SIGHUP; every long-running loop polls it and unwinds cleanly.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once Ctrl-C (or SIGTERM/SIGHUP) has been received.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

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
        cmd: hs::HsCommand,
    },
    /// The kernel's shell on this terminal, with rings on Linux memfd mirrors (Ctrl-D exits).
    Shell {
        /// Create a first ring of this many bytes (rounded up to the page size).
        #[arg(long)]
        capacity: Option<usize>,
    },
    /// Move a byte stream between two processes through a named shared ring.
    Ipc {
        #[command(subcommand)]
        cmd: ipc::IpcCommand,
    },
    /// A fake board on stdin/stdout for testing `vmcirc script` without QEMU.
    #[command(hide = true)]
    FakeBoard(fake::FakeArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["port", "qemu", "exec"])))]
struct ScriptArgs {
    /// The script (format: see tools/src/script.rs or the README).
    file: PathBuf,
    /// Run against the board on this serial device.
    #[arg(long)]
    port: Option<String>,
    /// Baud rate for --port.
    #[arg(long, default_value_t = 115_200, requires = "port")]
    baud: u32,
    /// Run against QEMU, booting KERNEL (default: build/kernel.img). Put FILE first.
    #[arg(long, value_name = "KERNEL", num_args = 0..=1)]
    qemu: Option<Option<PathBuf>>,
    /// QEMU machine for --qemu.
    #[arg(long, value_enum, default_value_t = qemu::Machine::Raspi0)]
    machine: qemu::Machine,
    /// Extra QEMU arguments, split on whitespace (repeatable), e.g. --qemu-arg "-icount shift=0".
    #[arg(long = "qemu-arg", allow_hyphen_values = true)]
    qemu_args: Vec<String>,
    /// Test transport: run `sh -c CMD` with piped stdin/stdout as the board.
    #[arg(long, hide = true)]
    exec: Option<String>,
    /// Default timeout of each step in seconds (the script's `timeout` changes it).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Bound on the whole session in seconds.
    #[arg(long, default_value_t = 300.0)]
    session_timeout: f64,
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

fn run_script(args: ScriptArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read script {}", args.file.display()))?;
    let lines = match script::parse(&text) {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("{}: {e}", args.file.display());
            return Ok(ExitCode::from(2));
        }
    };
    if args.port.is_none() && args.qemu.is_none() && args.exec.is_none() {
        anyhow::bail!("say where to run the script: --port DEVICE or --qemu [KERNEL]");
    }
    let base = args
        .file
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let link = if let Some(port) = &args.port {
        link::Link::serial(port, args.baud)?
    } else if let Some(cmd) = &args.exec {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(cmd);
        link::Link::spawn(c, format!("`{cmd}`"))?
    } else {
        let kernel = qemu::resolve_kernel(args.qemu.clone().flatten())?;
        let cfg = qemu::Qemu::new(kernel, args.machine, &args.qemu_args);
        cfg.spawn_piped()?
    };
    let opts = runner::Options {
        step_timeout: secs(args.timeout, "--timeout")?,
        session_timeout: secs(args.session_timeout, "--session-timeout")?,
        verbose: args.verbose,
        base_dir: base,
    };
    let accept = args.accept || accept_from_env();
    let summary = runner::run_accepting(link, &lines, &opts, accept);
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
    if matches!(cli.cmd, Cmd::Term { .. } | Cmd::Script(_)) {
        // Signals become a flag the loops poll, so emulators get reaped and the
        // terminal restored. (`qemu` execs QEMU; the fake board just dies.)
        if let Err(e) = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)) {
            eprintln!("warning: cannot install the Ctrl-C handler: {e}");
        }
    }
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
        Cmd::Term { port, baud } => term::run(&port, baud).map(|()| ExitCode::SUCCESS),
        Cmd::Script(args) => run_script(args),
        Cmd::Hs { cmd } => hs::run(cmd).map(|()| ExitCode::SUCCESS),
        Cmd::Shell { capacity } => hostshell::run(capacity).map(|()| ExitCode::SUCCESS),
        Cmd::Ipc { cmd } => ipc::run(cmd),
        Cmd::FakeBoard(args) => fake::run(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
