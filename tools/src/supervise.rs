//! `vmcirc supervise` (hidden): runs the command of `vmcirc script --exec` so that
//! nothing it starts outlives the tool, however the tool ends.
//!
//! The tool's own clean-up (dropping the [`crate::link::Link`]) covers every path on
//! which the tool still runs code: a failed or timed-out step, an error, Ctrl-C,
//! SIGTERM, a panic that unwinds. It cannot cover an abort or SIGKILL, and
//! `PR_SET_PDEATHSIG` only reaches the tool's direct child, not what a `sh -c`
//! started. So `--exec CMD` runs as `vmcirc supervise --parent PID -- CMD`, which:
//!
//! 1. asks the kernel for SIGTERM when the tool dies, any way (set by the tool when
//!    it spawns the supervisor), and handles SIGTERM as "stop";
//! 2. becomes a child subreaper, so whatever the command starts and leaves behind
//!    is re-parented to it, not to init;
//! 3. runs `sh -c CMD` in a process group of its own (the target group), with
//!    `PR_SET_PDEATHSIG(SIGKILL)`;
//! 4. when told to stop, when the tool is gone, or when `sh` exits: kills the target
//!    group, reaps every child it has (so none is left as a zombie), and exits.
//!
//! The tool's [`crate::link::Stop::Ask`] sends the SIGTERM of step 4 and waits for
//! the supervisor to exit.

use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::{Pid, Signal, WaitOptions};

/// How long the supervisor reaps after killing the target group.
const REAP_WAIT: Duration = Duration::from_secs(1);

/// Arguments of the hidden `supervise` subcommand.
#[derive(clap::Args, Debug)]
pub struct SuperviseArgs {
    /// Process id of the tool that started this supervisor.
    #[arg(long)]
    parent: i32,
    /// The shell command to run with `sh -c`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// The command that runs `sh -c shell_cmd` under a supervisor (spawn it with
/// [`crate::link::Link::spawn`] and [`crate::link::Stop::Ask`]).
pub fn command(shell_cmd: &str) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut c = Command::new(exe);
    c.arg("supervise")
        .arg("--parent")
        .arg(rustix::process::getpid().as_raw_nonzero().to_string())
        .arg("--")
        .arg(shell_cmd);
    Ok(c)
}

/// Runs the supervisor until the command ends or it is told to stop.
pub fn run(args: &SuperviseArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("supervise: cannot handle SIGTERM")?;
    let tool_alive =
        || rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) == Some(args.parent);
    // The tool may have died before the handler was in place.
    if !tool_alive() {
        return Ok(ExitCode::FAILURE);
    }
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .context("supervise: cannot become a subreaper")?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .args(&args.command)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = crate::link::spawn_child(cmd, Signal::KILL)?;
    let group = Pid::from_child(&child);
    let code = loop {
        if stop.load(Ordering::SeqCst) || !tool_alive() {
            break 1;
        }
        match child.try_wait() {
            Ok(Some(status)) => break status.code().unwrap_or(1),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break 1,
        }
    };
    let _ = rustix::process::kill_process_group(group, Signal::KILL);
    reap_all();
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Reaps every child (the command and whatever was re-parented here) until none is
/// left, or for at most [`REAP_WAIT`] (a process that left the target group is not
/// waited for longer).
fn reap_all() {
    let t0 = Instant::now();
    while t0.elapsed() < REAP_WAIT {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some(_)) => {}
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            // ECHILD: nothing left.
            Err(_) => return,
        }
    }
}
