//! [`InputFilter`]: the gate between the raw input bytes and `noline`.
//!
//! `noline` 0.5.1 trusts its input: a cursor report without both numbers
//! (`ESC [ R`, `ESC [ 5 R`) unwraps `None`, a report of row or column 0 underflows
//! or divides by zero, long digit strings overflow, and its UTF-8 decoder checks
//! only the byte structure before building a `&str` (so surrogates, overlong forms
//! and code points above U+10FFFF became "strings"). This filter parses every
//! byte first and hands `noline` only what it handles correctly:
//!
//! - printable ASCII, and the C0 control keys (`noline` acts on them or rings
//!   the bell);
//! - complete, valid UTF-8 characters (shortest form, no surrogates, at most
//!   U+10FFFF, no C1 controls U+0080..U+009F); anything else rings the bell and
//!   is dropped (a broken sequence is dropped up to the byte that breaks it,
//!   which is then read afresh);
//! - the editing keys `noline` knows, rewritten to the one form it parses: the
//!   arrows (`ESC [ A`..`D`, also the application-mode `ESC O A`..`D`), Home
//!   (`ESC [ H`, `ESC O H`, `ESC [ 1 ~`, `ESC [ 7 ~`), End (`ESC [ F`, `ESC O F`,
//!   `ESC [ 4 ~`, `ESC [ 8 ~`) and Delete (`ESC [ 3 ~`);
//! - every other escape sequence (other CSI, `ESC O` and `ESC` + final byte
//!   sequences, and the string sequences OSC, DCS, SOS, PM and APC with their
//!   bodies, up to BEL or ST = `ESC \`) is consumed whole and rings the bell. A
//!   CR, LF or Ctrl-C inside a sequence or string ends it there (and then acts
//!   as itself), so a stray `ESC ]` cannot make the shell deaf; CAN and SUB cancel
//!   it;
//! - cursor position reports (`ESC [ row ; col R`) are never passed on: a
//!   well-formed one with both numbers in 1..=[`REPORT_MAX`] is returned to the
//!   caller ([`Fed::report`]), which decides whether a probe is waiting for it;
//!   a malformed one rings the bell.
//!
//! The filter never panics and needs no allocation: it is a small state machine
//! with bounded state (numbers saturate, at most [`MAX_PARAMS`] parameters).

/// Largest row or column a cursor position report may carry. `noline` probes the
/// size by moving to row and column 999, so no honest answer is larger.
pub const REPORT_MAX: u16 = 999;
/// Parameters of a control sequence that are kept; more make it malformed.
pub const MAX_PARAMS: usize = 4;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const CTRL_C: u8 = 0x03;

/// What one input byte produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fed {
    /// Something was rejected: ring the terminal bell.
    pub bell: bool,
    /// Bytes for the line editor (one key or one character).
    pub emit: heapless::Vec<u8, 4>,
    /// A well-formed cursor position report `(row, col)`, both in
    /// 1..=[`REPORT_MAX`].
    pub report: Option<(u16, u16)>,
}

impl Fed {
    fn emit(&mut self, bytes: &[u8]) {
        // At most 4 bytes are emitted per input byte (a UTF-8 character or
        // `ESC [ n ~`), after at most one rejection, so this always fits.
        let _ = self.emit.extend_from_slice(bytes);
    }
}

/// The numeric parameters of a control sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Params {
    vals: [Option<u16>; MAX_PARAMS],
    /// Fields seen (separators + 1 once anything was seen).
    count: usize,
    /// A number did not fit, too many fields, or a byte that makes the
    /// sequence one we never accept (private marker, `:`, intermediate).
    odd: bool,
}

impl Params {
    const fn new() -> Self {
        Params {
            vals: [None; MAX_PARAMS],
            count: 0,
            odd: false,
        }
    }

    fn digit(&mut self, d: u8) {
        if self.count == 0 {
            self.count = 1;
        }
        let Some(slot) = self.vals.get_mut(self.count - 1) else {
            self.odd = true;
            return;
        };
        let v = slot
            .unwrap_or(0)
            .checked_mul(10)
            .and_then(|v| v.checked_add(u16::from(d - b'0')));
        match v {
            Some(v) => *slot = Some(v),
            None => self.odd = true,
        }
    }

    fn separator(&mut self) {
        if self.count == 0 {
            self.count = 1;
        }
        self.count += 1;
        if self.count > MAX_PARAMS {
            self.odd = true;
            self.count = MAX_PARAMS;
        }
    }

    fn get(&self, i: usize) -> Option<u16> {
        self.vals.get(i).copied().flatten()
    }

    /// No parameters beyond defaults and "no modifier": what an unmodified key
    /// sends (`ESC [ A`, `ESC [ 1 ; 1 A`).
    fn plain(&self) -> bool {
        !self.odd
            && self.count <= 2
            && (0..self.count).all(|i| matches!(self.get(i), None | Some(1)))
    }

    /// Exactly one number (and at most a "no modifier" second one): `ESC [ n ~`.
    fn single(&self) -> Option<u16> {
        if self.odd || self.count == 0 || self.count > 2 {
            return None;
        }
        if self.count == 2 && !matches!(self.get(1), None | Some(1)) {
            return None;
        }
        self.get(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// Inside a multi-byte UTF-8 character: the bytes so far and how many in all.
    Utf8 {
        buf: [u8; 4],
        have: u8,
        need: u8,
    },
    /// After ESC.
    Esc,
    /// `ESC` + intermediate bytes (0x20..0x2f), waiting for the final byte.
    EscInter,
    /// `ESC O` (SS3), parameters, then the final byte.
    Ss3(Params),
    /// `ESC [` (CSI), parameters, then the final byte.
    Csi(Params),
    /// The body of an OSC, DCS, SOS, PM or APC string; `true` right after an ESC
    /// in it (the first byte of ST).
    Str(bool),
}

/// The input filter; see the module docs.
#[derive(Debug, Clone)]
pub struct InputFilter {
    state: State,
}

impl Default for InputFilter {
    fn default() -> Self {
        Self::new()
    }
}

/// The second byte of a UTF-8 sequence that starts with `lead` must lie in this
/// range (which excludes overlong forms, surrogates and code points beyond
/// U+10FFFF); `None` when `lead` cannot start a sequence.
fn utf8_lead(lead: u8) -> Option<(u8, core::ops::RangeInclusive<u8>)> {
    Some(match lead {
        0xc2..=0xdf => (2, 0x80..=0xbf),
        0xe0 => (3, 0xa0..=0xbf),
        0xe1..=0xec | 0xee..=0xef => (3, 0x80..=0xbf),
        0xed => (3, 0x80..=0x9f),
        0xf0 => (4, 0x90..=0xbf),
        0xf1..=0xf3 => (4, 0x80..=0xbf),
        0xf4 => (4, 0x80..=0x8f),
        _ => return None,
    })
}

/// The canonical bytes `noline` parses for a key.
const UP: &[u8] = b"\x1b[A";
const DOWN: &[u8] = b"\x1b[B";
const RIGHT: &[u8] = b"\x1b[C";
const LEFT: &[u8] = b"\x1b[D";
const HOME: &[u8] = b"\x1b[1~";
const END: &[u8] = b"\x1b[4~";
const DELETE: &[u8] = b"\x1b[3~";

impl InputFilter {
    /// A filter in its ground state.
    pub const fn new() -> Self {
        InputFilter {
            state: State::Ground,
        }
    }

    /// Whether the filter is between sequences and characters.
    pub fn is_idle(&self) -> bool {
        self.state == State::Ground
    }

    /// Forgets a half-read sequence (after the line was abandoned).
    pub fn reset(&mut self) {
        self.state = State::Ground;
    }

    /// End of input: a half-read sequence or character is dropped; returns
    /// whether there was one (ring the bell).
    pub fn flush(&mut self) -> bool {
        let partial = self.state != State::Ground;
        self.state = State::Ground;
        partial
    }

    /// Takes one input byte.
    pub fn feed(&mut self, b: u8) -> Fed {
        let mut fed = Fed::default();
        self.step(b, &mut fed);
        fed
    }

    /// Rejects the sequence in progress and reads `b` afresh in the ground state.
    fn abort_and_redo(&mut self, b: u8, fed: &mut Fed) {
        fed.bell = true;
        self.state = State::Ground;
        self.step(b, fed);
    }

    /// A control byte inside a sequence: CAN/SUB cancel it (and are consumed),
    /// ESC starts a new one, anything else (CR, LF, Ctrl-C, ...) ends it and acts
    /// as itself.
    fn control_in_sequence(&mut self, b: u8, fed: &mut Fed) {
        fed.bell = true;
        self.state = State::Ground;
        match b {
            CAN | SUB => {}
            ESC => self.state = State::Esc,
            _ => self.step(b, fed),
        }
    }

    fn step(&mut self, b: u8, fed: &mut Fed) {
        match self.state {
            State::Ground => match b {
                // NUL carries nothing (dropped before this too).
                0 => {}
                ESC => self.state = State::Esc,
                // Printable ASCII, DEL and the other C0 control keys.
                0x01..=0x7f => fed.emit(&[b]),
                0x80..=0xff => match utf8_lead(b) {
                    Some((need, _)) => {
                        self.state = State::Utf8 {
                            buf: [b, 0, 0, 0],
                            have: 1,
                            need,
                        }
                    }
                    None => fed.bell = true,
                },
            },
            State::Utf8 {
                mut buf,
                have,
                need,
            } => {
                let ok = if have == 1 {
                    utf8_lead(buf[0]).is_some_and(|(_, second)| second.contains(&b))
                } else {
                    (0x80..=0xbf).contains(&b)
                };
                if !ok {
                    return self.abort_and_redo(b, fed);
                }
                buf[usize::from(have)] = b;
                let have = have + 1;
                if have < need {
                    self.state = State::Utf8 { buf, have, need };
                    return;
                }
                self.state = State::Ground;
                // C1 controls (U+0080..U+009F) are valid UTF-8 but no text:
                // some terminals would act on their echo.
                if buf[0] == 0xc2 && buf[1] < 0xa0 {
                    fed.bell = true;
                } else {
                    fed.emit(&buf[..usize::from(need)]);
                }
            }
            State::Esc => match b {
                b'[' => self.state = State::Csi(Params::new()),
                b'O' => self.state = State::Ss3(Params::new()),
                b']' | b'P' | b'X' | b'^' | b'_' => self.state = State::Str(false),
                0x20..=0x2f => self.state = State::EscInter,
                // ESC + final byte (Alt-key, charset and mode changes), and
                // Alt-Backspace (ESC DEL): known to nobody here.
                0x30..=0x7f => {
                    fed.bell = true;
                    self.state = State::Ground;
                }
                ESC => fed.bell = true,
                0x00..=0x1f => self.control_in_sequence(b, fed),
                0x80..=0xff => self.abort_and_redo(b, fed),
            },
            State::EscInter => match b {
                0x20..=0x2f | 0x7f => {}
                0x30..=0x7e => {
                    fed.bell = true;
                    self.state = State::Ground;
                }
                0x00..=0x1f => self.control_in_sequence(b, fed),
                0x80..=0xff => self.abort_and_redo(b, fed),
            },
            State::Ss3(mut p) | State::Csi(mut p) => {
                let csi = matches!(self.state, State::Csi(_));
                match b {
                    b'0'..=b'9' => p.digit(b),
                    b';' => p.separator(),
                    // `:` sub-parameters, private markers `< = > ?`, and
                    // intermediates: valid syntax, but nothing we accept.
                    b':' | b'<'..=b'?' | 0x20..=0x2f | 0x7f => p.odd = true,
                    0x40..=0x7e => {
                        self.state = State::Ground;
                        if csi {
                            self.csi_final(b, &p, fed);
                        } else {
                            self.ss3_final(b, &p, fed);
                        }
                        return;
                    }
                    0x00..=0x1f => return self.control_in_sequence(b, fed),
                    0x80..=0xff => return self.abort_and_redo(b, fed),
                }
                self.state = if csi { State::Csi(p) } else { State::Ss3(p) };
            }
            State::Str(after_esc) => match b {
                b'\\' if after_esc => {
                    // ST: the string is complete, and consumed.
                    fed.bell = true;
                    self.state = State::Ground;
                }
                _ if after_esc => {
                    // ESC + anything else ends the string and starts a sequence.
                    fed.bell = true;
                    self.state = State::Esc;
                    self.step(b, fed);
                }
                BEL => {
                    fed.bell = true;
                    self.state = State::Ground;
                }
                ESC => self.state = State::Str(true),
                CAN | SUB | b'\r' | b'\n' | CTRL_C => self.control_in_sequence(b, fed),
                // The body (any other byte, UTF-8 or not) is consumed.
                _ => {}
            },
        }
    }

    fn csi_final(&mut self, f: u8, p: &Params, fed: &mut Fed) {
        let key: Option<&[u8]> = match f {
            b'A' if p.plain() => Some(UP),
            b'B' if p.plain() => Some(DOWN),
            b'C' if p.plain() => Some(RIGHT),
            b'D' if p.plain() => Some(LEFT),
            b'H' if p.plain() => Some(HOME),
            b'F' if p.plain() => Some(END),
            b'~' => match p.single() {
                Some(1 | 7) => Some(HOME),
                Some(4 | 8) => Some(END),
                Some(3) => Some(DELETE),
                _ => None,
            },
            b'R' => {
                if !p.odd && p.count == 2 {
                    if let (Some(row), Some(col)) = (p.get(0), p.get(1)) {
                        if (1..=REPORT_MAX).contains(&row) && (1..=REPORT_MAX).contains(&col) {
                            fed.report = Some((row, col));
                            return;
                        }
                    }
                }
                None
            }
            _ => None,
        };
        match key {
            Some(k) => fed.emit(k),
            None => fed.bell = true,
        }
    }

    fn ss3_final(&mut self, f: u8, p: &Params, fed: &mut Fed) {
        let key: Option<&[u8]> = match f {
            b'A' if p.plain() => Some(UP),
            b'B' if p.plain() => Some(DOWN),
            b'C' if p.plain() => Some(RIGHT),
            b'D' if p.plain() => Some(LEFT),
            b'H' if p.plain() => Some(HOME),
            b'F' if p.plain() => Some(END),
            _ => None,
        };
        match key {
            Some(k) => fed.emit(k),
            None => fed.bell = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Feeds `input`; returns (emitted bytes, bells, reports).
    fn run(input: &[u8]) -> (Vec<u8>, usize, Vec<(u16, u16)>) {
        let mut f = InputFilter::new();
        let (mut out, mut bells, mut reports) = (Vec::new(), 0, Vec::new());
        for &b in input {
            let fed = f.feed(b);
            out.extend_from_slice(&fed.emit);
            bells += usize::from(fed.bell);
            reports.extend(fed.report);
        }
        if f.flush() {
            bells += 1;
        }
        (out, bells, reports)
    }

    #[test]
    fn text_and_controls_pass() {
        assert_eq!(run(b"echo hi\r"), (b"echo hi\r".to_vec(), 0, vec![]));
        assert_eq!(
            run(b"\x01\x03\x7f\t\n"),
            (b"\x01\x03\x7f\t\n".to_vec(), 0, vec![])
        );
        let s = "é€😀 ok";
        assert_eq!(run(s.as_bytes()), (s.as_bytes().to_vec(), 0, vec![]));
    }

    #[test]
    fn invalid_utf8_is_dropped_with_a_bell() {
        // Surrogate U+D800, overlong NUL, beyond U+10FFFF (0xf7 lead).
        let (out, bells, _) = run(b"\xed\xa0\x80");
        assert!(out.is_empty() && bells > 0);
        let (out, bells, _) = run(b"\xc0\x80\xed\xa0\x80\xf7\xbf\xbf\xbf");
        assert!(out.is_empty(), "{out:?}");
        assert!(bells > 0);
        // U+110000 (f4 90 80 80), overlong 3- and 4-byte forms.
        for bad in [
            &b"\xf4\x90\x80\x80"[..],
            b"\xe0\x80\xaf",
            b"\xf0\x80\x80\xaf",
            b"\xff",
            b"\x80",
            b"\xc1\xbf",
        ] {
            let (out, bells, _) = run(bad);
            assert!(out.is_empty(), "{bad:x?} -> {out:x?}");
            assert!(bells > 0, "{bad:x?}");
        }
        // A stray continuation byte, then valid text: only the text remains.
        assert_eq!(run(b"a\x80b").0, b"ab");
        // A truncated sequence broken by ASCII: the ASCII byte survives.
        assert_eq!(run(b"\xe2\x82x").0, b"x");
        // Truncated at the end of input.
        assert_eq!(run(b"y\xf0\x9f\x98"), (b"y".to_vec(), 1, vec![]));
        // C1 control U+0085 (valid UTF-8, not text).
        assert_eq!(run(b"\xc2\x85").0, b"");
        // The largest code point and the last before the surrogates pass.
        assert_eq!(run(b"\xf4\x8f\xbf\xbf").0, b"\xf4\x8f\xbf\xbf");
        assert_eq!(run(b"\xed\x9f\xbf").0, b"\xed\x9f\xbf");
    }

    #[test]
    fn keys_are_rewritten_to_what_noline_parses() {
        assert_eq!(
            run(b"\x1b[A\x1b[B\x1b[C\x1b[D").0,
            b"\x1b[A\x1b[B\x1b[C\x1b[D"
        );
        assert_eq!(run(b"\x1bOA\x1bOD").0, b"\x1b[A\x1b[D");
        assert_eq!(run(b"\x1b[H\x1bOH\x1b[1~\x1b[7~").0, b"\x1b[1~".repeat(4));
        assert_eq!(run(b"\x1b[F\x1bOF\x1b[4~\x1b[8~").0, b"\x1b[4~".repeat(4));
        assert_eq!(run(b"\x1b[3~").0, b"\x1b[3~");
        assert_eq!(run(b"\x1b[1;1C").0, b"\x1b[C");
    }

    #[test]
    fn unknown_sequences_are_consumed_whole_with_a_bell() {
        for seq in [
            &b"\x1b[99;99;99X"[..],
            b"\x1b[Z",
            b"\x1b[1;5C",
            b"\x1b[2~",
            b"\x1b[15~",
            b"\x1b[200~",
            b"\x1b[?1;2c",
            b"\x1b[>0;95;0c",
            b"\x1bOP",
            b"\x1bb",
            b"\x1b(B",
            b"\x1b\x7f",
            b"\x1b[99999999999999999999A",
            b"\x1b[1;2;3;4;5;6A",
            b"\x1b[1:2A",
        ] {
            assert_eq!(run(seq), (vec![], 1, vec![]), "{seq:x?}");
            // And nothing of it leaks into the text around it.
            let mut s = b"a".to_vec();
            s.extend_from_slice(seq);
            s.push(b'b');
            assert_eq!(run(&s).0, b"ab", "{seq:x?}");
        }
    }

    #[test]
    fn strings_are_consumed_with_their_bodies() {
        assert_eq!(run(b"a\x1b]0;title\x07b").0, b"ab");
        assert_eq!(run(b"a\x1b]11;rgb:0000/0000/0000\x1b\\b").0, b"ab");
        assert_eq!(run(b"a\x1bP1$r0m\x1b\\b").0, b"ab");
        assert_eq!(run(b"a\x1b_apc body\xff\x80\x07b").0, b"ab");
        // CR ends an unterminated string and still ends the line.
        assert_eq!(
            run(b"a\x1b]never ends\recho"),
            (b"a\recho".to_vec(), 1, vec![])
        );
        // ESC + something else inside a string ends it and starts a sequence.
        assert_eq!(run(b"\x1b]x\x1b[Ay").0, b"\x1b[Ay");
        // CAN cancels it.
        assert_eq!(run(b"\x1b]x\x18y").0, b"y");
    }

    #[test]
    fn cursor_reports_are_checked_and_never_passed() {
        assert_eq!(run(b"\x1b[24;80R"), (vec![], 0, vec![(24, 80)]));
        assert_eq!(run(b"\x1b[999;1R").2, vec![(999, 1)]);
        for bad in [
            &b"\x1b[R"[..],
            b"\x1b[5R",
            b"\x1b[0;0R",
            b"\x1b[0;5R",
            b"\x1b[5;0R",
            b"\x1b[1000;5R",
            b"\x1b[5;70000R",
            b"\x1b[;5R",
            b"\x1b[5;R",
            b"\x1b[1;2;3R",
            b"\x1b[?5;5R",
            b"\x1b[18446744073709551616;1R",
        ] {
            assert_eq!(run(bad), (vec![], 1, vec![]), "{bad:x?}");
        }
    }

    #[test]
    fn control_bytes_end_a_sequence_and_act() {
        assert_eq!(run(b"\x1b[12\r"), (b"\r".to_vec(), 1, vec![]));
        assert_eq!(run(b"\x1b\x03"), (b"\x03".to_vec(), 1, vec![]));
        assert_eq!(run(b"\x1b[1\x1b[A"), (b"\x1b[A".to_vec(), 1, vec![]));
        assert_eq!(run(b"\x1b[1\x18x"), (b"x".to_vec(), 1, vec![]));
        // A high byte inside a sequence ends it and is read as UTF-8.
        assert_eq!(run("\x1b[é".as_bytes()).0, "é".as_bytes());
    }

    /// What `noline` 0.5.1's parser accepts without panicking or misreading:
    /// the checks the editor relies on, independent of the filter's code.
    fn noline_safe(out: &[u8]) -> bool {
        let mut i = 0;
        while i < out.len() {
            let b = out[i];
            if b == ESC {
                let rest = &out[i..];
                let known: [&[u8]; 7] = [UP, DOWN, RIGHT, LEFT, HOME, END, DELETE];
                match known.iter().find(|k| rest.starts_with(k)) {
                    Some(k) => i += k.len(),
                    None => return false,
                }
            } else if b < 0x80 {
                i += 1;
            } else {
                let n = match b {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf4 => 4,
                    _ => return false,
                };
                let Some(ch) = out.get(i..i + n) else {
                    return false;
                };
                match core::str::from_utf8(ch) {
                    Ok(s) if !s.chars().any(|c| c.is_control()) => i += n,
                    _ => return false,
                }
            }
        }
        true
    }

    fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(
                prop_oneof![
                    Just(0x1bu8),
                    Just(b'['),
                    Just(b'O'),
                    Just(b']'),
                    Just(b'P'),
                    Just(b';'),
                    Just(b'R'),
                    Just(b'~'),
                    Just(0x07),
                    Just(b'\\'),
                    Just(b'\r'),
                    b'0'..=b'9',
                    0x40u8..=0x7e,
                    0x80u8..=0xff,
                ],
                0..12
            ),
            any::<char>().prop_map(|c| c.to_string().into_bytes()),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whatever comes in, the editor only sees keys and valid text, and
        /// reports only carry sane numbers.
        #[test]
        fn output_is_always_what_noline_handles(input in hostile_bytes()) {
            let (out, _, reports) = run(&input);
            prop_assert!(noline_safe(&out), "{input:x?} -> {out:x?}");
            for (r, c) in reports {
                prop_assert!((1..=REPORT_MAX).contains(&r) && (1..=REPORT_MAX).contains(&c));
            }
        }

        /// Valid text without escapes or C1 controls passes unchanged.
        #[test]
        fn valid_text_passes_unchanged(s in "[^\u{1b}\u{0}\u{80}-\u{9f}]{0,64}") {
            prop_assert_eq!(run(s.as_bytes()), (s.as_bytes().to_vec(), 0, vec![]));
        }
    }
}
