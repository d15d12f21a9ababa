//! Executes a parsed script (see [`crate::script`]) against a [`Link`].
//!
//! Everything the target sends is kept twice: the raw bytes (for failure reports) and
//! a *clean* copy with terminal control removed (for matching). The session tracks the
//! current *window*: the output of the last command, from the end of its echoed line
//! up to the prompt that follows it (or the N-th prompt for `paste`), or an open
//! stream after raw input typed at the prompt. Each `expect*` searches the window from
//! a cursor that advances past every match; `expect-not*` and `expect-golden` look at
//! the whole window once its prompt is in.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::link::{Event, Link};
use crate::script::{splitmix_bytes, Line, Piece, Step, Text, Vars};

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
    run_accepting(link, lines, opts, false)
}

/// [`run`]; with `accept` (`--accept`), each `expect-golden` writes what it received
/// to its golden file instead of comparing.
pub fn run_accepting(link: Link, lines: &[Line], opts: &Options, accept: bool) -> Summary {
    println!("vmcirc script: {}", link.description);
    if accept {
        println!("accepting new output: expect-golden steps write their golden files");
    }
    let mut s = Session::new(link, opts);
    s.accept = accept;
    let mut sum = Summary::default();
    let counted = |l: &Line| !l.step.is_setting();
    for (idx, line) in lines.iter().enumerate() {
        let t0 = Instant::now();
        let result = s.step(line);
        if !counted(line) {
            if let Err(f) = result {
                // Only `sleep` can fail (interrupt or session timeout).
                report_failure(&mut s, line.lineno, &line.source, "", &f, &mut sum);
                sum.skipped = lines[idx + 1..].iter().filter(|l| counted(l)).count();
                break;
            }
            continue;
        }
        match (result, s.accepted.take()) {
            (Ok(()), Some(acc)) => {
                sum.accepted += 1;
                sum.changed += usize::from(acc.changed);
                println!(
                    "  accepted line {:>3}: {}  ({:.2}s; {})",
                    line.lineno,
                    line.source,
                    t0.elapsed().as_secs_f64(),
                    acc.note
                );
                for l in &acc.diff {
                    println!("          {l}");
                }
            }
            (Ok(()), None) => {
                sum.passed += 1;
                println!(
                    "  ok    line {:>3}: {}  ({:.2}s)",
                    line.lineno,
                    line.source,
                    t0.elapsed().as_secs_f64()
                );
            }
            (Err(f), _) => {
                let what = s.describe(&line.step);
                report_failure(&mut s, line.lineno, &line.source, &what, &f, &mut sum);
                sum.skipped = lines[idx + 1..].iter().filter(|l| counted(l)).count();
                break;
            }
        }
    }
    if sum.failed == 0 && !sum.interrupted {
        // The shell must still be alive at the end: the last command returns to the prompt.
        {
            let label = s.win.label.clone();
            let t0 = Instant::now();
            match s.wait_idle(s.step_timeout) {
                Ok(()) => {
                    sum.passed += 1;
                    println!(
                        "  ok    end     : the shell is back at the prompt  ({:.2}s)",
                        t0.elapsed().as_secs_f64()
                    );
                }
                Err(f) => {
                    let what = format!("the prompt `{}` after {label}", esc(&s.prompt));
                    report_failure(&mut s, 0, "(end of script)", &what, &f, &mut sum);
                }
            }
        }
    }
    drop(s);
    let mut result = format!("{} passed, {} failed", sum.passed, sum.failed);
    if sum.accepted > 0 {
        result += &format!(", {} accepted ({} changed)", sum.accepted, sum.changed);
    }
    if sum.skipped > 0 {
        result += &format!(", {} skipped", sum.skipped);
    }
    println!("{result}");
    sum
}

fn report_failure(
    s: &mut Session,
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
    } else if s.out.raw.is_empty() {
        println!("        nothing was received from the target");
    } else {
        // The text the checks saw (terminal control removed), last lines, escaped.
        let clean = &s.out.clean;
        let from = nth_line_from_end(clean, 24).max(clean.len().saturating_sub(2400));
        println!(
            "        last output received ({} bytes in all; escape sequences and \\r removed, -v shows everything):",
            s.out.raw.len()
        );
        print_escaped_lines(&clean[from..], "          | ");
    }
    let err = s.link.stderr_tail();
    if !err.is_empty() {
        println!("        target's stderr:");
        print_escaped_lines(self::tail(&err, 1000), "          ! ");
    }
}

/// Start of the `n`-th line from the end of `b`.
fn nth_line_from_end(b: &[u8], n: usize) -> usize {
    let body = b.strip_suffix(b"\n").unwrap_or(b);
    body.iter()
        .enumerate()
        .rev()
        .filter(|&(_, &c)| c == b'\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1)
}

fn tail(b: &[u8], n: usize) -> &[u8] {
    &b[b.len().saturating_sub(n)..]
}

fn print_escaped_lines(b: &[u8], prefix: &str) {
    for chunk in b.split_inclusive(|&c| c == b'\n') {
        println!("{prefix}{}", esc(chunk));
    }
}

/// Escape bytes for a one-line display.
pub fn esc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x1b => s.push_str("\\e"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(c)),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
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

/// Removes terminal control from the output stream, byte by byte (sequences may be
/// split across reads).
#[derive(Default)]
struct Filter {
    state: FState,
}

#[derive(Default, Clone, Copy)]
enum FState {
    #[default]
    Normal,
    Esc,
    Csi(u8),
    Osc(u16, bool),
}

impl Filter {
    fn push(&mut self, b: u8, out: &mut Vec<u8>) {
        use FState::*;
        self.state = match self.state {
            Normal => return self.normal(b, out),
            Esc => match b {
                b'[' => Csi(0),
                b']' => Osc(0, false),
                0x20..=0x7e => Normal, // a two-byte sequence such as ESC c
                _ => return self.normal(b, out),
            },
            Csi(n) => match b {
                0x20..=0x3f if n < 32 => Csi(n + 1),
                0x40..=0x7e => Normal,
                _ => return self.normal(b, out), // malformed: resync
            },
            Osc(n, saw_esc) => match b {
                0x07 => Normal,
                b'\\' if saw_esc => Normal,
                0x1b => Osc(n + 1, true),
                _ if n >= 256 => Normal,
                _ => Osc(n + 1, false),
            },
        };
    }

    fn normal(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = FState::Normal;
        match b {
            0x1b => self.state = FState::Esc,
            b'\n' | b'\t' => out.push(b),
            0x00..=0x1f | 0x7f => {}
            _ => out.push(b),
        }
    }
}

#[derive(Default)]
struct Output {
    raw: Vec<u8>,
    clean: Vec<u8>,
    filter: Filter,
}

impl Output {
    fn ingest(&mut self, data: &[u8]) {
        self.raw.extend_from_slice(data);
        for &b in data {
            self.filter.push(b, &mut self.clean);
        }
    }
}

/// The output region the checks look at.
struct Window {
    /// Where it starts in the clean buffer.
    start: usize,
    /// The (1-based, counted from boot) prompt that ends it; `None` for an open stream
    /// (raw input that owes no prompt), which only `wait-prompt` ends.
    end_prompt: Option<usize>,
    /// Where that prompt starts, once it arrived.
    end: Option<usize>,
    /// The echoed line to skip before the output starts.
    echo: Vec<u8>,
    /// Where the output starts, once the echo is past.
    out_start: Option<usize>,
    /// For reports: "the output of `> help` (line 3)".
    label: String,
}

impl Window {
    fn boot() -> Window {
        Window {
            start: 0,
            end_prompt: Some(1),
            end: None,
            echo: Vec::new(),
            out_start: Some(0),
            label: "the boot output before the first prompt".into(),
        }
    }

    fn command(start: usize, end_prompt: usize, echo: Vec<u8>, label: String) -> Window {
        Window {
            start,
            end_prompt: Some(end_prompt),
            end: None,
            echo,
            out_start: None,
            label,
        }
    }

    fn stream(start: usize, end_prompt: Option<usize>, label: String) -> Window {
        Window {
            start,
            end_prompt,
            end: None,
            echo: Vec::new(),
            out_start: Some(start),
            label,
        }
    }

    /// Update the end and the echo position from the prompts and the clean buffer.
    fn refresh(&mut self, clean: &[u8], prompts: &[usize]) {
        if self.end.is_none() {
            if let Some(k) = self.end_prompt {
                self.end = prompts.get(k - 1).copied();
            }
        }
        if self.out_start.is_none() {
            let limit = self.end.unwrap_or(clean.len()).max(self.start);
            self.out_start = skip_echo(&clean[..limit], self.start, &self.echo, self.end.is_some());
        }
    }
}

/// Where a command's output starts, given its echoed line `echo` at `start`.
///
/// The line editor may wrap a long echo (inserting newlines) and drop bytes it does not
/// echo (controls, non-ASCII): both are tolerated. If the shell prints something other
/// than the echo (it rejected the line), the output starts at the beginning of that line.
/// `None` means more input is needed.
fn skip_echo(clean: &[u8], start: usize, echo: &[u8], ended: bool) -> Option<usize> {
    let line_start = |j: usize| {
        clean[start..j]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(start, |k| start + k + 1)
    };
    let (mut i, mut j) = (0, start);
    loop {
        if i == echo.len() {
            return match clean[j..].iter().position(|&c| c == b'\n') {
                Some(k) => Some(j + k + 1),
                None if ended => Some(j),
                None => None,
            };
        }
        let e = echo[i];
        if !(e.is_ascii_graphic() || e == b' ') {
            i += 1;
            continue;
        }
        if j == clean.len() {
            return ended.then(|| line_start(j));
        }
        let c = clean[j];
        if c == e {
            i += 1;
            j += 1;
        } else if c == b'\n' {
            j += 1;
        } else {
            return Some(line_start(j));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Session<'o> {
    link: Link,
    out: Output,
    prompt: Vec<u8>,
    eol: Vec<u8>,
    step_timeout: Duration,
    deadline: Instant,
    win: Window,
    cursor: usize,
    /// Start of every prompt seen since boot, in order, and where scanning resumes.
    prompts: Vec<usize>,
    scan: usize,
    /// How many prompts the shell owes so far: 1 for boot, one per line typed
    /// (`>`, each `paste` line, each `\r`/`\n`/Ctrl-C in `raw`).
    owed: usize,
    vars: Vars,
    closed: Option<String>,
    /// `--accept`: `expect-golden` writes its file instead of comparing.
    accept: bool,
    /// Set by an `expect-golden` step that wrote its file (`--accept`).
    accepted: Option<Accepted>,
    opts: &'o Options,
}

/// What `--accept` did for one `expect-golden` step.
struct Accepted {
    /// Whether the file was created or changed.
    changed: bool,
    /// For the report: "new file ...", "changed ...", "unchanged ...".
    note: String,
    /// What changed (empty for a new or unchanged file).
    diff: Vec<String>,
}

impl<'o> Session<'o> {
    fn new(link: Link, opts: &'o Options) -> Session<'o> {
        Session {
            link,
            out: Output::default(),
            prompt: b"vmcirc> ".to_vec(),
            eol: b"\r".to_vec(),
            step_timeout: opts.step_timeout,
            deadline: Instant::now() + opts.session_timeout,
            win: Window::boot(),
            cursor: 0,
            prompts: Vec::new(),
            scan: 0,
            owed: 1,
            vars: Vars::default(),
            closed: None,
            accept: false,
            accepted: None,
            opts,
        }
    }

    fn ingest(&mut self, ev: Event) {
        match ev {
            Event::Data(d) => {
                if self.opts.verbose {
                    let shown: String = esc(&d).replace("\\n", "\n").replace("\\r", "");
                    let mut e = std::io::stderr().lock();
                    let _ = e.write_all(shown.as_bytes());
                    let _ = e.flush();
                }
                self.out.ingest(&d);
            }
            Event::Closed(why) => {
                if self.closed.is_none() {
                    self.closed = Some(why);
                }
            }
        }
    }

    /// Pump output until `cond` yields a value, fails, or time runs out.
    fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut cond: impl FnMut(&mut Self) -> Result<Option<T>, Fail>,
    ) -> Result<T, Fail> {
        let step_deadline = Instant::now() + timeout;
        let deadline = step_deadline.min(self.deadline);
        loop {
            self.refresh();
            if let Some(v) = cond(self)? {
                return Ok(v);
            }
            if let Some(why) = &self.closed {
                return Err(Fail::Closed(why.clone()));
            }
            if crate::interrupted() {
                return Err(Fail::Interrupted);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(if deadline < step_deadline {
                    Fail::SessionTimeout(self.opts.session_timeout)
                } else {
                    Fail::Timeout(timeout)
                });
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            if let Some(ev) = self.link.next_event(wait) {
                self.ingest(ev);
                while let Some(ev) = self.link.next_event(Duration::ZERO) {
                    self.ingest(ev);
                }
            }
        }
    }

    /// Write `data` and wait until it is all written.
    fn write(&mut self, data: Vec<u8>) -> Result<(), Fail> {
        let wire = self.link.bytes_per_sec.map_or(Duration::ZERO, |bps| {
            Duration::from_secs_f64(data.len() as f64 / f64::from(bps.max(1)))
        });
        let len = data.len();
        self.link.send(data);
        self.wait_for(self.step_timeout + wire, |s| match s.link.poll_written() {
            Some(Ok(_)) => Ok(Some(())),
            Some(Err(e)) => Err(Fail::Other(format!("writing {len} bytes failed: {e}"))),
            None => Ok(None),
        })
        .map_err(|f| match f {
            Fail::Timeout(d) => Fail::Other(format!(
                "the target did not take all {len} bytes within {:.1}s (it stopped reading)",
                d.as_secs_f64()
            )),
            f => f,
        })
    }

    /// Find new prompts, then update the window.
    fn refresh(&mut self) {
        let clean = &self.out.clean;
        let plen = self.prompt.len();
        if plen > 0 {
            while let Some(p) = find(&clean[self.scan..], &self.prompt) {
                self.prompts.push(self.scan + p);
                self.scan += p + plen;
            }
            self.scan = self.scan.max(clean.len().saturating_sub(plen - 1));
        }
        self.win.refresh(clean, &self.prompts);
    }

    /// Where the output after prompt number `k` (1-based) starts.
    fn after_prompt(&self, k: usize) -> usize {
        match k {
            0 => 0,
            k => self.prompts[k - 1] + self.prompt.len(),
        }
    }

    /// Wait until every prompt owed so far has arrived: the shell is idle.
    fn wait_idle(&mut self, timeout: Duration) -> Result<(), Fail> {
        let owed = self.owed;
        self.wait_for(timeout, |s| Ok((s.prompts.len() >= owed).then_some(())))?;
        self.cursor = self.cursor.max(self.after_prompt(owed));
        Ok(())
    }

    /// Wait until the current window is ended by its prompt and move the cursor past
    /// it. An open stream is ended by the next prompt after the cursor, and the count
    /// of owed prompts resynchronises to it.
    fn finish_window(&mut self, timeout: Duration) -> Result<(), Fail> {
        if self.win.end_prompt.is_none() {
            let from = self.cursor.max(self.win.start);
            let k = self.wait_for(timeout, |s| {
                Ok(s.prompts.iter().position(|&p| p >= from).map(|i| i + 1))
            })?;
            self.win.end_prompt = Some(k);
            self.owed = self.owed.max(k);
            self.refresh();
        }
        let end = self.wait_for(timeout, |s| Ok(s.win.end))?;
        self.cursor = self.cursor.max(end + self.prompt.len());
        Ok(())
    }

    /// The searchable region: (from, to, final) where final means the prompt is in.
    fn region(&self) -> Option<(usize, usize, bool)> {
        let out_start = self.win.out_start?;
        let (to, fin) = match self.win.end {
            Some(e) => (e, true),
            None => (self.out.clean.len(), false),
        };
        let from = self.cursor.max(out_start).min(to);
        Some((from, to, fin))
    }

    /// Complete lines in the region: (start, end) with end at the newline (or the
    /// prompt for the last line once the window ended).
    fn lines(&self) -> Vec<(usize, usize)> {
        let Some((from, to, fin)) = self.region() else {
            return Vec::new();
        };
        let clean = &self.out.clean;
        let out_start = self.win.out_start.unwrap_or(from);
        // Begin at a line boundary at or after `from`.
        let mut p = from;
        if p > out_start && clean[p - 1] != b'\n' {
            match clean[p..to].iter().position(|&c| c == b'\n') {
                Some(k) => p += k + 1,
                None => return Vec::new(),
            }
        }
        let mut v = Vec::new();
        while p < to {
            match clean[p..to].iter().position(|&c| c == b'\n') {
                Some(k) => {
                    v.push((p, p + k));
                    p += k + 1;
                }
                None => {
                    if fin {
                        v.push((p, to));
                    }
                    break;
                }
            }
        }
        v
    }

    fn expand(&self, t: &Text, index: Option<usize>) -> Result<Vec<u8>, Fail> {
        t.expand(&self.vars, index).map_err(Fail::Other)
    }

    fn describe(&self, step: &Step) -> String {
        let ex = |t: &Text| esc(&t.expand(&self.vars, None).unwrap_or_default());
        let w = &self.win.label;
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
                        p => esc(&Text(vec![p.clone()])
                            .expand(&self.vars, None)
                            .unwrap_or_default()),
                    })
                    .collect();
                format!(
                    "{count} lines `{shown}` (i = 0..{}) in order in {w}",
                    count - 1
                )
            }
            Step::ExpectNot(t) => format!("no `{}` in {w}", ex(t)),
            Step::ExpectGolden(name) => format!(
                "{w} to equal the golden file {}",
                self.golden_path(name).display()
            ),
            Step::ExpectNotRe(p) => format!("no match for /{}/ in {w}", p.source),
            Step::WaitPrompt => format!("the prompt `{}` after {w}", esc(&self.prompt)),
            Step::Command(_) | Step::Paste { .. } => format!(
                "the prompt `{}` (number {} since boot) after {w}, then to send the line",
                esc(&self.prompt),
                self.owed
            ),
            Step::Raw(_) | Step::SendFile(_) | Step::SendGen { .. } => "to send the bytes".into(),
            _ => String::new(),
        }
    }

    /// Before raw bytes: a running command must have taken its line (echo done), so
    /// the bytes reach the command, not the line editor. At the prompt, they start an
    /// open stream. `lines` is how many prompts the bytes will bring back.
    fn before_raw(&mut self, lines: usize, label: String) -> Result<(), Fail> {
        if self.win.end_prompt.is_some() && self.win.end.is_none() {
            let t = self.step_timeout;
            self.wait_for(t, |s| Ok(s.win.out_start.map(|_| ())))?;
            self.owed += lines;
        } else {
            if let Some(end) = self.win.end {
                self.cursor = self.cursor.max(end + self.prompt.len());
            }
            self.owed += lines;
            let end_prompt = (lines > 0).then_some(self.owed);
            self.win = Window::stream(self.cursor, end_prompt, label);
        }
        Ok(())
    }

    fn send_command(&mut self, lines: Vec<Vec<u8>>, label: String) -> Result<(), Fail> {
        // Raw input typed at the prompt without a line end (an open stream) is the
        // start of this line: the shell is idle once every owed prompt is in.
        self.wait_idle(self.step_timeout)?;
        let start = self.after_prompt(self.owed).max(self.cursor);
        self.cursor = start;
        let mut data = Vec::new();
        for l in &lines {
            data.extend_from_slice(l);
            data.extend_from_slice(&self.eol);
        }
        // The echo is what a terminal shows of the first line: the line editor
        // consumes its escape sequences and control bytes.
        let mut echo = Output::default();
        echo.ingest(lines.first().map_or(&[][..], |l| l.as_slice()));
        self.owed += lines.len();
        self.win = Window::command(start, self.owed, echo.clean, label);
        self.write(data)
    }

    fn payload(&mut self, data: Vec<u8>, lines: usize, label: String) -> Result<(), Fail> {
        self.before_raw(lines, label)?;
        self.vars.payload = Some((data.len(), vmcirc::crc32::crc32(&data)));
        self.write(data)
    }

    fn step(&mut self, line: &Line) -> Result<(), Fail> {
        let t = self.step_timeout;
        let at = line.lineno;
        match &line.step {
            Step::Timeout(d) => self.step_timeout = *d,
            Step::Prompt(p) => self.prompt = p.clone(),
            Step::Eol(e) => self.eol = e.clone(),
            Step::Sleep(d) => match self.wait_for(*d, |_| Ok(None::<()>)) {
                Ok(()) | Err(Fail::Timeout(_)) => {}
                Err(f) => return Err(f),
            },
            Step::Command(text) => {
                let l = text.literal();
                let label = format!("the output of `> {}` (line {at})", esc(&l));
                self.send_command(vec![l], label)?;
            }
            Step::Paste { count, template } => {
                let lines = (0..*count)
                    .map(|i| self.expand(template, Some(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                let label = format!("the output of the {count} pasted lines (line {at})");
                self.send_command(lines, label)?;
            }
            Step::Raw(text) => {
                let label = format!("the output after `raw` (line {at})");
                let bytes = text.literal();
                let lines = bytes
                    .iter()
                    .filter(|&&b| matches!(b, b'\r' | b'\n' | 0x03))
                    .count();
                self.payload(bytes, lines, label)?;
            }
            Step::SendFile(path) => {
                let full = self.opts.base_dir.join(path);
                let data = std::fs::read(&full)
                    .map_err(|e| Fail::Other(format!("cannot read {}: {e}", full.display())))?;
                let label = format!("the output after `sendfile` (line {at})");
                self.payload(data, 0, label)?;
            }
            Step::SendGen { len, seed, pin } => {
                let data = splitmix_bytes(*len, *seed);
                let crc = vmcirc::crc32::crc32(&data);
                if let Some(pin) = pin {
                    if crc != *pin {
                        return Err(Fail::Other(format!(
                            "the generated stream has CRC-32 {crc:08x}, the script pins {pin:08x}: \
                             the generator or the CRC disagrees with the reference"
                        )));
                    }
                }
                let label = format!("the output after `sendgen` (line {at})");
                self.payload(data, 0, label)?;
            }
            Step::Expect(text) => {
                let needle = self.expand(text, None)?;
                let end = self.wait_for(t, |s| {
                    let Some((from, to, fin)) = s.region() else {
                        return Ok(None);
                    };
                    match find(&s.out.clean[from..to], &needle) {
                        Some(p) => Ok(Some(from + p + needle.len())),
                        None if fin => Err(Fail::PromptFirst),
                        None => Ok(None),
                    }
                })?;
                self.cursor = end;
            }
            Step::ExpectRe(pat) => {
                let re = pat.compile(&self.vars).map_err(Fail::Other)?;
                let end = self.wait_for(t, |s| {
                    let Some((from, to, fin)) = s.region() else {
                        return Ok(None);
                    };
                    // Until the prompt is in, only look at complete lines, so a regex
                    // cannot match half a number that is still arriving.
                    let lim = if fin {
                        to
                    } else {
                        s.out.clean[from..to]
                            .iter()
                            .rposition(|&c| c == b'\n')
                            .map_or(from, |k| from + k + 1)
                    };
                    match re.find(&s.out.clean[from..lim]) {
                        Some(m) => Ok(Some(from + m.end())),
                        None if fin => Err(Fail::PromptFirst),
                        None => Ok(None),
                    }
                })?;
                self.cursor = end;
            }
            Step::ExpectLine(text) => {
                let want = self.expand(text, None)?;
                self.expect_lines(t, &[want])?;
            }
            Step::ExpectEach { count, template } => {
                let wants = (0..*count)
                    .map(|i| self.expand(template, Some(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                self.expect_lines(t, &wants)?;
            }
            Step::ExpectNot(text) => {
                let needle = self.expand(text, None)?;
                let (a, b) = self.whole_output(t)?;
                if let Some(p) = find(&self.out.clean[a..b], &needle) {
                    return Err(Fail::Other(format!(
                        "found at offset {p} of the output: `{}`",
                        esc(context(&self.out.clean[a..b], p, needle.len()))
                    )));
                }
            }
            Step::ExpectNotRe(pat) => {
                let re = pat.compile(&self.vars).map_err(Fail::Other)?;
                let (a, b) = self.whole_output(t)?;
                if let Some(m) = re.find(&self.out.clean[a..b]) {
                    return Err(Fail::Other(format!(
                        "matched at offset {} of the output: `{}`",
                        m.start(),
                        esc(context(&self.out.clean[a..b], m.start(), m.len()))
                    )));
                }
            }
            Step::ExpectGolden(name) => {
                let (a, b) = self.whole_output(t)?;
                let got = self.out.clean[a..b].to_vec();
                self.golden(name, &got)?;
            }
            Step::WaitPrompt => {
                self.finish_window(t)?;
                self.wait_idle(t)?;
            }
        }
        Ok(())
    }

    /// Wait for the window's prompt; the whole output of the window, (start, end).
    fn whole_output(&mut self, t: Duration) -> Result<(usize, usize), Fail> {
        self.finish_window(t)?;
        let a = self.win.out_start.unwrap_or(self.win.start);
        Ok((a, self.win.end.unwrap_or(0).max(a)))
    }

    fn golden_path(&self, name: &str) -> PathBuf {
        self.opts.base_dir.join("golden").join(name)
    }

    /// Compare `got` with the golden file `name`, or (`--accept`) write it there.
    fn golden(&mut self, name: &str, got: &[u8]) -> Result<(), Fail> {
        let path = self.golden_path(name);
        let shown = path.display();
        let old = match std::fs::read(&path) {
            Ok(b) => Some(without_cr(&b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Fail::Other(format!("cannot read {shown}: {e}"))),
        };
        if !self.accept {
            let Some(want) = old else {
                return Err(Fail::Other(format!(
                    "the golden file {shown} does not exist; to create it from this output, \
                     run the script with --accept (or VMCIRC_ACCEPT=1, `make accept`), then read the file"
                )));
            };
            if want == got {
                return Ok(());
            }
            return Err(Fail::Golden {
                summary: format!(
                    "the output differs from {shown}: {}",
                    diff_summary(&want, got)
                ),
                diff: line_diff(&want, got, "expected (golden file)"),
            });
        }
        let lines = split_lines(got).len();
        let acc = match old {
            Some(want) if want == got => Accepted {
                changed: false,
                note: format!("unchanged: {shown}, {}", n_lines(lines)),
                diff: Vec::new(),
            },
            old => {
                let write = || -> std::io::Result<()> {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(&path, got)
                };
                write().map_err(|e| Fail::Other(format!("cannot write {shown}: {e}")))?;
                match old {
                    None => Accepted {
                        changed: true,
                        note: format!("new file: {shown}, {}", n_lines(lines)),
                        diff: Vec::new(),
                    },
                    Some(want) => Accepted {
                        changed: true,
                        note: format!("changed: {shown}, {}", diff_summary(&want, got)),
                        diff: line_diff(&want, got, "golden file before"),
                    },
                }
            }
        };
        self.accepted = Some(acc);
        Ok(())
    }

    /// Find whole lines equal to `wants`, in order, each after the previous.
    fn expect_lines(&mut self, t: Duration, wants: &[Vec<u8>]) -> Result<(), Fail> {
        let mut next = 0;
        let res = self.wait_for(t, |s| {
            let lines = s.lines();
            let mut i = 0;
            while next < wants.len() {
                let want = &wants[next];
                match lines[i..]
                    .iter()
                    .position(|&(a, b)| &s.out.clean[a..b] == want.as_slice())
                {
                    Some(k) => {
                        let (_, b) = lines[i + k];
                        s.cursor = b; // the next search starts after this line
                        i += k + 1;
                        next += 1;
                    }
                    None => break,
                }
            }
            if next == wants.len() {
                return Ok(Some(()));
            }
            if s.region().is_some_and(|(_, _, fin)| fin) {
                return Err(Fail::PromptFirst);
            }
            Ok(None)
        });
        res.map_err(|f| {
            if wants.len() > 1 {
                Fail::Other(format!(
                    "{} (line {} of {}, `{}`, was the first one missing)",
                    f.explain(),
                    next + 1,
                    wants.len(),
                    esc(&wants[next.min(wants.len() - 1)])
                ))
            } else {
                f
            }
        })
    }
}

/// A golden file as compared: CRLF line ends read as LF (the output has no `\r`).
fn without_cr(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        if !(c == b'\r' && b.get(i + 1) == Some(&b'\n')) {
            v.push(c);
        }
    }
    v
}

/// Lines with their `\n` (the last one may lack it).
fn split_lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n').collect()
}

/// "first difference at line N (golden file E lines, received R lines)".
fn diff_summary(want: &[u8], got: &[u8]) -> String {
    let (w, g) = (split_lines(want), split_lines(got));
    let first = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    format!(
        "first difference at line {} (golden file {}, received {})",
        first + 1,
        n_lines(w.len()),
        n_lines(g.len())
    )
}

fn n_lines(n: usize) -> String {
    if n == 1 {
        "1 line".into()
    } else {
        format!("{n} lines")
    }
}

/// One line of a diff, readable: printable ASCII and tabs as they are, other bytes
/// as `\xNN`, and a note when the line has no final newline.
fn show_line(l: &[u8]) -> String {
    let (body, nl) = match l.strip_suffix(b"\n") {
        Some(b) => (b, true),
        None => (l, false),
    };
    let mut s = String::new();
    for &c in body {
        match c {
            b'\t' | 0x20..=0x7e => s.push(char::from(c)),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if !nl {
        s.push_str("  (no newline at the end)");
    }
    s
}

/// Lines of context around each change in [`line_diff`].
const DIFF_CONTEXT: usize = 2;
/// Most diff lines shown.
const DIFF_MAX_LINES: usize = 60;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Same,
    Del,
    Ins,
}

/// A unified-style line diff of `want` (the golden file) and `got` (received): hunks
/// `@@ -E,n +R,m @@` of lines marked ` ` (both), `-` (expected only) and `+`
/// (received only), each with its line number in the golden file and in the output.
fn line_diff(want: &[u8], got: &[u8], old: &str) -> Vec<String> {
    let (w, g) = (split_lines(want), split_lines(got));
    // Common head and tail, then a longest-common-subsequence table for the middle
    // (or, if that would be huge, the middle as one replaced block).
    let head = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let tail = w[head..]
        .iter()
        .rev()
        .zip(g[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (&w[head..w.len() - tail], &g[head..g.len() - tail]);
    let mut ops = vec![Op::Same; head];
    if a.len().saturating_mul(b.len()) <= 4_000_000 {
        let cols = b.len() + 1;
        let mut lcs = vec![0u32; (a.len() + 1) * cols];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i * cols + j] = if a[i] == b[j] {
                    lcs[(i + 1) * cols + j + 1] + 1
                } else {
                    lcs[(i + 1) * cols + j].max(lcs[i * cols + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                ops.push(Op::Same);
                i += 1;
                j += 1;
            } else if j == b.len()
                || (i < a.len() && lcs[(i + 1) * cols + j] >= lcs[i * cols + j + 1])
            {
                ops.push(Op::Del);
                i += 1;
            } else {
                ops.push(Op::Ins);
                j += 1;
            }
        }
    } else {
        ops.extend(std::iter::repeat_n(Op::Del, a.len()));
        ops.extend(std::iter::repeat_n(Op::Ins, b.len()));
    }
    ops.extend(std::iter::repeat_n(Op::Same, tail));

    // Positions (golden line, output line) before each op.
    let mut pos = Vec::with_capacity(ops.len() + 1);
    let (mut i, mut j) = (0, 0);
    for op in &ops {
        pos.push((i, j));
        match op {
            Op::Same => (i, j) = (i + 1, j + 1),
            Op::Del => i += 1,
            Op::Ins => j += 1,
        }
    }
    pos.push((i, j));

    // Hunks: ranges of ops around the changes.
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for k in (0..ops.len()).filter(|&k| ops[k] != Op::Same) {
        let (lo, hi) = (
            k.saturating_sub(DIFF_CONTEXT),
            (k + 1 + DIFF_CONTEXT).min(ops.len()),
        );
        match hunks.last_mut() {
            Some(h) if lo <= h.1 => h.1 = hi,
            _ => hunks.push((lo, hi)),
        }
    }
    let mut out = vec![format!("--- {old}"), "+++ received".to_string()];
    let total: usize = hunks.iter().map(|(lo, hi)| hi - lo + 1).sum();
    let mut shown = 0;
    for &(lo, hi) in &hunks {
        let ((i0, j0), (i1, j1)) = (pos[lo], pos[hi]);
        let start = |p: usize, n: usize| if n == 0 { p } else { p + 1 };
        out.push(format!(
            "@@ -{},{} +{},{} @@",
            start(i0, i1 - i0),
            i1 - i0,
            start(j0, j1 - j0),
            j1 - j0
        ));
        shown += 1;
        for k in lo..hi {
            if shown >= DIFF_MAX_LINES {
                out.push(format!("... ({} more diff lines)", total - shown));
                return out;
            }
            let (i, j) = pos[k];
            out.push(match ops[k] {
                Op::Same => format!("  {:>4} {:>4} | {}", i + 1, j + 1, show_line(w[i])),
                Op::Del => format!("- {:>4} {:>4} | {}", i + 1, "", show_line(w[i])),
                Op::Ins => format!("+ {:>4} {:>4} | {}", "", j + 1, show_line(g[j])),
            });
            shown += 1;
        }
    }
    out
}

fn context(b: &[u8], at: usize, len: usize) -> &[u8] {
    let a = at.saturating_sub(30);
    let z = (at + len + 30).min(b.len());
    &b[a..z]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &[u8]) -> Vec<u8> {
        let mut o = Output::default();
        // Feed byte by byte: sequences split across reads must still be removed.
        for b in raw {
            o.ingest(std::slice::from_ref(b));
        }
        o.clean
    }

    #[test]
    fn filter_removes_terminal_control() {
        assert_eq!(clean(b"a\x1b[6nb\r\n\x1b[1;32mc\x1b[0m\x07\x08"), b"ab\nc");
        assert_eq!(clean(b"x\x1b]0;title\x07y\x1b]2;t\x1b\\z"), b"xyz");
        assert_eq!(clean(b"tab\there\x1bcok"), b"tab\thereok");
        // Malformed CSI resyncs instead of eating the rest of the output.
        assert_eq!(clean(b"a\x1b[12\nb"), b"a\nb");
    }

    #[test]
    fn line_diff_marks_changes_with_line_numbers() {
        let want = b"a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let got = b"a\nb\nC\nd\ne\nf\ng\nh\ni\nj\n";
        assert_eq!(
            diff_summary(want, got),
            "first difference at line 3 (golden file 9 lines, received 10 lines)"
        );
        let d = line_diff(want, got, "expected (golden file)");
        assert_eq!(
            d,
            [
                "--- expected (golden file)",
                "+++ received",
                "@@ -1,5 +1,5 @@",
                "     1    1 | a",
                "     2    2 | b",
                "-    3      | c",
                "+         3 | C",
                "     4    4 | d",
                "     5    5 | e",
                "@@ -8,2 +8,3 @@",
                "     8    8 | h",
                "     9    9 | i",
                "+        10 | j",
            ]
        );
        // Changes close together share a hunk.
        let d = line_diff(
            b"a\nb\nc\nd\ne\n",
            b"A\nb\nc\nd\nE\n",
            "expected (golden file)",
        );
        assert_eq!(d[2], "@@ -1,5 +1,5 @@");
        assert_eq!(d.len(), 3 + 7);
        // A missing final newline and unprintable bytes are visible.
        let d = line_diff(b"x\n", b"x\xff", "expected (golden file)");
        assert_eq!(d[3], "-    1      | x");
        assert_eq!(d[4], "+         1 | x\\xff  (no newline at the end)");
        // Long diffs are cut.
        let many: Vec<u8> = (0..500)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let d = line_diff(b"", &many, "expected (golden file)");
        assert_eq!(d.len(), DIFF_MAX_LINES + 3);
        assert!(d.last().unwrap().starts_with("... ("));
        assert_eq!(without_cr(b"a\r\nb\r\n\r"), b"a\nb\n\r");
    }

    #[test]
    fn echo_is_skipped_even_when_wrapped_or_partial() {
        let c = b"help\ncmd list\n";
        assert_eq!(skip_echo(c, 0, b"help", false), Some(5));
        // Wrapped echo of a long line (the editor inserted a newline).
        let c = b"echo aaaa\naaaa\naaaa aaaa\nvmcirc> ";
        assert_eq!(skip_echo(c, 0, b"echo aaaaaaaa", false), Some(15));
        // Bytes the editor does not echo are tolerated.
        assert_eq!(skip_echo(b"ab\nout\n", 0, b"a\x00\xffb", false), Some(3));
        // Echo not complete yet.
        assert_eq!(skip_echo(b"hel", 0, b"help", false), None);
        assert_eq!(skip_echo(b"help", 0, b"help", false), None);
        // Rejected line: the output starts at the line where it differs.
        let c = b"xxxxxxxx\nerror: line too long\n";
        assert_eq!(skip_echo(c, 0, b"xxxxxxxxxxxxxxxxxxxx", false), Some(9));
    }
}
