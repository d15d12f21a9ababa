//! The step executor: runs a parsed script (see [`crate::script`]) against a
//! [`Link`], step by step, and reports each step and the result.
//!
//! What the target sends goes into a bounded [`Transcript`] (terminal control
//! removed, prompts located); the checks look at the current [`Window`] of it and
//! search from a cursor that advances past every match; `expect-not*` and
//! `expect-golden` ([`crate::golden`]) look at the whole window once its prompt is in.
//!
//! Time: every wait runs to the earlier of the step's and the session's deadline and
//! takes the target's output in bounded batches, so a target that floods output
//! cannot keep a wait from noticing either deadline or Ctrl-C ([`Cancel`]); and what
//! is sent (`paste`, `sendgen`, `sendfile`) is produced in chunks as the target takes
//! it, so memory never depends on a count in the script.
//!
//! Start: a target the tool started (QEMU, `--exec`) is watched from its boot: the
//! first window is the boot output up to the first prompt. A running board
//! ([`Start::Attach`], the default with `--port`) is first made to show a fresh
//! prompt: old output is drained, Ctrl-C is sent (then Enter, alternately, until a
//! prompt comes), and the session starts once the output ends with a prompt and has
//! been quiet for a moment.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vmcirc::escape;

use crate::cancel::Cancel;
use crate::golden::{self, Accepted, Mismatch};
use crate::link::{Event, Link};
use crate::script::{Line, Piece, Step, Text, Vars};
use crate::transcript::Transcript;
use crate::window::Window;

/// Text kept of the target's output by default (`--max-output`).
pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;

/// Most output taken from the link before the deadlines and the condition are
/// checked again.
const PUMP_BYTES: usize = 1 << 20;
/// Longest stretch spent taking output before the deadlines are checked again.
const PUMP_TIME: Duration = Duration::from_millis(50);
/// Bytes generated and queued at a time for `paste`, `sendgen`, `sendfile`.
const SEND_CHUNK: usize = 64 * 1024;
/// Attaching: how long old output is drained before the first key is sent ...
const ATTACH_DRAIN: Duration = Duration::from_millis(200);
/// ... how long to wait for a prompt before sending the other key ...
const ATTACH_RETRY: Duration = Duration::from_secs(1);
/// ... and how long the output must stay quiet after the prompt.
const ATTACH_QUIET: Duration = Duration::from_millis(300);

/// How the session meets its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The target is (re)starting: the first window is its boot output.
    Boot,
    /// The target is already running: provoke a fresh prompt first.
    Attach,
}

/// How a session runs.
pub struct Options {
    /// Default timeout of each step.
    pub step_timeout: Duration,
    /// Bound on the whole session.
    pub session_timeout: Duration,
    /// Echo received output to stderr.
    pub verbose: bool,
    /// Folder that `sendfile` paths (and `golden/` of `expect-golden`) are relative to.
    pub base_dir: PathBuf,
    /// `--accept`: each `expect-golden` writes what it received to its golden file.
    pub accept: bool,
    /// Most bytes of output text kept (the tail; older text is dropped).
    pub max_output: usize,
    /// Boot or attach.
    pub start: Start,
    /// Stops the session (reported as interrupted).
    pub cancel: Cancel,
    /// Print only failures (with their report), not each step and the result line:
    /// for tools that report in their own words (`vmcirc install`).
    pub quiet: bool,
    /// Show a progress bar (bytes, rate, ETA) while a payload is sent, when stdout
    /// is a terminal ([`crate::progress`]).
    pub progress: bool,
}

impl Options {
    /// The defaults of `vmcirc script` for a target the tool starts.
    pub fn new(base_dir: PathBuf, cancel: Cancel) -> Options {
        Options {
            step_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(300),
            verbose: false,
            base_dir,
            accept: false,
            max_output: DEFAULT_MAX_OUTPUT,
            start: Start::Boot,
            cancel,
            quiet: false,
            progress: false,
        }
    }
}

/// The outcome of a session.
#[derive(Debug, Default)]
pub struct Summary {
    /// Steps that held.
    pub passed: usize,
    /// Steps that failed (0 or 1: the session stops at the first failure).
    pub failed: usize,
    /// Steps not run because of an earlier failure.
    pub skipped: usize,
    /// `expect-golden` steps whose output was written to the golden file (`--accept`).
    pub accepted: usize,
    /// Of those, the files that were created or changed.
    pub changed: usize,
    /// Stopped by Ctrl-C / SIGTERM.
    pub interrupted: bool,
}

impl Summary {
    /// True when every step ran and held.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.skipped == 0 && !self.interrupted && self.passed > 0
    }
}

/// Run `lines` against `link`, printing each step and the summary line; the link (and
/// any emulator behind it) is shut down before this returns.
pub fn run(link: Link, lines: &[Line], opts: &Options) -> Summary {
    let mut r = Runner::start(link, lines, opts);
    r.run(lines);
    r.finish()
}

/// A session run in parts, for tools that build their steps as they go (`vmcirc
/// install` runs one part per image and reports between them): [`Runner::start`]
/// (which attaches to a running target), [`Runner::run`] for each part, then
/// [`Runner::finish`]. [`run`] is the three for one script.
pub struct Runner<'o> {
    s: Session<'o>,
    sum: Summary,
}

impl<'o> Runner<'o> {
    /// Starts the session; with [`Start::Attach`] it attaches first, applying the
    /// settings that lead `lines` (`prompt`, `timeout`, `eol`) to the attach.
    pub fn start(link: Link, lines: &[Line], opts: &'o Options) -> Runner<'o> {
        if !opts.quiet {
            println!("vmcirc script: {}", link.description);
            if opts.accept {
                println!("accepting new output: expect-golden steps write their golden files");
            }
        }
        let mut r = Runner {
            s: Session::new(link, opts),
            sum: Summary::default(),
        };
        if opts.start == Start::Attach {
            // Running them again later changes nothing.
            for l in lines.iter().take_while(|l| l.step.is_setting()) {
                if !matches!(l.step, Step::Sleep(_)) {
                    let _ = r.s.step(l);
                }
            }
            let t0 = Instant::now();
            match r.s.attach() {
                Ok(()) => {
                    r.sum.passed += 1;
                    r.say(format_args!(
                        "  ok    attach  : the target answered with a fresh prompt  ({:.2}s)",
                        t0.elapsed().as_secs_f64()
                    ));
                }
                Err(f) => {
                    let what = format!(
                        "a fresh prompt `{}` after Ctrl-C / Enter (attaching to a running target; \
                         --wait-boot waits for a board being powered on)",
                        escape::Bytes(r.s.t.prompt())
                    );
                    report_failure(&r.s, 0, "(attach)", &what, &f, &mut r.sum);
                }
            }
        }
        r
    }

    fn say(&self, line: std::fmt::Arguments<'_>) {
        if !self.s.opts.quiet {
            println!("{line}");
        }
    }

    /// Runs `lines`, printing each step; false when a step failed (here or in an
    /// earlier part: then nothing runs, and the steps count as skipped).
    pub fn run(&mut self, lines: &[Line]) -> bool {
        let counted = |l: &Line| !l.step.is_setting();
        for (idx, line) in lines.iter().enumerate() {
            if self.sum.failed > 0 {
                self.sum.skipped += lines[idx..].iter().filter(|l| counted(l)).count();
                break;
            }
            let t0 = Instant::now();
            let result = self.s.step(line);
            if !counted(line) {
                if let Err(f) = result {
                    // Only `sleep` can fail (interrupt or session timeout).
                    report_failure(&self.s, line.lineno, &line.source, "", &f, &mut self.sum);
                }
                continue;
            }
            match (result, self.s.accepted.take()) {
                (Ok(()), Some(acc)) => {
                    self.sum.accepted += 1;
                    self.sum.changed += usize::from(acc.changed);
                    self.say(format_args!(
                        "  accepted line {:>3}: {}  ({:.2}s; {})",
                        line.lineno,
                        line.source,
                        t0.elapsed().as_secs_f64(),
                        acc.note
                    ));
                    for l in &acc.diff {
                        self.say(format_args!("          {l}"));
                    }
                }
                (Ok(()), None) => {
                    self.sum.passed += 1;
                    self.say(format_args!(
                        "  ok    line {:>3}: {}  ({:.2}s)",
                        line.lineno,
                        line.source,
                        t0.elapsed().as_secs_f64()
                    ));
                }
                (Err(f), _) => {
                    let what = self.s.describe(&line.step);
                    report_failure(&self.s, line.lineno, &line.source, &what, &f, &mut self.sum);
                }
            }
        }
        self.sum.failed == 0
    }

    /// What the last `expect`, `expect-re`, `expect-line` or `expect-each` (its last
    /// line) step matched (at most 4 KiB of it), as text.
    pub fn last_match(&self) -> Option<String> {
        self.s
            .last_match
            .as_deref()
            .map(|m| String::from_utf8_lossy(m).into_owned())
    }

    /// Checks that the shell is back at the prompt (unless a step failed), prints the
    /// result line and shuts the link down.
    pub fn finish(mut self) -> Summary {
        let mut sum = std::mem::take(&mut self.sum);
        if sum.failed == 0 && !sum.interrupted {
            // The shell must still be alive at the end: the last command returns to
            // the prompt.
            let s = &mut self.s;
            let label = s.win.label.clone();
            let t0 = Instant::now();
            match s.wait_idle(s.step_timeout) {
                Ok(()) => {
                    sum.passed += 1;
                    self.say(format_args!(
                        "  ok    end     : the shell is back at the prompt  ({:.2}s)",
                        t0.elapsed().as_secs_f64()
                    ));
                }
                Err(f) => {
                    let what =
                        format!("the prompt `{}` after {label}", escape::Bytes(s.t.prompt()));
                    report_failure(s, 0, "(end of script)", &what, &f, &mut sum);
                }
            }
        }
        let quiet = self.s.opts.quiet;
        drop(self);
        if !quiet {
            let mut result = format!("{} passed, {} failed", sum.passed, sum.failed);
            if sum.accepted > 0 {
                result += &format!(", {} accepted ({} changed)", sum.accepted, sum.changed);
            }
            if sum.skipped > 0 {
                result += &format!(", {} skipped", sum.skipped);
            }
            println!("{result}");
        }
        sum
    }
}

fn report_failure(
    s: &Session,
    lineno: usize,
    source: &str,
    what: &str,
    f: &Fail,
    sum: &mut Summary,
) {
    sum.failed += 1;
    if matches!(f, Fail::Interrupted) {
        sum.interrupted = true;
    }
    if lineno > 0 {
        println!("  FAIL  line {lineno:>3}: {source}");
    } else {
        println!("  FAIL  {source}");
    }
    if !what.is_empty() {
        println!("        expected: {what}");
    }
    println!("        but: {}", f.explain());
    if let Fail::Golden { diff, .. } = f {
        // The diff shows the received output where it matters; no tail.
        for l in diff {
            println!("          {l}");
        }
        println!(
            "        if the new output is right, take it with --accept (or VMCIRC_ACCEPT=1) and review the file"
        );
    } else if s.t.received() == 0 {
        println!("        nothing was received from the target");
    } else {
        // The text the checks saw (terminal control removed), last lines, escaped.
        let end = s.t.end();
        let tail = s.t.get(end.saturating_sub(2400), end);
        println!(
            "        last output received ({} bytes in all; escape sequences and \\r removed, -v shows everything):",
            s.t.received()
        );
        print_escaped_lines(&tail[nth_line_from_end(tail, 24)..], "          | ");
    }
    if s.t.dropped() > 0 {
        println!(
            "        note: the oldest {} bytes of output text were dropped (the tool keeps the last {}, --max-output)",
            s.t.dropped(),
            s.t.cap()
        );
    }
    let err = s.link.stderr_tail();
    if !err.is_empty() {
        println!("        target's stderr:");
        print_escaped_lines(&err[err.len().saturating_sub(1000)..], "          ! ");
    }
}

/// Start of the `n`-th line from the end of `b`.
fn nth_line_from_end(b: &[u8], n: usize) -> usize {
    let body = b.strip_suffix(b"\n").unwrap_or(b);
    body.iter()
        .enumerate()
        .rev()
        .filter(|&(_, &c)| c == b'\n')
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i + 1)
}

fn print_escaped_lines(b: &[u8], prefix: &str) {
    for chunk in b.split_inclusive(|&c| c == b'\n') {
        println!("{prefix}{}", escape::Bytes(chunk));
    }
}

/// `-v`: received bytes on stderr as they arrive, escaped except for line ends.
fn show_verbose(d: &[u8]) {
    let mut shown = String::new();
    for (i, line) in d.split(|&c| c == b'\n').enumerate() {
        if i > 0 {
            shown.push('\n');
        }
        let line: Vec<u8> = line.iter().copied().filter(|&c| c != b'\r').collect();
        let _ = escape::write_bytes(&mut shown, &line);
    }
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(shown.as_bytes());
    let _ = e.flush();
}

/// Why a step failed.
#[derive(Debug)]
enum Fail {
    Timeout(Duration),
    PromptFirst,
    Closed(String),
    Interrupted,
    SessionTimeout(Duration),
    Other(String),
    /// The output differs from the golden file: a summary and the line diff.
    Golden {
        summary: String,
        diff: Vec<String>,
    },
}

impl Fail {
    fn explain(&self) -> String {
        match self {
            Fail::Timeout(d) => {
                format!("not seen within the step timeout ({:.1}s)", d.as_secs_f64())
            }
            Fail::PromptFirst => "the prompt came back without it".into(),
            Fail::Closed(why) => format!("the target closed the link: {why}"),
            Fail::Interrupted => "interrupted (Ctrl-C)".into(),
            Fail::SessionTimeout(d) => {
                format!("the session timeout ({:.0}s) ran out", d.as_secs_f64())
            }
            Fail::Other(s) => s.clone(),
            Fail::Golden { summary, .. } => summary.clone(),
        }
    }
}

impl From<Mismatch> for Fail {
    fn from(m: Mismatch) -> Fail {
        match m {
            Mismatch::Differs { summary, diff } => Fail::Golden { summary, diff },
            Mismatch::Other(s) => Fail::Other(s),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// `now + d`, or `None` (no deadline) when that is beyond what an `Instant` holds.
fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// The earlier of two optional deadlines.
fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Complete lines of `text` (which starts at a line boundary): (start, end) with end
/// at the newline, and the last unterminated line only if `fin`.
fn line_spans(text: &[u8], fin: bool) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut p = 0;
    std::iter::from_fn(move || {
        if p >= text.len() {
            return None;
        }
        match text[p..].iter().position(|&c| c == b'\n') {
            Some(k) => {
                let span = (p, p + k);
                p += k + 1;
                Some(span)
            }
            None if fin => {
                let span = (p, text.len());
                p = text.len();
                Some(span)
            }
            None => None,
        }
    })
}

struct Session<'o> {
    link: Link,
    t: Transcript,
    eol: Vec<u8>,
    step_timeout: Duration,
    deadline: Option<Instant>,
    win: Window,
    cursor: usize,
    /// How many prompts the shell owes so far: 1 for boot (or the prompts up to the
    /// fresh one after attaching), one per line typed (`>`, each `paste` line) and
    /// what `raw` bytes bring back ([`raw_owes`]).
    owed: usize,
    vars: Vars,
    closed: Option<String>,
    /// When output last arrived.
    last_data: Instant,
    /// Set by an `expect-golden` step that wrote its file (`--accept`).
    accepted: Option<Accepted>,
    /// What the last `expect`/`expect-re`/`expect-line`/`expect-each` matched (at
    /// most 4 KiB).
    last_match: Option<Vec<u8>>,
    /// How many of each control byte (0x00-0x1f) the target sent in all, and how
    /// many when the current output began: `sendfile-acked` counts its ACKs so.
    controls: [u64; 32],
    controls_mark: [u64; 32],
    /// The progress bar of the payload being sent, if shown.
    bar: Option<crate::progress::Bar>,
    opts: &'o Options,
}

impl<'o> Session<'o> {
    fn new(link: Link, opts: &'o Options) -> Session<'o> {
        Session {
            link,
            t: Transcript::new(opts.max_output, b"vmcirc> "),
            eol: b"\r".to_vec(),
            step_timeout: opts.step_timeout,
            deadline: deadline_after(opts.session_timeout),
            win: Window::first(0, 1, "the boot output before the first prompt"),
            cursor: 0,
            owed: 1,
            vars: Vars::default(),
            closed: None,
            last_data: Instant::now(),
            accepted: None,
            last_match: None,
            controls: [0; 32],
            controls_mark: [0; 32],
            bar: None,
            opts,
        }
    }

    /// Takes one event; returns the bytes it carried.
    fn ingest(&mut self, ev: Event) -> usize {
        match ev {
            Event::Data(d) => {
                if self.opts.verbose {
                    show_verbose(&d);
                }
                self.t.ingest(&d);
                for &b in &d {
                    if let Some(n) = self.controls.get_mut(usize::from(b)) {
                        *n += 1;
                    }
                }
                self.last_data = Instant::now();
                d.len()
            }
            Event::Closed(why) => {
                if self.closed.is_none() {
                    self.closed = Some(why);
                }
                0
            }
        }
    }

    /// Waits up to `wait` for output, then takes what else is queued, but at most
    /// [`PUMP_BYTES`] and [`PUMP_TIME`], so the caller gets back to its deadlines
    /// however fast the target sends.
    fn pump(&mut self, wait: Duration) {
        let Some(ev) = self.link.next_event(wait) else {
            return;
        };
        let t0 = Instant::now();
        let mut taken = self.ingest(ev);
        while taken < PUMP_BYTES && t0.elapsed() < PUMP_TIME {
            match self.link.next_event(Duration::ZERO) {
                Some(ev) => taken += self.ingest(ev),
                None => break,
            }
        }
    }

    /// Pump output until `cond` yields a value, fails, or time runs out.
    fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut cond: impl FnMut(&mut Self) -> Result<Option<T>, Fail>,
    ) -> Result<T, Fail> {
        let step_deadline = deadline_after(timeout);
        let deadline = earlier(step_deadline, self.deadline);
        loop {
            self.win.refresh(&self.t);
            if let Some(v) = cond(self)? {
                return Ok(v);
            }
            if let Some(why) = &self.closed {
                return Err(Fail::Closed(why.clone()));
            }
            if self.opts.cancel.is_cancelled() {
                return Err(Fail::Interrupted);
            }
            let now = Instant::now();
            let mut wait = Duration::from_millis(50);
            if let Some(d) = deadline {
                if now >= d {
                    return Err(if Some(d) == step_deadline {
                        Fail::Timeout(timeout)
                    } else {
                        Fail::SessionTimeout(self.opts.session_timeout)
                    });
                }
                wait = wait.min(d - now);
            }
            self.pump(wait);
        }
    }

    /// Checks the deadlines and Ctrl-C between chunks of work that takes no output.
    fn check_time(
        &mut self,
        step_deadline: Option<Instant>,
        timeout: Duration,
    ) -> Result<(), Fail> {
        self.pump(Duration::ZERO);
        if self.opts.cancel.is_cancelled() {
            return Err(Fail::Interrupted);
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(Fail::SessionTimeout(self.opts.session_timeout));
        }
        if step_deadline.is_some_and(|d| now >= d) {
            return Err(Fail::Timeout(timeout));
        }
        Ok(())
    }

    /// Sends `chunks` (of `total` bytes, if known, for messages) while taking the
    /// target's output: at most two chunks are queued at a time, and each must be
    /// taken within the step timeout plus its time on the wire. With `ack`, each
    /// chunk is a block sent only after one more `ack` byte came ([`Self::wait_ack`]).
    fn send_chunks(
        &mut self,
        mut chunks: impl Iterator<Item = Result<Vec<u8>, Fail>>,
        total: Option<u64>,
        ack: Option<u8>,
    ) -> Result<(), Fail> {
        let mut queued = std::collections::VecDeque::new();
        let mut taken = 0u64;
        let mut blocks = 0u64;
        let of = |taken: u64| match total {
            Some(total) => format!("{taken} of {total} bytes"),
            None => format!("{taken} bytes"),
        };
        let depth = if ack.is_some() { 1 } else { 2 };
        loop {
            while queued.len() < depth {
                match chunks.next() {
                    Some(c) => {
                        let c = c?;
                        if let Some(ack) = ack {
                            blocks += 1;
                            self.wait_ack(ack, blocks, &of(taken))?;
                        }
                        queued.push_back(c.len());
                        self.link.send(c);
                    }
                    None => break,
                }
            }
            let Some(&len) = queued.front() else {
                return Ok(());
            };
            let wire = self.link.bytes_per_sec.map_or(Duration::ZERO, |bps| {
                Duration::from_secs_f64(len as f64 / f64::from(bps.max(1)))
            });
            self.wait_for(self.step_timeout.saturating_add(wire), |s| {
                match s.link.poll_written() {
                    Some(Ok(_)) => Ok(Some(())),
                    Some(Err(e)) => Err(Fail::Other(format!(
                        "writing failed after {}: {e}",
                        of(taken)
                    ))),
                    None => Ok(None),
                }
            })
            .map_err(|f| match f {
                Fail::Timeout(d) => Fail::Other(format!(
                    "the target stopped reading: it took {}, then nothing for {:.1}s",
                    of(taken),
                    d.as_secs_f64()
                )),
                f => f,
            })?;
            queued.pop_front();
            taken += len as u64;
            if let Some(bar) = &self.bar {
                bar.inc(len as u64);
            }
        }
    }

    /// Waits until the target has sent `n` of the byte `ack` since the current
    /// output began; fails when the output ends first (the command's prompt came
    /// back) or after the step timeout. `sent` says how far the transfer got.
    fn wait_ack(&mut self, ack: u8, n: u64, sent: &str) -> Result<(), Fail> {
        let i = usize::from(ack);
        let t = self.step_timeout;
        self.wait_for(t, |s| {
            let seen = match (s.controls.get(i), s.controls_mark.get(i)) {
                (Some(a), Some(m)) => a - m,
                _ => 0,
            };
            if seen >= n {
                return Ok(Some(()));
            }
            if s.win.end.is_some() {
                return Err(Fail::Other(format!(
                    "the prompt came back after {sent}, without `{}` for the next block",
                    escape::Bytes(&[ack])
                )));
            }
            Ok(None)
        })
        .map_err(|f| match f {
            Fail::Timeout(d) => Fail::Other(format!(
                "no `{}` for the next block within {:.1}s after {sent}",
                escape::Bytes(&[ack]),
                d.as_secs_f64()
            )),
            f => f,
        })
    }

    /// Where the output after prompt number `k` starts (0: the session's start).
    fn after_prompt(&self, k: usize) -> usize {
        self.t
            .prompt_start(k)
            .map_or(0, |p| p + self.t.prompt().len())
    }

    /// Attach to a running target: drain old output, then send Ctrl-C and Enter
    /// alternately until the output ends with a prompt that came after the key and has
    /// been quiet for [`ATTACH_QUIET`].
    fn attach(&mut self) -> Result<(), Fail> {
        match self.wait_for(ATTACH_DRAIN, |_| Ok(None::<()>)) {
            Ok(()) | Err(Fail::Timeout(_)) => {}
            Err(f) => return Err(f),
        }
        let mark = self.t.end();
        let keys: [&[u8]; 2] = [b"\x03", b"\r"];
        let mut tries = 1usize;
        let mut sent = Instant::now();
        self.link.send(keys[0].to_vec());
        self.wait_for(self.step_timeout, |s| {
            let plen = s.t.prompt().len();
            let fresh =
                s.t.prompt_start(s.t.prompts())
                    .is_some_and(|p| p >= mark && p + plen == s.t.end());
            if fresh {
                return Ok((s.last_data.elapsed() >= ATTACH_QUIET).then_some(()));
            }
            if sent.elapsed() >= ATTACH_RETRY {
                s.link.send(keys[tries % 2].to_vec());
                tries += 1;
                sent = Instant::now();
            }
            Ok(None)
        })?;
        // Every key was written (so no write completion is left for a later step).
        let mut written = 0;
        self.wait_for(self.step_timeout, |s| {
            while let Some(r) = s.link.poll_written() {
                r.map_err(|e| Fail::Other(format!("writing a key failed: {e}")))?;
                written += 1;
            }
            Ok((written == tries).then_some(()))
        })?;
        self.owed = self.t.prompts();
        self.cursor = self.after_prompt(self.owed);
        self.win = Window::first(mark, self.owed, "the output after attaching");
        Ok(())
    }

    /// Wait until every prompt owed so far has arrived: the shell is idle.
    fn wait_idle(&mut self, timeout: Duration) -> Result<(), Fail> {
        let owed = self.owed;
        self.wait_for(timeout, |s| Ok((s.t.prompts() >= owed).then_some(())))?;
        self.cursor = self.cursor.max(self.after_prompt(owed));
        Ok(())
    }

    /// Wait until the current window is ended by its prompt and move the cursor past
    /// it. An open stream is ended by the next prompt after the cursor, and the count
    /// of owed prompts resynchronises to it.
    fn finish_window(&mut self, timeout: Duration) -> Result<(), Fail> {
        if self.win.end_prompt.is_none() {
            let from = self.cursor.max(self.win.start);
            let k = self.wait_for(timeout, |s| Ok(s.t.prompt_at_or_after(from)))?;
            self.win.end_prompt = Some(k);
            self.owed = self.owed.max(k);
            self.win.refresh(&self.t);
        }
        let end = self.wait_for(timeout, |s| Ok(s.win.end))?;
        self.cursor = self.cursor.max(end + self.t.prompt().len());
        Ok(())
    }

    /// The searchable region: (from, to, final) where final means the prompt is in.
    fn region(&self) -> Option<(usize, usize, bool)> {
        let out_start = self.win.out_start?;
        let (to, fin) = match self.win.end {
            Some(e) => (e, true),
            None => (self.t.end(), false),
        };
        let from = self.cursor.max(out_start).max(self.t.dropped()).min(to);
        Some((from, to, fin))
    }

    /// The region from its first line boundary: (start position, final), or `None`
    /// while no line has begun in it.
    fn line_region(&self) -> Option<(usize, usize, bool)> {
        let (from, to, fin) = self.region()?;
        let out_start = self.win.out_start.unwrap_or(from);
        let at_boundary = from <= out_start || self.t.get(from - 1, from) == b"\n";
        if at_boundary {
            return Some((from, to, fin));
        }
        let k = self.t.get(from, to).iter().position(|&c| c == b'\n')?;
        Some((from + k + 1, to, fin))
    }

    fn expand(&self, t: &Text, index: Option<usize>) -> Result<Vec<u8>, Fail> {
        t.expand(&self.vars, index).map_err(Fail::Other)
    }

    fn describe(&self, step: &Step) -> String {
        let ex =
            |t: &Text| escape::Bytes(&t.expand(&self.vars, None).unwrap_or_default()).to_string();
        let w = &self.win.label;
        let prompt = escape::Bytes(self.t.prompt());
        match step {
            Step::Expect(t) => format!("`{}` in {w}", ex(t)),
            Step::ExpectRe(p) => format!("a match for /{}/ in {w}", p.source),
            Step::ExpectLine(t) => format!("a line `{}` in {w}", ex(t)),
            Step::ExpectEach { count, template } => {
                let shown: String = template
                    .0
                    .iter()
                    .map(|p| match p {
                        Piece::Index => "{i}".to_string(),
                        p => ex(&Text(vec![p.clone()])),
                    })
                    .collect();
                format!(
                    "{count} lines `{shown}` (i = 0..{}) in order in {w}",
                    count.saturating_sub(1)
                )
            }
            Step::ExpectNot(t) => format!("no `{}` in {w}", ex(t)),
            Step::ExpectGolden(name) => format!(
                "{w} to equal the golden file {}",
                self.golden_path(name).display()
            ),
            Step::ExpectNotRe(p) => format!("no match for /{}/ in {w}", p.source),
            Step::WaitPrompt => format!("the prompt `{prompt}` after {w}"),
            Step::Command(_) | Step::Paste { .. } => format!(
                "the prompt `{prompt}` (number {} of the session) after {w}, then to send the line",
                self.owed
            ),
            Step::Raw(_)
            | Step::SendFile(_)
            | Step::SendFileAcked { .. }
            | Step::SendGen { .. }
                if self.t.prompts() == 0 =>
            {
                format!("the first prompt `{prompt}` (nothing is typed before it), then to send the bytes")
            }
            Step::Raw(_)
            | Step::SendFile(_)
            | Step::SendFileAcked { .. }
            | Step::SendGen { .. } => "to send the bytes".into(),
            _ => String::new(),
        }
    }

    /// Before raw bytes: nothing is typed before the session's first prompt (a
    /// booting kernel flushes its UART while it initialises it); a running command
    /// must have taken its line (echo done), so the bytes reach the command, not the
    /// line editor. At the prompt, they start an open stream. `owes(running)` is how
    /// many prompts the bytes will bring back, given whether a command is running.
    fn before_raw(&mut self, owes: impl Fn(bool) -> usize, label: String) -> Result<(), Fail> {
        let t = self.step_timeout;
        if self.t.prompts() == 0 {
            self.finish_window(t)?;
        }
        if self.win.end_prompt.is_some() && self.win.end.is_none() {
            self.wait_for(t, |s| Ok(s.win.out_start.map(|_| ())))?;
            self.owed += owes(true);
        } else {
            let lines = owes(false);
            if let Some(end) = self.win.end {
                self.cursor = self.cursor.max(end + self.t.prompt().len());
            }
            self.owed += lines;
            self.controls_mark = self.controls;
            let end_prompt = (lines > 0).then_some(self.owed);
            self.win = Window::stream(self.cursor, end_prompt, label);
        }
        Ok(())
    }

    /// Types `count` lines (`line(i)`, each followed by the line ending) as one burst.
    fn send_lines(
        &mut self,
        count: usize,
        line: impl Fn(usize) -> Vec<u8>,
        label: String,
    ) -> Result<(), Fail> {
        // Raw input typed at the prompt without a line end (an open stream) is the
        // start of this line: the shell is idle once every owed prompt is in.
        self.wait_idle(self.step_timeout)?;
        let start = self.after_prompt(self.owed).max(self.cursor);
        self.cursor = start;
        // The echo is what a terminal shows of the first line: the line editor
        // consumes its escape sequences and control bytes.
        let echo = crate::filter::clean(&line(0));
        self.owed += count;
        self.controls_mark = self.controls;
        self.win = Window::command(start, self.owed, echo, label);
        let eol = self.eol.clone();
        let mut i = 0;
        let chunks = std::iter::from_fn(|| {
            if i >= count {
                return None;
            }
            let mut chunk = Vec::new();
            while i < count && chunk.len() < SEND_CHUNK {
                chunk.extend_from_slice(&line(i));
                chunk.extend_from_slice(&eol);
                i += 1;
            }
            Some(Ok(chunk))
        });
        self.send_chunks(chunks, None, None)
    }

    /// Sends a payload for a running command (or typed at the prompt), generated in
    /// chunks; `${len}`/`${crc32}` become its length and CRC-32.
    fn payload(
        &mut self,
        chunks: impl Iterator<Item = Result<Vec<u8>, Fail>>,
        total: u64,
        owes: impl Fn(bool) -> usize,
        label: String,
        ack: Option<u8>,
    ) -> Result<(), Fail> {
        self.before_raw(owes, label)?;
        if self.opts.progress {
            self.bar = crate::progress::Bar::new(total);
        }
        let mut digest = vmcirc::crc32::CRC32.digest();
        let mut len = 0u64;
        let counted = chunks.inspect(|c| {
            if let Ok(c) = c {
                digest.update(c);
                len += c.len() as u64;
            }
        });
        let sent = self.send_chunks(counted, Some(total), ack);
        self.bar = None;
        sent?;
        self.vars.payload = Some((len, digest.finalize()));
        Ok(())
    }

    /// The CRC-32 of `sendgen len seed`, computed within the step's time.
    fn sendgen_crc(&mut self, len: u64, seed: u64) -> Result<u32, Fail> {
        let timeout = self.step_timeout;
        let step_deadline = deadline_after(timeout);
        let mut digest = vmcirc::crc32::CRC32.digest();
        for chunk in sendgen_chunks(len, seed) {
            digest.update(&chunk?);
            self.check_time(step_deadline, timeout)?;
        }
        Ok(digest.finalize())
    }

    fn step(&mut self, line: &Line) -> Result<(), Fail> {
        let t = self.step_timeout;
        let at = line.lineno;
        match &line.step {
            Step::Timeout(d) => self.step_timeout = *d,
            Step::Prompt(p) => self.t.set_prompt(p),
            Step::Eol(e) => self.eol = e.clone(),
            Step::Sleep(d) => match self.wait_for(*d, |_| Ok(None::<()>)) {
                Ok(()) | Err(Fail::Timeout(_)) => {}
                Err(f) => return Err(f),
            },
            Step::Command(text) => {
                let l = text.literal();
                let label = format!("the output of `> {}` (line {at})", escape::Bytes(&l));
                self.send_lines(1, |_| l.clone(), label)?;
            }
            Step::Paste { count, template } => {
                // Variables do not change during the step: if line 0 expands, all do.
                self.expand(template, Some(0))?;
                let vars = self.vars;
                let label = format!("the output of the {count} pasted lines (line {at})");
                self.send_lines(
                    *count,
                    |i| template.expand(&vars, Some(i)).unwrap_or_default(),
                    label,
                )?;
            }
            Step::Raw(text) => {
                let label = format!("the output after `raw` (line {at})");
                let bytes = text.literal();
                let total = bytes.len() as u64;
                let (at_prompt, running) = (raw_owes(&bytes, false), raw_owes(&bytes, true));
                let owes = move |r| if r { running } else { at_prompt };
                self.payload(std::iter::once(Ok(bytes)), total, owes, label, None)?;
            }
            Step::SendFile(path) => {
                let (total, chunks) = file_chunks(&self.opts.base_dir.join(path), SEND_CHUNK)?;
                let label = format!("the output after `sendfile` (line {at})");
                self.payload(chunks, total, |_| 0, label, None)?;
            }
            Step::SendFileAcked { block, ack, path } => {
                let (total, chunks) = file_chunks(&self.opts.base_dir.join(path), *block)?;
                let label = format!("the output after `sendfile-acked` (line {at})");
                self.payload(chunks, total, |_| 0, label, Some(*ack))?;
            }
            Step::SendGen { len, seed, pin } => {
                if let Some(pin) = pin {
                    let crc = self.sendgen_crc(*len, *seed)?;
                    if crc != *pin {
                        return Err(Fail::Other(format!(
                            "the generated stream has CRC-32 {crc:08x}, the script pins {pin:08x}: \
                             the generator or the CRC disagrees with the reference"
                        )));
                    }
                }
                let label = format!("the output after `sendgen` (line {at})");
                self.payload(sendgen_chunks(*len, *seed), *len, |_| 0, label, None)?;
            }
            Step::Expect(text) => {
                let needle = self.expand(text, None)?;
                let end = self.wait_for(t, |s| {
                    let Some((from, to, fin)) = s.region() else {
                        return Ok(None);
                    };
                    match find(s.t.get(from, to), &needle) {
                        Some(p) => Ok(Some(from + p + needle.len())),
                        None if fin => Err(Fail::PromptFirst),
                        None => Ok(None),
                    }
                })?;
                self.cursor = end;
                self.matched(end - needle.len(), end);
            }
            Step::ExpectRe(pat) => {
                let re = pat.compile(&self.vars).map_err(Fail::Other)?;
                let end = self.wait_for(t, |s| {
                    let Some((from, to, fin)) = s.region() else {
                        return Ok(None);
                    };
                    let text = s.t.get(from, to);
                    // Until the prompt is in, only look at complete lines, so a regex
                    // cannot match half a number that is still arriving.
                    let lim = if fin {
                        text.len()
                    } else {
                        text.iter().rposition(|&c| c == b'\n').map_or(0, |k| k + 1)
                    };
                    match re.find(&text[..lim]) {
                        Some(m) => Ok(Some((from + m.start(), from + m.end()))),
                        None if fin => Err(Fail::PromptFirst),
                        None => Ok(None),
                    }
                })?;
                let (start, end) = end;
                self.cursor = end;
                self.matched(start, end);
            }
            Step::ExpectLine(text) => {
                let want = self.expand(text, None)?;
                self.expect_lines(t, 1, |_| want.clone())?;
            }
            Step::ExpectEach { count, template } => {
                self.expand(template, Some(0))?;
                let vars = self.vars;
                self.expect_lines(t, *count, |i| {
                    template.expand(&vars, Some(i)).unwrap_or_default()
                })?;
            }
            Step::ExpectNot(text) => {
                let needle = self.expand(text, None)?;
                let (a, b) = self.whole_output(t)?;
                let out = self.t.get(a, b);
                if let Some(p) = find(out, &needle) {
                    return Err(Fail::Other(format!(
                        "found at offset {p} of the output: `{}`",
                        escape::Bytes(context(out, p, needle.len()))
                    )));
                }
            }
            Step::ExpectNotRe(pat) => {
                let re = pat.compile(&self.vars).map_err(Fail::Other)?;
                let (a, b) = self.whole_output(t)?;
                let out = self.t.get(a, b);
                if let Some(m) = re.find(out) {
                    return Err(Fail::Other(format!(
                        "matched at offset {} of the output: `{}`",
                        m.start(),
                        escape::Bytes(context(out, m.start(), m.len()))
                    )));
                }
            }
            Step::ExpectGolden(name) => {
                let (a, b) = self.whole_output(t)?;
                let got = self.t.get(a, b).to_vec();
                self.accepted = golden::check(&self.golden_path(name), &got, self.opts.accept)?;
            }
            Step::WaitPrompt => {
                self.finish_window(t)?;
                self.wait_idle(t)?;
            }
        }
        Ok(())
    }

    /// Records the text at `a..b` as the last match (its first 4 KiB).
    fn matched(&mut self, a: usize, b: usize) {
        let m = self.t.get(a, b);
        self.last_match = Some(m[..m.len().min(4096)].to_vec());
    }

    /// Wait for the window's prompt; the whole output of the window, (start, end).
    /// Fails when part of it was dropped (longer than `--max-output`).
    fn whole_output(&mut self, t: Duration) -> Result<(usize, usize), Fail> {
        self.finish_window(t)?;
        let a = self.win.out_start.unwrap_or(self.win.start);
        let b = self.win.end.unwrap_or(0).max(a);
        if a < self.t.dropped() {
            return Err(Fail::Other(format!(
                "the output is longer than the tool keeps (--max-output {}): its first {} bytes \
                 were dropped, so it cannot be checked whole",
                self.t.cap(),
                self.t.dropped() - a
            )));
        }
        Ok((a, b))
    }

    fn golden_path(&self, name: &str) -> PathBuf {
        self.opts.base_dir.join("golden").join(name)
    }

    /// Find `count` whole lines equal to `want(0)`, `want(1)`, ..., in order, each
    /// after the previous.
    fn expect_lines(
        &mut self,
        t: Duration,
        count: usize,
        want: impl Fn(usize) -> Vec<u8>,
    ) -> Result<(), Fail> {
        let mut next = 0;
        let mut current = want(0);
        let mut matched = None;
        let res = self.wait_for(t, |s| {
            let Some((from, to, fin)) = s.line_region() else {
                return Ok(None);
            };
            let text = s.t.get(from, to);
            let mut cursor = None;
            for (a, b) in line_spans(text, fin) {
                if text[a..b] == current[..] {
                    cursor = Some(from + b); // the next search starts after this line
                    matched = Some((from + a, from + b));
                    next += 1;
                    if next == count {
                        break;
                    }
                    current = want(next);
                }
            }
            if let Some(c) = cursor {
                s.cursor = c;
            }
            if let Some((a, b)) = matched.take() {
                s.matched(a, b);
            }
            if next == count {
                return Ok(Some(()));
            }
            if fin {
                return Err(Fail::PromptFirst);
            }
            Ok(None)
        });
        res.map_err(|f| {
            if count > 1 {
                Fail::Other(format!(
                    "{} (line {} of {count}, `{}`, was the first one missing)",
                    f.explain(),
                    next + 1,
                    escape::Bytes(&current)
                ))
            } else {
                f
            }
        })
    }
}

/// How many prompts `raw` bytes bring back. At the prompt, each `\r`, `\n` and
/// Ctrl-C does (a line run, a line abandoned). While a command runs, the bytes up to
/// and including the first Ctrl-C go to the command: Ctrl-C stops it (its prompt is
/// the one the command line already owes) and what was typed before it is dropped
/// with it, as a terminal flushes typed-ahead input on an interrupt; the bytes after
/// it reach the prompt that follows, so they count as at the prompt. Without a
/// Ctrl-C, each `\r` or `\n` counts (typed ahead for the next prompt; data for a
/// command that reads them goes with `sendfile`/`sendgen`).
fn raw_owes(bytes: &[u8], running: bool) -> usize {
    let ends = |b: &[u8]| b.iter().filter(|&&c| matches!(c, b'\r' | b'\n')).count();
    let ctrl_c = |b: &[u8]| b.iter().filter(|&&c| c == 0x03).count();
    match (running, bytes.iter().position(|&c| c == 0x03)) {
        (true, Some(k)) => {
            let after = &bytes[k + 1..];
            ends(after) + ctrl_c(after)
        }
        (true, None) => ends(bytes),
        (false, _) => ends(bytes) + ctrl_c(bytes),
    }
}

/// A file's length and its bytes in chunks of `size` (the last may be shorter),
/// read as they are sent.
fn file_chunks(
    full: &std::path::Path,
    size: usize,
) -> Result<(u64, impl Iterator<Item = Result<Vec<u8>, Fail>>), Fail> {
    let shown = full.display().to_string();
    let cannot = move |e: std::io::Error| Fail::Other(format!("cannot read {shown}: {e}"));
    let mut file = std::fs::File::open(full).map_err(&cannot)?;
    let total = file.metadata().map_err(&cannot)?.len();
    let mut done = false;
    let chunks = std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut buf = Vec::with_capacity(size);
        // Whole chunks however the reads come back: a block is a block.
        match (&mut file).take(size as u64).read_to_end(&mut buf) {
            Ok(0) => None,
            Ok(_) => Some(Ok(buf)),
            Err(e) => {
                done = true;
                Some(Err(cannot(e)))
            }
        }
    });
    Ok((total, chunks))
}

/// The `sendgen` stream in chunks: splitmix64 from `seed`, 8 LE bytes a step
/// ([`vmcirc::prng::SplitMix64`]), `len` bytes in all.
fn sendgen_chunks(len: u64, seed: u64) -> impl Iterator<Item = Result<Vec<u8>, Fail>> {
    let mut gen = vmcirc::prng::SplitMix64::new(seed);
    let mut left = len;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        // SEND_CHUNK is a multiple of 8: each chunk continues the stream exactly.
        let n = usize::try_from(left).unwrap_or(SEND_CHUNK).min(SEND_CHUNK);
        let mut buf = vec![0u8; n];
        gen.fill(&mut buf);
        left -= n as u64;
        Some(Ok(buf))
    })
}

fn context(b: &[u8], at: usize, len: usize) -> &[u8] {
    let a = at.saturating_sub(30);
    let z = at.saturating_add(len).saturating_add(30).min(b.len());
    &b[a.min(z)..z]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendgen_chunks_are_one_stream() {
        for len in [0u64, 1, 13, 65536, 65537, 200_003] {
            let mut whole = vec![0u8; len as usize];
            vmcirc::prng::SplitMix64::new(7).fill(&mut whole);
            let joined: Vec<u8> = sendgen_chunks(len, 7)
                .flat_map(|c| c.ok().unwrap())
                .collect();
            assert!(joined == whole, "len {len}");
        }
        // CRC-32 values computed independently with Python's zlib.crc32.
        let crc = |len, seed| {
            let mut d = vmcirc::crc32::CRC32.digest();
            for c in sendgen_chunks(len, seed) {
                d.update(&c.ok().unwrap());
            }
            d.finalize()
        };
        assert_eq!(crc(16384, 42), 0x8bde_31dc);
        assert_eq!(crc(100, 7), 0x3ae7_3ba6);
        assert_eq!(crc(13, 0), 0x9063_eb70);
    }

    #[test]
    fn lines_and_context() {
        let spans: Vec<_> = line_spans(b"a\nbc\nd", false).collect();
        assert_eq!(spans, [(0, 1), (2, 4)]);
        let spans: Vec<_> = line_spans(b"a\nbc\nd", true).collect();
        assert_eq!(spans, [(0, 1), (2, 4), (5, 6)]);
        assert_eq!(nth_line_from_end(b"a\nb\nc\n", 2), 2);
        assert_eq!(nth_line_from_end(b"a\nb\nc\n", 24), 0);
        assert_eq!(context(b"abc", 1, usize::MAX), b"abc");
    }

    #[test]
    fn raw_bytes_owe_prompts_by_where_they_land() {
        // At the prompt: every line end and Ctrl-C.
        assert_eq!(raw_owes(b"echo x\x03", false), 1);
        assert_eq!(raw_owes(b"a\rb\n\x03", false), 3);
        assert_eq!(raw_owes(b"\x1b[24;80R", false), 0);
        // A running command takes the first Ctrl-C and what came before it.
        assert_eq!(raw_owes(b"\x03", true), 0);
        assert_eq!(raw_owes(b"ab\rc\x03", true), 0);
        assert_eq!(raw_owes(b"\x03\x03", true), 1);
        assert_eq!(raw_owes(b"\x03echo x\r", true), 1);
        // Without Ctrl-C, line ends are typed ahead for the next prompt.
        assert_eq!(raw_owes(b"x\ry\r", true), 2);
        assert_eq!(raw_owes(b"hello", true), 0);
    }

    #[test]
    fn deadlines_never_overflow() {
        assert!(deadline_after(Duration::MAX).is_none());
        let soon = deadline_after(Duration::from_secs(1));
        assert_eq!(earlier(None, soon), soon);
        assert_eq!(earlier(soon, None), soon);
    }
}
