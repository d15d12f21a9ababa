//! A byte link to the target (serial port or a child process on pipes), with a reader
//! thread and a writer thread so large sends never deadlock against unread output.
//!
//! The reader thread pushes what the target sends into a bounded channel (at most
//! [`QUEUED_READS`] reads of 16 KiB wait there; when it is full the reader waits, so
//! a flooding target is slowed down to the session's pace instead of filling memory);
//! the writer thread writes queued payloads in chunks and reports when each is fully
//! written. The session loop waits on both with timeouts, so a target that stops
//! reading or stops answering turns into a failed step, never a hang.
//!
//! A child process runs in its own process group with `PR_SET_PDEATHSIG`, and
//! dropping the [`Link`] kills the whole group and reaps the child. A serial link
//! may own a child too (QEMU behind a pty, [`Link::with_child`]).

use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use rustix::process::Signal;

/// Reads from the target that may wait for the session (16 KiB each).
pub const QUEUED_READS: usize = 64;
/// How long a child asked to stop ([`Stop::Ask`]) may take before it is killed.
pub const STOP_WAIT: Duration = Duration::from_secs(3);

/// How a [`Link`] ends its child process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL to its process group.
    Kill,
    /// SIGTERM to the child, which cleans up; SIGKILL to the group after
    /// [`STOP_WAIT`].
    Ask,
}

/// Something the reader thread observed.
pub enum Event {
    /// Bytes from the target.
    Data(Vec<u8>),
    /// The target closed its side (process exited, port gone).
    Closed(String),
}

/// A running link to a target.
pub struct Link {
    /// Human-readable description ("QEMU raspi0 with build/kernel.img", ...).
    pub description: String,
    events: Receiver<Event>,
    jobs: Option<Sender<Vec<u8>>>,
    written: Receiver<io::Result<usize>>,
    stop: Arc<AtomicBool>,
    child: Option<Child>,
    stop_child: Stop,
    stderr: Option<Arc<Mutex<Vec<u8>>>>,
    /// Bytes per second the link can carry, if it is a real serial line.
    pub bytes_per_sec: Option<u32>,
}

impl Link {
    fn start(
        description: String,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        chunk: usize,
        stop: Arc<AtomicBool>,
    ) -> Link {
        let (ev_tx, events) = mpsc::sync_channel(QUEUED_READS);
        let reader_stop = stop.clone();
        thread::spawn(move || read_loop(reader, ev_tx, reader_stop));
        let (jobs, job_rx) = mpsc::channel::<Vec<u8>>();
        let (done_tx, written) = mpsc::channel();
        let writer_stop = stop.clone();
        thread::spawn(move || write_loop(writer, job_rx, done_tx, chunk, writer_stop));
        Link {
            description,
            events,
            jobs: Some(jobs),
            written,
            stop,
            child: None,
            stop_child: Stop::Kill,
            stderr: None,
            bytes_per_sec: None,
        }
    }

    /// Spawn `cmd` with piped stdin/stdout/stderr as the target; see [`spawn_child`].
    ///
    /// `stop` is how the link ends the child when dropped: `Stop::Kill` kills its
    /// process group at once (an emulator); `Stop::Ask` sends SIGTERM to the child
    /// alone and waits up to [`STOP_WAIT`] for it to clean up and exit (the
    /// `--exec` supervisor), then kills the group if it has not.
    pub fn spawn(mut cmd: Command, description: String, stop: Stop) -> anyhow::Result<Link> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let death = match stop {
            Stop::Kill => Signal::KILL,
            Stop::Ask => Signal::TERM,
        };
        let mut child = spawn_child(cmd, death)?;
        let stdin = child.stdin.take().context("the child has no stdin pipe")?;
        let stdout = child
            .stdout
            .take()
            .context("the child has no stdout pipe")?;
        let stderr = child
            .stderr
            .take()
            .context("the child has no stderr pipe")?;
        let flag = Arc::new(AtomicBool::new(false));
        let mut link = Link::start(description, Box::new(stdout), Box::new(stdin), 4096, flag);
        link.child = Some(child);
        link.stop_child = stop;
        link.stderr = Some(keep_tail(stderr));
        Ok(link)
    }

    /// Make the link own `child` (its process group killed when the link is
    /// dropped), whose output tail is `output` (shown as the target's stderr).
    pub fn with_child(mut self, child: Child, output: Arc<Mutex<Vec<u8>>>) -> Link {
        self.child = Some(child);
        self.stop_child = Stop::Kill;
        self.stderr = Some(output);
        self
    }

    /// Open a serial port (8N1, no flow control) as the target.
    pub fn serial(path: &str, baud: u32) -> anyhow::Result<Link> {
        let port = open_serial(path, baud)?;
        let reader = port
            .try_clone_native()
            .with_context(|| format!("cannot clone the handle of {path}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        // Small chunks: a serial write with a timeout then reports progress often.
        let mut link = Link::start(
            format!("{path} at {baud} baud"),
            Box::new(reader),
            Box::new(port),
            64,
            stop,
        );
        link.bytes_per_sec = Some(baud / 10);
        Ok(link)
    }

    /// Queue `data` for writing; completion is reported by [`Link::poll_written`].
    pub fn send(&self, data: Vec<u8>) {
        if let Some(jobs) = &self.jobs {
            // A closed channel means the writer died: its error arrives via `written`.
            let _ = jobs.send(data);
        }
    }

    /// Wait up to `wait` for the next event from the target.
    pub fn next_event(&self, wait: Duration) -> Option<Event> {
        match self.events.recv_timeout(wait) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) => None,
            // The reader always sends `Closed` before it stops; don't repeat it.
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Whether a queued write finished (Ok(bytes) or the write error).
    pub fn poll_written(&self) -> Option<io::Result<usize>> {
        self.written.try_recv().ok()
    }

    /// What the child wrote on stderr (the tail), if the target is a process.
    pub fn stderr_tail(&self) -> Vec<u8> {
        self.stderr
            .as_ref()
            .map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.jobs = None;
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            if self.stop_child == Stop::Ask {
                let _ = rustix::process::kill_process(pid, Signal::TERM);
                let t0 = std::time::Instant::now();
                while t0.elapsed() < STOP_WAIT {
                    match child.try_wait() {
                        // Exited and reaped: its pid may be reused, signal nothing more.
                        Ok(Some(_)) | Err(_) => return,
                        Ok(None) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
            // The child leads its own group: take any helpers it started with it.
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Spawn `cmd` (its stdio set by the caller) in a process group of its own.
///
/// The group keeps a terminal's Ctrl-C away from the child (the caller decides how
/// it ends) and lets the caller kill everything the child started.
/// `PR_SET_PDEATHSIG(death)` makes the kernel send `death` to the child when the
/// thread that spawned it dies, however it dies (even by SIGKILL); the child checks
/// after setting it that its parent has not already gone.
pub fn spawn_child(mut cmd: Command, death: Signal) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only makes raw
    // system calls (prctl, getppid) through rustix: no allocation, no locks, so it
    // is async-signal-safe as `pre_exec` requires.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(death))?;
            // The parent may have died between fork and prctl: then nobody would
            // ever signal us.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.spawn().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            anyhow::anyhow!("`{program}` not found in PATH")
        } else {
            anyhow::Error::new(e).context(format!("cannot start `{program}`"))
        }
    })
}

/// Keeps the last 32..64 KiB `r` produces (for error reports), read by a thread.
pub fn keep_tail(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let tail = buf.clone();
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            push_tail(&tail, &chunk[..n]);
        }
    });
    buf
}

/// Appends `data` to a tail buffer, keeping its last 32..64 KiB.
pub fn push_tail(tail: &Mutex<Vec<u8>>, data: &[u8]) {
    let mut v = tail.lock().unwrap_or_else(|p| p.into_inner());
    v.extend_from_slice(data);
    if v.len() > 64 * 1024 {
        let cut = v.len() - 32 * 1024;
        v.drain(..cut);
    }
}

/// Open a serial port with the settings the board's PL011 uses.
pub fn open_serial(path: &str, baud: u32) -> anyhow::Result<serialport::TTYPort> {
    serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(100))
        .open_native()
        .with_context(|| format!("cannot open serial port {path}"))
}

fn read_loop(mut r: Box<dyn Read + Send>, tx: SyncSender<Event>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::Closed("end of output (the target exited)".into()));
                return;
            }
            Ok(n) => {
                if tx.send(Event::Data(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Event::Closed(format!("read error: {e}")));
                return;
            }
        }
    }
}

fn write_loop(
    mut w: Box<dyn Write + Send>,
    jobs: Receiver<Vec<u8>>,
    done: Sender<io::Result<usize>>,
    chunk: usize,
    stop: Arc<AtomicBool>,
) {
    while let Ok(data) = jobs.recv() {
        let mut result = Ok(data.len());
        let mut off = 0;
        while off < data.len() {
            let end = (off + chunk).min(data.len());
            match w.write(&data[off..end]) {
                Ok(0) => {
                    result = Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "target closed its input",
                    ));
                    break;
                }
                Ok(n) => off += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) =>
                {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            if let Err(e) = w.flush() {
                result = Err(e);
            }
        }
        if done.send(result).is_err() {
            return;
        }
    }
}
