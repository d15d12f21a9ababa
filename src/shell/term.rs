//! [`LineIo`]: the byte stream between the console and `noline`, made to work
//! over dumb links without losing input, and to pass `noline` only input it
//! handles correctly.
//!
//! `noline` 0.5 asks the terminal for its size and cursor position (`ESC[6n`)
//! before every prompt and waits for the replies. A real terminal answers within
//! milliseconds; a script, `cat` into the port or a test harness never does. So
//! `LineIo` forwards each query and waits at most [`REPLY_TIMEOUT_US`] for the
//! answer. Bytes that arrive meanwhile and are not the answer (someone typing or
//! pasting) are kept and delivered afterwards, in order, so none is swallowed. If
//! no answer comes, `LineIo` answers itself (an 80x24 terminal, the cursor at the
//! column its own output left it) and from then on answers every query at once,
//! so a dumb link pays the wait only once. A late real answer switches it back.
//! An answer is only taken while a query waits for it and only with sane numbers
//! (1..=999, the cursor inside the reported size); anything else that looks like
//! one is dropped with a bell.
//!
//! Everything else goes through the [`InputFilter`] (`input.rs`): complete keys
//! and valid UTF-8 only. Input is also normalised: NUL bytes are dropped, and an
//! LF right after a CR is dropped, so CR, LF and CRLF line ends each end exactly
//! one line. Data commands (`rx`) read raw bytes instead ([`LineIo::begin_raw`],
//! [`LineIo::try_read_raw`]): their payload starts right after the CR or LF that
//! ended the command line, so a payload may start with LF.
//!
//! `LineIo` also watches for what the shell must know about a line: whether the
//! editor refused a character because the line was full (the line is then
//! rejected whole), which key ended it (Ctrl-D), whether output failed, and a
//! Ctrl-C typed while a long command runs ([`LineIo::interrupted`]).

use embedded_io::{ErrorType, Read, Write};

use super::input::{InputFilter, REPORT_MAX};
use super::Console;

/// Columns assumed when the terminal does not answer.
pub const COLUMNS: u16 = 80;
/// Rows assumed when the terminal does not answer.
pub const ROWS: u16 = 24;
/// How long to wait for a terminal's reply to `ESC[6n`.
pub const REPLY_TIMEOUT_US: u64 = 200_000;

/// Recognises `ESC [ digits ; digits R` (a cursor position report) in raw input
/// while a query waits, with at most [`CPR_DIGITS`] digits per number.
#[derive(Default, Clone, Copy)]
struct CprParser {
    state: u8,
    digits: u8,
    row: u32,
    col: u32,
}

/// Digits per number in a report: enough for any sane one, and it bounds the
/// bytes held back while one is being recognised.
const CPR_DIGITS: u8 = 5;

#[derive(PartialEq, Eq)]
enum Cpr {
    More,
    /// A complete report: (row, col), not yet checked for sanity.
    Done(u32, u32),
    No,
}

impl CprParser {
    const fn new() -> Self {
        CprParser {
            state: 0,
            digits: 0,
            row: 0,
            col: 0,
        }
    }

    fn feed(&mut self, b: u8) -> Cpr {
        let d = u32::from(b.wrapping_sub(b'0'));
        let (next, r) = match (self.state, b) {
            (0, 0x1b) => {
                *self = Self::new();
                (1, Cpr::More)
            }
            (1, b'[') => (2, Cpr::More),
            (2 | 3, b'0'..=b'9') if self.digits < CPR_DIGITS => {
                self.digits += 1;
                self.row = self.row * 10 + d;
                (3, Cpr::More)
            }
            (3, b';') => {
                self.digits = 0;
                (4, Cpr::More)
            }
            (4 | 5, b'0'..=b'9') if self.digits < CPR_DIGITS => {
                self.digits += 1;
                self.col = self.col * 10 + d;
                (5, Cpr::More)
            }
            (5, b'R') => (0, Cpr::Done(self.row, self.col)),
            _ => (0, Cpr::No),
        };
        self.state = next;
        r
    }
}

/// A query `noline` sent and the answer we would give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Probe {
    /// The size probe (cursor moved to the far corner) or a position probe.
    size: bool,
    /// Our answer (row, col) if the terminal gives none.
    answer: (u16, u16),
}

/// Tracks the cursor column through our own output and spots the sequences
/// `noline` uses to probe the terminal.
struct OutputTracker {
    /// 0 plain, 1 after ESC, 2 inside a CSI.
    esc: u8,
    csi: heapless::Vec<u8, 12>,
    column: u16,
    saved_column: u16,
    at_corner: bool,
}

impl OutputTracker {
    const fn new() -> Self {
        OutputTracker {
            esc: 0,
            csi: heapless::Vec::new(),
            column: 0,
            saved_column: 0,
            at_corner: false,
        }
    }
}

enum OutEvent {
    None,
    /// `ESC[6n`: the reply the terminal would give if it were 80x24.
    Query(Probe),
}

impl OutputTracker {
    fn feed(&mut self, b: u8) -> OutEvent {
        match self.esc {
            1 => {
                self.esc = 0;
                match b {
                    b'[' => {
                        self.esc = 2;
                        self.csi.clear();
                    }
                    b'7' => self.saved_column = self.column,
                    b'8' => {
                        self.column = self.saved_column;
                        self.at_corner = false;
                    }
                    _ => {}
                }
                OutEvent::None
            }
            2 => {
                if (0x40..=0x7e).contains(&b) {
                    self.esc = 0;
                    let params = core::mem::take(&mut self.csi);
                    match (b, params.as_slice()) {
                        (b'n', b"6") => {
                            return OutEvent::Query(Probe {
                                size: self.at_corner,
                                answer: if self.at_corner {
                                    (ROWS, COLUMNS)
                                } else {
                                    (ROWS, self.column.saturating_add(1))
                                },
                            });
                        }
                        (b'H', p) => {
                            self.at_corner = p == b"999;999";
                            if !self.at_corner {
                                // Absolute move: the column is the second number.
                                let col =
                                    p.split(|&c| c == b';').nth(1).map(parse_dec).unwrap_or(1);
                                self.column = col.saturating_sub(1);
                            }
                        }
                        (b'C', p) => self.column = self.column.saturating_add(parse_dec(p).max(1)),
                        (b'D', p) => self.column = self.column.saturating_sub(parse_dec(p).max(1)),
                        _ => {}
                    }
                } else {
                    let _ = self.csi.push(b);
                }
                OutEvent::None
            }
            _ => {
                match b {
                    0x1b => self.esc = 1,
                    b'\r' | b'\n' => self.column = 0,
                    0x08 => self.column = self.column.saturating_sub(1),
                    0x20..=0x7e => self.column = self.column.saturating_add(1),
                    _ => {}
                }
                OutEvent::None
            }
        }
    }
}

fn parse_dec(s: &[u8]) -> u16 {
    s.iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u16, |a, &c| {
            a.saturating_mul(10).saturating_add(u16::from(c - b'0'))
        })
}

/// The interposer's state. It lives outside [`LineIo`] so that input already
/// read ahead survives when the shell's stack is abandoned (a fault on the
/// board): the kernel keeps it in a static and calls [`LineState::recover`].
pub struct LineState {
    /// Terminal replies for `noline`, delivered before anything else.
    replies: heapless::Deque<u8, 64>,
    /// Raw input that arrived while waiting for a reply (or while a command
    /// ran), delivered next.
    kept: heapless::Deque<u8, 512>,
    /// Filtered input for the editor: (byte, whether it completes a printable
    /// character).
    cooked: heapless::Deque<(u8, bool), 8>,
    /// Queries without an answer yet.
    pending: heapless::Deque<Probe, 4>,
    deadline: u64,
    dumb: bool,
    cpr: CprParser,
    cpr_bytes: heapless::Vec<u8, 16>,
    /// The terminal size noline was last given (answers are kept inside it).
    size: (u16, u16),
    filter: InputFilter,
    out: OutputTracker,
    after_cr: bool,
    eof: bool,
    /// Bytes went to the editor since the last line end (a last line without
    /// a newline at end of input is still run).
    line_dirty: bool,
    /// The last byte delivered to the editor.
    last_key: u8,
    /// The byte just delivered completed a printable character: a bell the
    /// editor writes now means it refused it (the line is full).
    printed: bool,
    /// The editor refused a character since [`LineIo::begin_line`].
    overflow: bool,
    /// A write to the console failed.
    output_failed: bool,
}

impl Default for LineState {
    fn default() -> Self {
        Self::new()
    }
}

impl LineState {
    /// A fresh state (usable for a `static`).
    pub const fn new() -> Self {
        LineState {
            replies: heapless::Deque::new(),
            kept: heapless::Deque::new(),
            cooked: heapless::Deque::new(),
            pending: heapless::Deque::new(),
            deadline: 0,
            dumb: false,
            cpr: CprParser::new(),
            cpr_bytes: heapless::Vec::new(),
            size: (ROWS, COLUMNS),
            filter: InputFilter::new(),
            out: OutputTracker::new(),
            after_cr: false,
            eof: false,
            line_dirty: false,
            last_key: 0,
            printed: false,
            overflow: false,
            output_failed: false,
        }
    }

    /// After the shell was abandoned mid-line: forget the editor's half-finished
    /// conversation with the terminal and the half-typed line, keep the input
    /// read ahead (and what was learnt about the terminal).
    pub fn recover(&mut self) {
        self.replies.clear();
        self.pending.clear();
        self.cooked.clear();
        for &b in &core::mem::take(&mut self.cpr_bytes) {
            let _ = self.kept.push_back(b);
        }
        self.cpr = CprParser::new();
        self.filter.reset();
        self.out = OutputTracker::new();
        self.after_cr = false;
        self.line_dirty = false;
        self.printed = false;
        self.overflow = false;
    }
}

/// Ctrl-C.
const CTRL_C: u8 = 0x03;

/// The interposer; see the module docs.
pub struct LineIo<'c, C: Console> {
    console: &'c mut C,
    st: &'c mut LineState,
}

impl<'c, C: Console> LineIo<'c, C> {
    /// Wraps a console; `state` carries read-ahead input between instances.
    pub fn new(console: &'c mut C, state: &'c mut LineState) -> Self {
        LineIo { console, st: state }
    }

    /// The console underneath.
    pub fn console(&mut self) -> &mut C {
        self.console
    }

    /// Whether the input stream has ended (host streams only).
    pub fn at_eof(&self) -> bool {
        self.st.eof
    }

    /// Whether the terminal was found not to answer queries.
    pub fn is_dumb(&self) -> bool {
        self.st.dumb
    }

    /// Whether a write to the console has failed (e.g. stdout closed).
    pub fn output_failed(&self) -> bool {
        self.st.output_failed
    }

    /// The last byte handed to the line editor (which key ended or aborted a
    /// line).
    pub fn last_key(&self) -> u8 {
        self.st.last_key
    }

    /// A new line starts: forget earlier overflows.
    pub fn begin_line(&mut self) {
        self.st.overflow = false;
    }

    /// Whether the editor refused a character since [`LineIo::begin_line`]
    /// because the line was full.
    pub fn overflowed(&self) -> bool {
        self.st.overflow
    }

    /// A data command starts reading raw bytes: they start right after the byte
    /// that ended its command line (an LF after a CR is data, not a line end).
    pub fn begin_raw(&mut self) {
        self.st.after_cr = false;
    }

    /// One raw input byte without waiting (binary transfers such as `rx`): kept
    /// bytes first, then the console. Nothing is filtered or dropped.
    pub fn try_read_raw(&mut self) -> Option<u8> {
        match self.st.kept.pop_front() {
            Some(b) => Some(b),
            None => self.console.try_read_byte(),
        }
    }

    /// Drops all input that is already queued (resynchronising after a failed
    /// transfer); returns how many bytes went.
    pub fn discard_input(&mut self) -> usize {
        let mut n = self.st.kept.len();
        self.st.kept.clear();
        while self.console.try_read_byte().is_some() {
            n += 1;
        }
        self.st.after_cr = false;
        self.st.filter.reset();
        n
    }

    /// For long commands: whether Ctrl-C was typed. Input typed meanwhile is
    /// kept for the prompt that follows; on Ctrl-C, what was typed before it is
    /// dropped with it (as a terminal flushes typed-ahead input on an
    /// interrupt). Never waits.
    pub fn interrupted(&mut self) -> bool {
        if let Some(i) = self.st.kept.iter().position(|&b| b == CTRL_C) {
            for _ in 0..=i {
                self.st.kept.pop_front();
            }
            return true;
        }
        while !self.st.kept.is_full() {
            match self.console.try_read_byte() {
                Some(CTRL_C) => {
                    self.st.kept.clear();
                    return true;
                }
                Some(b) => {
                    let _ = self.st.kept.push_back(b);
                }
                None => break,
            }
        }
        false
    }

    /// Rings the terminal bell (input was rejected).
    fn bell(&mut self) {
        if self.console.write_all(b"\x07").is_err() {
            self.st.output_failed = true;
        }
    }

    /// Queues the answer to `probe` for the editor: ours or the terminal's,
    /// always inside the size the editor was given.
    fn push_reply(&mut self, probe: Probe, (row, col): (u16, u16)) {
        let (row, col) = if probe.size {
            self.st.size = (row, col);
            (row, col)
        } else {
            (row.min(self.st.size.0), col.min(self.st.size.1))
        };
        let mut buf = [0u8; 16];
        let n = fmt_cpr(&mut buf, row, col);
        for &b in &buf[..n] {
            let _ = self.st.replies.push_back(b);
        }
    }

    fn keep(&mut self, b: u8) {
        // `pump` stops reading while `kept` is nearly full, so this fits.
        let _ = self.st.kept.push_back(b);
    }

    fn time_out(&mut self) {
        self.st.dumb = true;
        while let Some(probe) = self.st.pending.pop_front() {
            self.push_reply(probe, probe.answer);
        }
        self.st.cpr = CprParser::new();
        let partial = core::mem::take(&mut self.st.cpr_bytes);
        for &b in &partial {
            self.keep(b);
        }
    }

    /// A complete report arrived while `probe` waits: is it a sane answer?
    fn sane_answer(&self, probe: &Probe, row: u32, col: u32) -> Option<(u16, u16)> {
        let max = u32::from(REPORT_MAX);
        if !(1..=max).contains(&row) || !(1..=max).contains(&col) {
            return None;
        }
        let (row, col) = (row as u16, col as u16);
        if !probe.size && (row > self.st.size.0 || col > self.st.size.1) {
            return None;
        }
        Some((row, col))
    }

    /// While queries are outstanding: sort incoming bytes into the terminal's
    /// replies and kept input, until every query is answered or the wait ends.
    fn pump(&mut self) {
        while let Some(&probe) = self.st.pending.front() {
            if self.st.kept.capacity() - self.st.kept.len() < 32 {
                // Leave further input queued in the console; answer now.
                self.time_out();
                return;
            }
            let Some(b) = self.console.try_read_byte() else {
                if self.console.input_closed() || self.console.now_us() >= self.st.deadline {
                    self.time_out();
                }
                continue;
            };
            match self.st.cpr.feed(b) {
                Cpr::More => {
                    let _ = self.st.cpr_bytes.push(b);
                }
                Cpr::Done(row, col) => {
                    self.st.cpr_bytes.clear();
                    match self.sane_answer(&probe, row, col) {
                        Some(answer) => {
                            self.st.pending.pop_front();
                            self.push_reply(probe, answer);
                            self.st.dumb = false;
                        }
                        // A report with impossible numbers: dropped; the
                        // query keeps waiting (and times out if need be).
                        None => self.bell(),
                    }
                }
                Cpr::No => {
                    for &p in &core::mem::take(&mut self.st.cpr_bytes) {
                        self.keep(p);
                    }
                    if self.st.cpr.feed(b) == Cpr::More {
                        let _ = self.st.cpr_bytes.push(b);
                    } else {
                        self.keep(b);
                    }
                }
            }
        }
    }

    /// The next raw byte for the editor: kept input first, then the console
    /// (waiting). `None` at end of input.
    fn next_raw(&mut self) -> Result<Option<u8>, C::Error> {
        if let Some(b) = self.st.kept.pop_front() {
            return Ok(Some(b));
        }
        let mut one = [0u8; 1];
        match self.console.read(&mut one)? {
            0 => Ok(None),
            _ => Ok(Some(one[0])),
        }
    }

    /// Reads raw input through the filter until it yields something for the
    /// editor (into `cooked`); false at end of input.
    fn cook(&mut self) -> Result<bool, C::Error> {
        while self.st.cooked.is_empty() {
            let Some(b) = self.next_raw()? else {
                // End of input: a half-read key is dropped, and a last line
                // without its line end is still ended (and so run).
                if self.st.filter.flush() {
                    self.bell();
                }
                if core::mem::take(&mut self.st.line_dirty) {
                    let _ = self.st.cooked.push_back((b'\r', false));
                    return Ok(true);
                }
                return Ok(false);
            };
            let after_cr = core::mem::replace(&mut self.st.after_cr, b == b'\r');
            if b == 0 || (b == b'\n' && after_cr) {
                continue;
            }
            let fed = self.st.filter.feed(b);
            if fed.bell {
                self.bell();
            }
            if fed.report.is_some() {
                // No query waits (the editor only asks before a prompt, and
                // reads nothing else until answered): a late answer from a real
                // terminal after all. Consumed; the link is not dumb.
                self.st.dumb = false;
            }
            let n = fed.emit.len();
            let text = fed.emit.first().is_some_and(|&c| c >= 0x20 && c != 0x7f);
            for (i, &c) in fed.emit.iter().enumerate() {
                let _ = self.st.cooked.push_back((c, text && i + 1 == n));
            }
        }
        Ok(true)
    }
}

/// Formats `ESC [ row ; col R` into `buf`, returning its length.
fn fmt_cpr(buf: &mut [u8; 16], row: u16, col: u16) -> usize {
    let mut n = 0;
    let mut put = |b: u8| {
        if let Some(slot) = buf.get_mut(n) {
            *slot = b;
            n += 1;
        }
    };
    put(0x1b);
    put(b'[');
    for (i, v) in [row, col].into_iter().enumerate() {
        if i == 1 {
            put(b';');
        }
        let mut digits = [0u8; 5];
        let mut k = 0;
        let mut v = v;
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for d in digits[..k].iter().rev() {
            put(*d);
        }
    }
    put(b'R');
    n
}

impl<C: Console> ErrorType for LineIo<'_, C> {
    type Error = C::Error;
}

impl<C: Console> Read for LineIo<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, C::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.st.printed = false;
        if self.st.replies.is_empty() && !self.st.pending.is_empty() {
            self.pump();
        }
        if let Some(b) = self.st.replies.pop_front() {
            buf[0] = b;
            return Ok(1);
        }
        if !self.cook()? {
            self.st.eof = true;
            return Ok(0);
        }
        let Some((b, printable)) = self.st.cooked.pop_front() else {
            return Ok(0);
        };
        self.st.printed = printable;
        self.st.last_key = b;
        self.st.line_dirty = !matches!(b, b'\r' | b'\n' | CTRL_C);
        buf[0] = b;
        Ok(1)
    }
}

impl<C: Console> Write for LineIo<'_, C> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, C::Error> {
        if let Err(e) = self.console.write_all(buf) {
            self.st.output_failed = true;
            return Err(e);
        }
        if self.st.printed && buf.contains(&0x07) {
            // The editor rang the bell for the character just given to it: it
            // did not fit.
            self.st.overflow = true;
        }
        for &b in buf {
            if let OutEvent::Query(probe) = self.st.out.feed(b) {
                if self.st.dumb {
                    self.push_reply(probe, probe.answer);
                } else {
                    if self.st.pending.is_empty() {
                        self.st.deadline = self.console.now_us() + REPLY_TIMEOUT_US;
                    }
                    if self.st.pending.push_back(probe).is_err() {
                        self.time_out();
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), C::Error> {
        self.console
            .flush()
            .inspect_err(|_| self.st.output_failed = true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::testio::MemConsole;
    use std::vec::Vec;

    fn read_n(io: &mut LineIo<'_, MemConsole>, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        for _ in 0..n {
            if io.read(&mut b).unwrap() == 0 {
                break;
            }
            got.push(b[0]);
        }
        got
    }

    #[test]
    fn dumb_link_gets_answers_and_keeps_typed_bytes() {
        let mut con = MemConsole::new(b"ab");
        con.set_closed_when_empty(false);
        let mut st = LineState::new();
        let mut io = LineIo::new(&mut con, &mut st);
        io.write_all(b"\x1b7\x1b[999;999H\x1b[6n\x1b8").unwrap();
        assert_eq!(read_n(&mut io, 8), b"\x1b[24;80R");
        assert!(io.is_dumb());
        io.write_all(b"\r\x1b[Jvmcirc> \x1b[6n").unwrap();
        assert_eq!(read_n(&mut io, 7), b"\x1b[24;9R");
        // The typed bytes come after the replies, none lost.
        assert_eq!(read_n(&mut io, 2), b"ab");
        // Queries still reach the console (a real terminal may be there).
        assert_eq!(
            con.output(),
            b"\x1b7\x1b[999;999H\x1b[6n\x1b8\r\x1b[Jvmcirc> \x1b[6n"
        );
    }

    #[test]
    fn real_terminal_reply_is_used_and_input_around_it_kept() {
        // The terminal's reply arrives in the middle of typed bytes.
        let mut con = MemConsole::new(b"x\x1b[A\x1b[51;200Ry");
        let mut st = LineState::new();
        let mut io = LineIo::new(&mut con, &mut st);
        io.write_all(b"\x1b[999;999H\x1b[6n").unwrap();
        assert_eq!(read_n(&mut io, 9), b"\x1b[51;200R");
        assert!(!io.is_dumb());
        // The last line has no line end: at end of input it gets one.
        assert_eq!(read_n(&mut io, 10), b"x\x1b[Ay\r");
    }

    #[test]
    fn input_read_ahead_survives_an_abandoned_editor() {
        // The editor asks for the cursor position; while LineIo waits for the
        // answer it reads ahead the user's next lines. Then a fault abandons the
        // shell: a new LineIo on the same state must still deliver them.
        let mut con = MemConsole::new(b"echo 1\recho 2\r");
        con.set_closed_when_empty(false);
        let mut st = LineState::new();
        {
            let mut io = LineIo::new(&mut con, &mut st);
            io.write_all(b"\x1b[6n").unwrap();
            // The synthesised answer, after the read-ahead.
            assert_eq!(read_n(&mut io, 1), b"\x1b");
            // ... the shell faults here, mid-conversation.
        }
        st.recover();
        let mut io = LineIo::new(&mut con, &mut st);
        assert_eq!(read_n(&mut io, 14), b"echo 1\recho 2\r");
    }

    #[test]
    fn input_normalisation() {
        let mut con = MemConsole::new(b"a\0\r\nb\n\r\r\n");
        let mut st = LineState::new();
        let mut io = LineIo::new(&mut con, &mut st);
        assert_eq!(read_n(&mut io, 100), b"a\rb\n\r\r");
        assert!(io.at_eof());
    }

    #[test]
    fn raw_reads_start_right_after_the_line_end() {
        // The command line ended with CR; the payload starts with LF.
        let mut con = MemConsole::new(b"\r\n\nxy");
        let mut st = LineState::new();
        let mut io = LineIo::new(&mut con, &mut st);
        assert_eq!(read_n(&mut io, 1), b"\r");
        io.begin_raw();
        assert_eq!(io.try_read_raw(), Some(b'\n'));
        assert_eq!(io.try_read_raw(), Some(b'\n'));
        assert_eq!(io.try_read_raw(), Some(b'x'));
        assert_eq!(io.discard_input(), 1);
        assert_eq!(io.try_read_raw(), None);
    }
}
