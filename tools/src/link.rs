//! A byte link to the target (serial port or a child process on pipes), with a reader
//! thread and a writer thread so large sends never deadlock against unread output.
//!
//! The reader thread pushes everything the target sends into an unbounded channel as
//! soon as it arrives; the writer thread writes queued payloads in chunks and reports
//! when each is fully written. The session loop waits on both with timeouts, so a
//! target that stops reading or stops answering turns into a failed step, never a
//! hang. A child process runs in its own process group with `PR_SET_PDEATHSIG`, and
//! dropping the [`Link`] kills the whole group and reaps the child.

use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;

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
        let (ev_tx, events) = mpsc::channel();
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
            stderr: None,
            bytes_per_sec: None,
        }
    }

    /// Spawn `cmd` with piped stdin/stdout/stderr as the target.
    ///
    /// The child gets its own process group (so a terminal's Ctrl-C reaches only us
    /// and we decide how it ends) and `PR_SET_PDEATHSIG(SIGKILL)` (so it dies with us
    /// even if we are killed outright).
    pub fn spawn(mut cmd: Command, description: String) -> anyhow::Result<Link> {
        use std::os::unix::process::CommandExt;
        let parent = rustix::process::getpid();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes raw
        // system calls (prctl, getppid) through rustix: no allocation, no locks, so it
        // is async-signal-safe as `pre_exec` requires.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                // The parent may have died between fork and prctl: then nobody would
                // ever signal us.
                if rustix::process::getppid() != Some(parent) {
                    return Err(io::Error::other("parent exited"));
                }
                Ok(())
            });
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                anyhow::anyhow!("`{program}` not found in PATH")
            } else {
                anyhow::Error::new(e).context(format!("cannot start `{program}`"))
            }
        })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let errbuf = Arc::new(Mutex::new(Vec::new()));
        let errbuf2 = errbuf.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                let mut v = errbuf2.lock().unwrap_or_else(|p| p.into_inner());
                v.extend_from_slice(&buf[..n]);
                // Keep only the tail: it is for error reports.
                if v.len() > 64 * 1024 {
                    let cut = v.len() - 32 * 1024;
                    v.drain(..cut);
                }
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut link = Link::start(description, Box::new(stdout), Box::new(stdin), 4096, stop);
        link.child = Some(child);
        link.stderr = Some(errbuf);
        Ok(link)
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
            // The child leads its own group: take any helpers it started with it.
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = child.kill();
            let _ = child.wait();
        }
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

fn read_loop(mut r: Box<dyn Read + Send>, tx: Sender<Event>, stop: Arc<AtomicBool>) {
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
