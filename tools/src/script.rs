//! The `vmcirc script` session format (`.vms` files) and its parser.
//!
//! A script is read line by line. Blank lines and lines whose first non-blank
//! character is `#` are ignored (a `#` later in a line is ordinary text). Every other
//! line is `KEYWORD ARGUMENT`: the argument is the rest of the line after the single
//! blank that follows the keyword, kept verbatim (blanks before the keyword are
//! allowed; CRLF files are fine). A bad line stops the run before anything is sent,
//! with a one-line `line N: ...` error and exit status 2.
//!
//! # Sending
//!
//! | line | what it does |
//! |---|---|
//! | `> TEXT` (or `send TEXT`) | type a command: wait until the shell is idle at the prompt (`vmcirc> `), then send `TEXT` and the line ending (`\r`, what Enter sends). Its *output* is what the shell prints after echoing the line, up to the next prompt |
//! | `paste N TEMPLATE` | send N command lines in one burst (`{i}` in TEMPLATE becomes 0..N-1), like pasting a block into a terminal; the output runs up to the N-th prompt |
//! | `raw TEXT` | send TEXT now, no line ending added: keyboard input such as escape sequences, Ctrl-C (`\x03`, which stops a running command) or a partial line, or data for a running command |
//! | `sendfile PATH` | send a file's bytes (PATH relative to the script's folder) as data |
//! | `sendfile-acked BLOCK ACK PATH` | send a file in blocks of BLOCK bytes (at most 1 MiB), each only after the target has sent one more ACK byte since the command was typed (ACK is one control byte such as `\x06`, not `\t \n \r \e`): the flow control of a loader such as the kernel's `load`, which `vmcirc install` drives with it. Each ACK is waited for up to the step timeout; the step fails at once if the command's prompt comes back first |
//! | `sendgen N SEED [crc32=HEX]` | send N data bytes of a deterministic stream: splitmix64 seeded with SEED, each step's 64-bit output as 8 little-endian bytes, cut to N. With `crc32=HEX` the tool first checks that its own CRC-32 of the stream equals HEX (a value computed independently, e.g. with Python's `zlib.crc32`) |
//!
//! The tool counts the prompts the shell owes: one at boot, one per line sent by `>`
//! or `paste`, and for `raw` text typed at the prompt one per `\r`, `\n` or Ctrl-C
//! (`\x03`: it abandons the line and brings a new prompt). "Idle" means all of them
//! have arrived, so `raw echo x\x03` followed by `> echo y` cannot mistake the prompt
//! that Ctrl-C brings back for the end of `echo y`. `raw` sent while a command runs
//! (its prompt has not come back yet) goes to the command: the first Ctrl-C in it
//! stops the command and owes no prompt (the command's own prompt follows); what is
//! typed before that Ctrl-C goes with it (the shell drops type-ahead on an
//! interrupt, as a terminal does), and what follows it reaches the next prompt and
//! counts as typed there. Without a Ctrl-C, each `\r` or `\n` counts (typed ahead).
//! So to type at the prompt after a command, `wait-prompt` first; to stop a long
//! command, `raw \x03` while it runs. Data sent with `sendfile`/`sendgen` owes no
//! prompt (a running command consumes it); don't put line ends or Ctrl-C in `raw`
//! data that a command consumes, or use `sendfile`.
//!
//! Counts are bounded by what a session can do, not by memory: `paste` and
//! `expect-each` take at most 10,000,000 lines and `sendgen` at most 2^40 bytes
//! (1 TiB); a larger count is a `line N:` error. Within those, the tool generates
//! the lines and bytes as the target takes them (and checks lines as they arrive),
//! so a large count costs time, bounded by the timeouts, never memory.
//!
//! Nothing is sent before the session's first prompt (the boot prompt, or the fresh
//! one after attaching): a booting kernel flushes its UART while it initialises it,
//! so even a `raw` first step waits for it.
//! `raw`, `sendfile` and `sendgen` sent while a command runs go to that command (e.g.
//! the bytes for `rx`): they wait until the shell has echoed the command line, so the
//! bytes cannot land in the line editor. Sent when the shell is idle, they open a new
//! output window that ends at the prompts they owe (or, if they owe none, at the
//! next prompt `wait-prompt` sees). Large sends are written in chunks while a reader
//! thread keeps draining the target's output, so neither side can stall.
//!
//! # Checking
//!
//! | line | passes when |
//! |---|---|
//! | `expect TEXT` | TEXT appears in the current output (after the previous match) |
//! | `expect-re REGEX` | the regex (Rust `regex` syntax, no escape processing; multi-line mode, so `^`/`$` match at line starts/ends) matches there, on complete lines |
//! | `expect-line TEXT` | a whole output line equals TEXT |
//! | `expect-each N TEMPLATE` | for i in 0..N, a whole line equals TEMPLATE with `{i}` replaced, in this order |
//! | `expect-not TEXT` / `expect-not-re REGEX` | once the prompt is back, the *whole* output of the command (not just after the last match) does not contain TEXT / match REGEX |
//! | `expect-golden NAME` | once the prompt is back, the *whole* output of the command equals the file `golden/NAME` in the script's folder, byte for byte (a golden transcript; see below) |
//! | `wait-prompt` | the shell is back at the prompt (and idle) |
//!
//! Matches move forward: each `expect*` searches after the end of the previous match
//! in the same output, so consecutive expects also check order. A check fails as soon
//! as the command's prompt comes back without a match, when the step's timeout
//! expires, or when the target closes the link; the run then stops, showing what was
//! expected and the last output received. The echo of the command line is never part
//! of its output, so `> echo hi` / `expect hi` cannot pass on the echo (the line
//! editor may wrap the echo or drop bytes it does not echo; if the shell rejects the
//! line part-way, the output starts on the line where the echo stops matching).
//! Before the first `>`, the output is the boot output up to the first prompt (after
//! attaching: what the board printed after the key, up to the fresh prompt).
//! Matching ignores terminal control: ANSI escape sequences, `\r` and other control
//! characters except `\n` and `\t` are removed (`-v` shows everything as it arrives).
//! The tool keeps the last 16 MiB of that text (`--max-output`); when a target prints
//! more, the oldest text is dropped, checks that need a whole output whose start was
//! dropped fail saying so, and failure reports say how much was dropped.
//!
//! In `expect`, `expect-line`, `expect-each`, `expect-not` and the regexes, `${len}`,
//! `${crc32}` and `${CRC32}` stand for the length and CRC-32 (IEEE, as zlib; 8 hex
//! digits, lower/upper case) of the most recent `raw`/`sendfile`/`sendgen` bytes, as
//! computed by the tool from the bytes it actually sent. So
//! `expect-line rx 16384 crc32=${crc32}` proves that the board received exactly those
//! bytes, and pinning `sendgen ... crc32=HEX` proves the tool's generator and CRC
//! against an outside reference.
//!
//! # Golden transcripts
//!
//! `expect-golden NAME` compares the output exactly as the other checks see it
//! (terminal control and `\r` removed, so lines end in `\n`) with
//! `golden/NAME` next to the script (`tools/scripts/golden/help` for
//! `tools/scripts/01-boot-shell.vms`); CRLF line ends in the file are read as LF.
//! NAME is a relative file name: letters, digits, `.`, `_`, `-`, and `/` between
//! folder names; no `..`, no absolute path. On a mismatch the step fails with a line
//! diff: the first differing lines, `-` from the golden file and `+` received, with
//! their line numbers in each. A missing file fails too, saying how to create it.
//!
//! Use goldens only for output that is the same on every run (no times, rates,
//! addresses that vary). To take new output deliberately, run with `--accept` (or
//! the environment variable `VMCIRC_ACCEPT=1`, which `make accept` sets): every
//! `expect-golden` then writes what it received to its file instead of comparing, is
//! reported as `accepted` (new file, changed, with the diff, or unchanged) and
//! counts as `N accepted` in the result line. Review the files (`git diff`) before
//! committing them.
//!
//! # Settings
//!
//! | line | effect |
//! |---|---|
//! | `timeout SECS` | timeout of every following step (default `--timeout`, 10 s); fractions allowed |
//! | `sleep SECS` | pause (output keeps being collected) |
//! | `prompt TEXT` | the prompt to look for (default `vmcirc> `) |
//! | `eol TEXT` | line ending sent by `>` and `paste` (default `\r`) |
//!
//! # Escapes
//!
//! TEXT and TEMPLATE arguments understand `\\` `\r` `\n` `\t` `\e` (ESC) `\0` `\"`
//! `\xNN` (any byte) `\$` `\{` `\}`; any other backslash sequence is an error. A
//! trailing blank is easiest written as `\x20`. The byte escapes are the ones the
//! tool (and the shell) use to show bytes ([`vmcirc::escape`]), so text copied from a
//! failure report can be pasted into a script.
//!
//! # Result
//!
//! Attaching to a running board (`--port`, `--qemu-pty`) adds one step before the
//! first line, `attach`, which passes when a fresh prompt answered Ctrl-C / Enter.
//! After the last line the tool checks once more that the shell is idle at the prompt
//! (it survived), prints `N passed, N failed` (`, N accepted (N changed)` with
//! `--accept`, `, N skipped` when a failure stopped the run early) and exits 0 only
//! if every step held; 1 on a failure, 2 for a bad script, 130 when interrupted. The
//! emulator (with `--qemu`) is always stopped.

use std::path::PathBuf;
use std::time::Duration;

use vmcirc::escape::{unescape_one, UnescapeError};

/// Most bytes one `sendgen` sends (1 TiB: no session sends more).
pub const MAX_SEND: u64 = 1 << 40;
/// Most lines one `paste` types or one `expect-each` checks.
pub const MAX_LINES: usize = 10_000_000;
/// Largest block of `sendfile-acked`.
pub const MAX_BLOCK: usize = 1 << 20;

/// The escapes text arguments understand (for error messages).
const ESCAPES: &str = r#"\\ \r \n \t \e \0 \xNN \" \$ \{ \}"#;

/// A variable substituted at run time from the most recent payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    /// `${len}`: payload length in decimal.
    Len,
    /// `${crc32}`: payload CRC-32, 8 lower-case hex digits.
    Crc32Lower,
    /// `${CRC32}`: payload CRC-32, 8 upper-case hex digits.
    Crc32Upper,
}

/// One piece of a text argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Literal bytes.
    Lit(Vec<u8>),
    /// A payload variable.
    Var(Var),
    /// `{i}` in a template.
    Index,
}

/// A text argument after escape processing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Text(pub Vec<Piece>);

/// The values variables expand to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vars {
    /// Length and CRC-32 of the last payload, if any was sent.
    pub payload: Option<(u64, u32)>,
}

impl Text {
    /// Expand to bytes; `index` replaces `{i}`. Fails if a variable has no value yet.
    pub fn expand(&self, vars: &Vars, index: Option<usize>) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                Piece::Index => out.extend_from_slice(index.unwrap_or(0).to_string().as_bytes()),
                Piece::Var(v) => {
                    let (len, crc) = vars.payload.ok_or_else(|| {
                        "no payload has been sent yet, so ${len}/${crc32} are undefined".to_string()
                    })?;
                    let s = match v {
                        Var::Len => len.to_string(),
                        Var::Crc32Lower => format!("{crc:08x}"),
                        Var::Crc32Upper => format!("{crc:08X}"),
                    };
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
        Ok(out)
    }

    /// The text with no variables or index (for sends).
    pub fn literal(&self) -> Vec<u8> {
        self.expand(&Vars::default(), None).unwrap_or_default()
    }
}

/// A regex argument: the source with `${...}` variables substituted at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// The regex source as written.
    pub source: String,
}

impl Pattern {
    /// Substitute variables and compile.
    pub fn compile(&self, vars: &Vars) -> Result<regex::bytes::Regex, String> {
        let mut s = self.source.clone();
        for (name, v) in VARS {
            if s.contains(name) {
                let val = Text(vec![Piece::Var(*v)]).expand(vars, None)?;
                s = s.replace(name, &String::from_utf8_lossy(&val));
            }
        }
        regex::bytes::RegexBuilder::new(&s)
            .multi_line(true)
            .build()
            .map_err(|e| one_line(&e.to_string()))
    }
}

const VARS: &[(&str, Var)] = &[
    ("${len}", Var::Len),
    ("${crc32}", Var::Crc32Lower),
    ("${CRC32}", Var::Crc32Upper),
];

/// One executable step of a script.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `> TEXT` / `send TEXT`.
    Command(Text),
    /// `paste N TEMPLATE`.
    Paste {
        /// Number of lines.
        count: usize,
        /// The line, with `{i}`.
        template: Text,
    },
    /// `raw TEXT`.
    Raw(Text),
    /// `sendfile PATH`.
    SendFile(PathBuf),
    /// `sendfile-acked BLOCK ACK PATH`.
    SendFileAcked {
        /// Bytes per block (1..=[`MAX_BLOCK`]).
        block: usize,
        /// The acknowledgement byte (a control byte other than `\t \n \r \e`).
        ack: u8,
        /// The file.
        path: PathBuf,
    },
    /// `sendgen N SEED [crc32=HEX]`.
    SendGen {
        /// Number of bytes (at most [`MAX_SEND`]).
        len: u64,
        /// splitmix64 seed.
        seed: u64,
        /// Independently computed CRC-32 the stream must have.
        pin: Option<u32>,
    },
    /// `expect TEXT`.
    Expect(Text),
    /// `expect-re REGEX`.
    ExpectRe(Pattern),
    /// `expect-line TEXT`.
    ExpectLine(Text),
    /// `expect-each N TEMPLATE`.
    ExpectEach {
        /// Number of lines.
        count: usize,
        /// The line, with `{i}`.
        template: Text,
    },
    /// `expect-not TEXT`.
    ExpectNot(Text),
    /// `expect-not-re REGEX`.
    ExpectNotRe(Pattern),
    /// `expect-golden NAME`: the whole output equals `golden/NAME` (validated name).
    ExpectGolden(String),
    /// `wait-prompt`.
    WaitPrompt,
    /// `timeout SECS`.
    Timeout(Duration),
    /// `sleep SECS`.
    Sleep(Duration),
    /// `prompt TEXT`.
    Prompt(Vec<u8>),
    /// `eol TEXT`.
    Eol(Vec<u8>),
}

impl Step {
    /// Settings change state but are not reported as passed/failed steps.
    pub fn is_setting(&self) -> bool {
        matches!(
            self,
            Step::Timeout(_) | Step::Sleep(_) | Step::Prompt(_) | Step::Eol(_)
        )
    }
}

/// A parsed script line.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// 1-based line number in the file.
    pub lineno: usize,
    /// The line as written (for reports).
    pub source: String,
    /// What to do.
    pub step: Step,
}

/// A parse error: one line, naming the script line.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub lineno: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.lineno, self.message)
    }
}

impl std::error::Error for ParseError {}

/// `s` with control characters escaped ([`vmcirc::escape`]): an error that quotes
/// a script line stays one printable line whatever the line holds.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = vmcirc::escape::write_str(&mut out, c.encode_utf8(&mut [0; 4]));
        } else {
            out.push(c);
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const KEYWORDS: &str =
    ">, send, paste, raw, sendfile, sendfile-acked, sendgen, expect, expect-re, expect-line, \
expect-each, expect-not, expect-not-re, expect-golden, wait-prompt, timeout, sleep, prompt, eol";

/// Parse a whole script. Fails on the first bad line.
pub fn parse(text: &str) -> Result<Vec<Line>, ParseError> {
    let mut out = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let step = parse_step(body).map_err(|message| ParseError {
            lineno,
            message: printable(&message),
        })?;
        out.push(Line {
            lineno,
            source: body.to_string(),
            step,
        });
    }
    if !out.iter().any(|l| !l.step.is_setting()) {
        return Err(ParseError {
            lineno: text.lines().count().max(1),
            message: "the script has no steps".into(),
        });
    }
    Ok(out)
}

/// Split `KEYWORD ARG`: the argument is everything after the one separating blank.
fn split_keyword(body: &str) -> (&str, Option<&str>) {
    if let Some(rest) = body.strip_prefix('>') {
        // `> TEXT`, `>` alone (just Enter), or `>TEXT`.
        return (">", Some(rest.strip_prefix(' ').unwrap_or(rest)));
    }
    match body.find([' ', '\t']) {
        Some(pos) => (&body[..pos], Some(&body[pos + 1..])),
        None => (body, None),
    }
}

fn parse_step(body: &str) -> Result<Step, String> {
    let (kw, arg) = split_keyword(body);
    let need = |what: &str| -> Result<&str, String> {
        arg.filter(|a| !a.is_empty())
            .ok_or_else(|| format!("`{kw}` needs {what}"))
    };
    let none = || -> Result<(), String> {
        match arg.map(str::trim) {
            Some(a) if !a.is_empty() => Err(format!("`{kw}` takes no argument, found `{a}`")),
            _ => Ok(()),
        }
    };
    Ok(match kw {
        ">" | "send" => Step::Command(text(arg.unwrap_or(""), false, false)?),
        "paste" => {
            let (count, rest) = count_and_rest(need("a count and a line")?)?;
            Step::Paste {
                count,
                template: text(rest, false, true)?,
            }
        }
        "raw" => Step::Raw(text(need("text")?, false, false)?),
        "sendfile" => Step::SendFile(PathBuf::from(need("a file path")?.trim())),
        "sendfile-acked" => acked(need(
            "a block size, an acknowledgement byte and a file path",
        )?)?,
        "sendgen" => {
            let a = need("a length and a seed")?;
            let words: Vec<&str> = a.split_whitespace().collect();
            if !(2..=3).contains(&words.len()) {
                return Err(format!("`sendgen` takes `N SEED [crc32=HEX]`, found `{a}`"));
            }
            let len = number(words[0])?;
            if len > MAX_SEND {
                return Err(format!(
                    "`sendgen` of {len} bytes is more than any session sends (at most {MAX_SEND}, 1 TiB)"
                ));
            }
            let seed = number(words[1])?;
            let pin = match words.get(2) {
                None => None,
                Some(w) => {
                    let hex = w
                        .strip_prefix("crc32=")
                        .ok_or_else(|| format!("expected `crc32=HEX`, found `{w}`"))?;
                    if hex.len() != 8 {
                        return Err(format!("`crc32=` needs 8 hex digits, found `{hex}`"));
                    }
                    Some(u32::from_str_radix(hex, 16).map_err(|_| format!("bad hex `{hex}`"))?)
                }
            };
            Step::SendGen { len, seed, pin }
        }
        "expect" => Step::Expect(text(need("text")?, true, false)?),
        "expect-line" => Step::ExpectLine(text(arg.unwrap_or(""), true, false)?),
        "expect-not" => Step::ExpectNot(text(need("text")?, true, false)?),
        "expect-re" => Step::ExpectRe(pattern(need("a regex")?)?),
        "expect-not-re" => Step::ExpectNotRe(pattern(need("a regex")?)?),
        "expect-golden" => Step::ExpectGolden(golden_name(need("a file name")?)?),
        "expect-each" => {
            let (count, rest) = count_and_rest(need("a count and a line")?)?;
            Step::ExpectEach {
                count,
                template: text(rest, true, true)?,
            }
        }
        "wait-prompt" => {
            none()?;
            Step::WaitPrompt
        }
        "timeout" => Step::Timeout(seconds(need("seconds")?)?),
        "sleep" => Step::Sleep(seconds(need("seconds")?)?),
        "prompt" => Step::Prompt(text(need("text")?, false, false)?.literal()),
        "eol" => Step::Eol(text(arg.unwrap_or(""), false, false)?.literal()),
        _ => return Err(format!("unknown keyword `{kw}` (known: {KEYWORDS})")),
    })
}

/// `sendfile-acked BLOCK ACK PATH` (PATH is the rest of the line).
fn acked(a: &str) -> Result<Step, String> {
    let usage = || format!("`sendfile-acked` takes `BLOCK ACK PATH`, found `{a}`");
    let (block, rest) = a.trim_start().split_once([' ', '\t']).ok_or_else(usage)?;
    let (ack, path) = rest
        .trim_start()
        .split_once([' ', '\t'])
        .ok_or_else(usage)?;
    let path = path.trim();
    if path.is_empty() {
        return Err(usage());
    }
    let block = match number(block)? {
        n @ 1.. if n <= MAX_BLOCK as u64 => n as usize,
        n => {
            return Err(format!(
                "a block of {n} bytes: `sendfile-acked` takes 1 to {MAX_BLOCK} (1 MiB)"
            ))
        }
    };
    let ack = match text(ack, false, false)?.literal()[..] {
        [b] if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b) => b,
        _ => {
            return Err(format!(
                "the acknowledgement `{ack}` must be one control byte (\\x00 to \\x1f, not \\t \\n \\r \\e), e.g. \\x06"
            ))
        }
    };
    Ok(Step::SendFileAcked {
        block,
        ack,
        path: PathBuf::from(path),
    })
}

/// A golden file name: relative, plain characters, no `.`/`..` or empty components.
fn golden_name(a: &str) -> Result<String, String> {
    let name = a.trim();
    if name.is_empty() {
        return Err("`expect-golden` needs a file name".into());
    }
    let bad =
        |why: &str| format!("`expect-golden` needs a plain relative file name, `{name}` {why}");
    if name.contains(char::is_whitespace) {
        return Err(bad("has blanks"));
    }
    if name.starts_with('/') {
        return Err(bad("is an absolute path"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(bad(&format!(
            "contains `{}` (use letters, digits, `.`, `_`, `-`, `/`)",
            c.escape_default()
        )));
    }
    for part in name.split('/') {
        match part {
            "" => return Err(bad("has an empty folder or file name")),
            "." | ".." => return Err(bad(&format!("contains `{part}`"))),
            _ => {}
        }
    }
    Ok(name.to_string())
}

fn count_and_rest(a: &str) -> Result<(usize, &str), String> {
    let (n, rest) = a
        .split_once(' ')
        .ok_or_else(|| format!("expected `N TEXT`, found `{a}`"))?;
    let n = number(n)?;
    if n == 0 {
        return Err("the count must be at least 1".into());
    }
    match usize::try_from(n) {
        Ok(n) if n <= MAX_LINES => Ok((n, rest)),
        _ => Err(format!(
            "a count of {n} lines is more than any session types or checks (at most {MAX_LINES})"
        )),
    }
}

/// Decimal or 0x-hex.
fn number(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("`{s}` is not a number (decimal or 0x-hex)"))
}

fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a number of seconds", s.trim()))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("`{}` is not a valid duration", s.trim()))
}

fn pattern(s: &str) -> Result<Pattern, String> {
    let p = Pattern {
        source: s.to_string(),
    };
    // Validate now, with dummy variable values, so a bad regex is a parse error.
    p.compile(&Vars {
        payload: Some((0, 0)),
    })
    .map_err(|e| format!("bad regex: {e}"))?;
    Ok(p)
}

/// Process escapes; `vars` allows `${...}`, `template` allows `{i}`.
///
/// Byte escapes are [`vmcirc::escape`]'s (the syntax the tool also shows bytes in);
/// `\$ \{ \}` escape this format's own `${...}` and `{i}`.
pub fn text(s: &str, vars: bool, template: bool) -> Result<Text, String> {
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    let flush = |lit: &mut Vec<u8>, pieces: &mut Vec<Piece>| {
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(lit)));
        }
    };
    while let Some(&b) = bytes.get(i) {
        let rest = &bytes[i..];
        if b == b'\\' {
            match bytes.get(i + 1) {
                Some(&c @ (b'$' | b'{' | b'}')) => {
                    lit.push(c);
                    i += 2;
                }
                _ => {
                    let (byte, used) = unescape_one(&rest[1..]).map_err(|e| match e {
                        UnescapeError::Unknown(_) => format!("{e} (known: {ESCAPES})"),
                        e => e.to_string(),
                    })?;
                    lit.push(byte);
                    i += 1 + used;
                }
            }
        } else if vars && rest.starts_with(b"${") {
            let (name, v) = VARS
                .iter()
                .find(|(name, _)| rest.starts_with(name.as_bytes()))
                .ok_or_else(|| {
                    let end = rest.iter().position(|&c| c == b'}').map_or(rest.len(), |e| e + 1);
                    format!(
                        "unknown variable `{}` (known: ${{len}} ${{crc32}} ${{CRC32}}; write `\\$` for a dollar)",
                        String::from_utf8_lossy(&rest[..end])
                    )
                })?;
            flush(&mut lit, &mut pieces);
            pieces.push(Piece::Var(*v));
            i += name.len();
        } else if template && rest.starts_with(b"{i}") {
            flush(&mut lit, &mut pieces);
            pieces.push(Piece::Index);
            i += 3;
        } else {
            lit.push(b);
            i += 1;
        }
    }
    flush(&mut lit, &mut pieces);
    Ok(Text(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Step {
        parse_step(s).expect("parses")
    }

    fn err(s: &str) -> String {
        parse(s).expect_err("should fail").to_string()
    }

    fn lit(b: &[u8]) -> Text {
        Text(vec![Piece::Lit(b.to_vec())])
    }

    #[test]
    fn comments_blank_and_crlf() {
        let s = "# a comment\n\n   # indented comment\r\n> help\r\nexpect x # not a comment\n";
        let lines = parse(s).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].lineno, 4);
        assert_eq!(lines[0].step, Step::Command(lit(b"help")));
        assert_eq!(lines[1].step, Step::Expect(lit(b"x # not a comment")));
    }

    #[test]
    fn command_forms() {
        assert_eq!(one("> echo  hi "), Step::Command(lit(b"echo  hi ")));
        assert_eq!(one("send echo hi"), Step::Command(lit(b"echo hi")));
        assert_eq!(one(">"), Step::Command(Text(vec![])));
        assert_eq!(one(">help"), Step::Command(lit(b"help")));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            one(r"raw a\r\n\t\e\0\x41\xfF\\\$\{\}b"),
            Step::Raw(lit(b"a\r\n\t\x1b\x00A\xff\\${}b"))
        );
        // `{i}` is literal outside templates, `${..}` literal outside expects.
        assert_eq!(
            one("> echo {i} ${len}"),
            Step::Command(lit(b"echo {i} ${len}"))
        );
    }

    #[test]
    fn variables_and_templates() {
        let step = one("expect rx ${len} crc32=${crc32}/${CRC32}");
        let Step::Expect(t) = step else { panic!() };
        let vars = Vars {
            payload: Some((16384, 0xabcd_ef01)),
        };
        assert_eq!(
            t.expand(&vars, None).unwrap(),
            b"rx 16384 crc32=abcdef01/ABCDEF01"
        );
        assert!(t.expand(&Vars::default(), None).is_err());

        let Step::Paste { count, template } = one("paste 3 echo line-{i}") else {
            panic!()
        };
        assert_eq!(count, 3);
        assert_eq!(template.expand(&vars, Some(2)).unwrap(), b"echo line-2");
        let Step::ExpectEach { count, template } = one("expect-each 200 line-{i}") else {
            panic!()
        };
        assert_eq!(count, 200);
        assert_eq!(template.expand(&vars, Some(199)).unwrap(), b"line-199");
    }

    #[test]
    fn sendgen_and_settings() {
        assert_eq!(
            one("sendgen 16384 42 crc32=8bde31dc"),
            Step::SendGen {
                len: 16384,
                seed: 42,
                pin: Some(0x8bde_31dc)
            }
        );
        assert_eq!(
            one("sendgen 0x10 0"),
            Step::SendGen {
                len: 16,
                seed: 0,
                pin: None
            }
        );
        assert_eq!(
            one("timeout 2.5"),
            Step::Timeout(Duration::from_millis(2500))
        );
        assert_eq!(one("eol \\r\\n"), Step::Eol(b"\r\n".to_vec()));
        assert_eq!(
            one("prompt vmcirc>\\x20"),
            Step::Prompt(b"vmcirc> ".to_vec())
        );
        assert_eq!(one("wait-prompt"), Step::WaitPrompt);
        assert_eq!(
            one("sendfile data/blob.bin"),
            Step::SendFile("data/blob.bin".into())
        );
        assert_eq!(
            one("sendfile-acked 1024 \\x06 images/kernel 2.img "),
            Step::SendFileAcked {
                block: 1024,
                ack: 6,
                path: "images/kernel 2.img".into()
            }
        );
        assert_eq!(
            one("sendfile-acked  0x10\t\\x11  x"),
            Step::SendFileAcked {
                block: 16,
                ack: 0x11,
                path: "x".into()
            }
        );
        for (bad, says) in [
            ("sendfile-acked 1024 \\x06", "takes `BLOCK ACK PATH`"),
            ("sendfile-acked 0 \\x06 f", "1 to 1048576"),
            ("sendfile-acked 1048577 \\x06 f", "1 to 1048576"),
            ("sendfile-acked x \\x06 f", "not a number"),
            ("sendfile-acked 1 \\n f", "one control byte"),
            ("sendfile-acked 1 \\e f", "one control byte"),
            ("sendfile-acked 1 A f", "one control byte"),
            ("sendfile-acked 1 \\x06\\x06 f", "one control byte"),
            ("sendfile-acked 1 \\q f", "unknown escape"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("line 1: ") && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn expect_golden_names() {
        assert_eq!(one("expect-golden help"), Step::ExpectGolden("help".into()));
        assert_eq!(
            one("expect-golden ring/list-after_wrap.txt "),
            Step::ExpectGolden("ring/list-after_wrap.txt".into())
        );
        assert_eq!(
            one("expect-golden .hidden"),
            Step::ExpectGolden(".hidden".into())
        );
        let bad = [
            ("expect-golden", "`expect-golden` needs a file name"),
            ("expect-golden   ", "`expect-golden` needs a file name"),
            ("expect-golden ../help", "contains `..`"),
            ("expect-golden a/../../b", "contains `..`"),
            ("expect-golden ./help", "contains `.`"),
            ("expect-golden ..", "contains `..`"),
            ("expect-golden /etc/passwd", "is an absolute path"),
            ("expect-golden a//b", "has an empty folder or file name"),
            ("expect-golden dir/", "has an empty folder or file name"),
            ("expect-golden two words", "has blanks"),
            ("expect-golden a\\b", "contains `\\\\`"),
            ("expect-golden C:x", "contains `:`"),
        ];
        for (src, want) in bad {
            let got = err(src);
            assert!(got.starts_with("line 1: "), "{src:?}: {got:?}");
            assert!(got.contains(want), "{src:?}: got {got:?}, want {want:?}");
            assert!(!got.contains('\n'), "multi-line error for {src:?}: {got:?}");
        }
        // The line number is the script's.
        assert!(err("> help\n\nexpect-golden ../x").starts_with("line 3: "));
    }

    #[test]
    fn errors_are_one_line_with_line_numbers() {
        let cases = [
            ("> ok\nexpct hi", "line 2: unknown keyword `expct`"),
            ("raw a\\q", "line 1: unknown escape `\\q`"),
            ("raw a\\", "line 1: trailing `\\`"),
            ("raw \\x4", "line 1: `\\x` needs two hex digits"),
            ("\n\nexpect-re (", "line 3: bad regex"),
            ("expect ${nope}", "line 1: unknown variable `${nope}`"),
            ("timeout soon", "line 1: `soon` is not a number of seconds"),
            ("sendgen 10", "line 1: `sendgen` takes `N SEED [crc32=HEX]`"),
            (
                "sendgen 10 1 crc32=12",
                "line 1: `crc32=` needs 8 hex digits",
            ),
            ("paste 0 echo", "line 1: the count must be at least 1"),
            ("expect-each x line", "line 1: `x` is not a number"),
            ("wait-prompt now", "line 1: `wait-prompt` takes no argument"),
            ("expect", "line 1: `expect` needs text"),
            (
                "# only settings\ntimeout 1",
                "line 2: the script has no steps",
            ),
        ];
        for (src, want) in cases {
            let got = err(src);
            assert!(got.starts_with(want), "{src:?}: got {got:?}, want {want:?}");
            assert!(!got.contains('\n'), "multi-line error for {src:?}: {got:?}");
        }
    }

    #[test]
    fn huge_counts_are_line_errors_not_crashes() {
        let cases = [
            (
                "sendgen 18446744073709551615 1",
                "more than any session sends",
            ),
            ("sendgen 1099511627777 1", "more than any session sends"),
            (
                "paste 100000000000 echo {i}",
                "more than any session types or checks",
            ),
            (
                "expect-each 100000000000 line-{i}",
                "more than any session types or checks",
            ),
            ("paste 18446744073709551616 x", "is not a number"),
        ];
        for (src, want) in cases {
            let got = err(&format!("> help\n{src}"));
            assert!(got.starts_with("line 2: "), "{src:?}: {got:?}");
            assert!(got.contains(want), "{src:?}: {got:?}");
        }
        // Up to the bounds they parse (the runner generates them lazily).
        assert_eq!(
            one("sendgen 1099511627776 1"),
            Step::SendGen {
                len: MAX_SEND,
                seed: 1,
                pin: None
            }
        );
        assert!(matches!(
            one("paste 10000000 echo {i}"),
            Step::Paste {
                count: MAX_LINES,
                ..
            }
        ));
    }

    #[test]
    fn errors_show_control_characters_escaped() {
        assert!(err("crc32=\r\x01 x").starts_with("line 1: unknown keyword `crc32=\\r\\x01`"));
        assert!(err("> x\nsleep 1\u{7}").contains("`1\\x07` is not a number of seconds"));
    }

    #[test]
    fn non_ascii_text_and_templates() {
        // A multi-byte character before `{i}` (this used to slice inside it).
        let Step::Paste { template, .. } = one("paste 2 é{i}ü") else {
            panic!()
        };
        assert_eq!(
            template.expand(&Vars::default(), Some(1)).unwrap(),
            "é1ü".as_bytes()
        );
        assert_eq!(one("raw \\\"q\\\""), Step::Raw(lit(b"\"q\"")));
        // `\x` takes exactly two hex digits (no sign).
        assert!(err("raw \\x+1").contains("`\\x` needs two hex digits"));
        assert!(err("expect ${").contains("unknown variable `${`"));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Pieces scripts are made of, including the awkward ones.
        fn fragment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(" ".to_string()),
                Just("\t".to_string()),
                Just("\\".to_string()),
                Just("\\x".to_string()),
                Just("\\xg".to_string()),
                Just("\\x4".to_string()),
                Just("\\x41".to_string()),
                Just("\\q".to_string()),
                Just("\\$".to_string()),
                Just("${".to_string()),
                Just("${len}".to_string()),
                Just("${crc32}".to_string()),
                Just("{i}".to_string()),
                Just("{".to_string()),
                Just("é".to_string()),
                Just("\u{0}".to_string()),
                Just("\r".to_string()),
                Just("crc32=".to_string()),
                Just("crc32=8bde31dc".to_string()),
                Just("(".to_string()),
                Just("[a-".to_string()),
                Just("a{1000}{1000}".to_string()),
                Just("0".to_string()),
                Just("-1".to_string()),
                Just("1e999".to_string()),
                Just("NaN".to_string()),
                Just("0x".to_string()),
                Just("0xffffffffffffffff".to_string()),
                Just("18446744073709551615".to_string()),
                Just("18446744073709551616".to_string()),
                Just("100000000000".to_string()),
                Just("10000000".to_string()),
                Just("../x".to_string()),
                Just("/".to_string()),
                "[0-9]{1,25}",
                "\\PC{0,12}",
                any::<String>().prop_map(|s| s.chars().take(12).collect()),
            ]
        }

        fn keyword() -> impl Strategy<Value = String> {
            prop_oneof![
                proptest::sample::select(
                    KEYWORDS.split(", ").map(String::from).collect::<Vec<_>>()
                ),
                Just("#".to_string()),
                Just("".to_string()),
                "[a-z-]{1,12}",
            ]
        }

        /// `LEAD KEYWORD [COUNT ]FRAGMENTS`: counts first, as `paste`, `sendgen` and
        /// `expect-each` take them.
        fn line() -> impl Strategy<Value = String> {
            (
                "[ \t]{0,2}",
                keyword(),
                any::<bool>(),
                proptest::option::of("[0-9]{1,3} "),
                proptest::collection::vec(fragment(), 0..6),
            )
                .prop_map(|(lead, kw, sep, count, args)| {
                    format!(
                        "{lead}{kw}{}{}{}",
                        if sep { " " } else { "" },
                        count.unwrap_or_default(),
                        args.concat()
                    )
                })
        }

        /// Checks the parser's contract on `text`.
        fn check(text: &str) -> Result<(), TestCaseError> {
            let lines = text.lines().count().max(1);
            match parse(text) {
                Ok(parsed) => {
                    prop_assert!(!parsed.is_empty());
                    for l in &parsed {
                        prop_assert!((1..=lines).contains(&l.lineno));
                        match &l.step {
                            Step::SendGen { len, .. } => prop_assert!(*len <= MAX_SEND),
                            Step::SendFileAcked { block, ack, .. } => {
                                prop_assert!((1..=MAX_BLOCK).contains(block));
                                prop_assert!(*ack < 0x20 && !b"\t\n\r\x1b".contains(ack));
                            }
                            Step::Paste { count, .. } | Step::ExpectEach { count, .. } => {
                                prop_assert!((1..=MAX_LINES).contains(count))
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(!msg.contains(char::is_control), "{msg:?}");
                    let rest = msg.strip_prefix("line ");
                    prop_assert!(rest.is_some(), "{msg:?}");
                    let (n, what) = rest
                        .unwrap_or_default()
                        .split_once(": ")
                        .unwrap_or_default();
                    let n: usize = n.parse().unwrap_or(0);
                    prop_assert!((1..=lines).contains(&n), "{msg:?} for {lines} lines");
                    prop_assert!(!what.is_empty(), "{msg:?}");
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_scripts_parse_or_fail_with_one_line(
                lines in proptest::collection::vec(line(), 0..8),
                crlf in any::<bool>(),
            ) {
                check(&lines.join(if crlf { "\r\n" } else { "\n" }))?;
                // Each line alone too (a whole script stops at its first bad line).
                for l in &lines {
                    check(l)?;
                }
            }

            #[test]
            fn random_bytes_parse_or_fail_with_one_line(
                bytes in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                check(&String::from_utf8_lossy(&bytes))?;
            }
        }
    }
}
