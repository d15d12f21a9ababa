//! A property test of the whole input path: random byte streams (commands,
//! random escape sequences, UTF-8 fragments, control bytes, over-long lines,
//! binary payloads, Ctrl-C during long commands) into the shell over the test
//! console, checking that it never panics, that every line it runs is valid
//! UTF-8 of at most `LINE_MAX` bytes, that every `error:` leaves the session's
//! state (rings, their contents and counters, the budget) unchanged, and that
//! the prompt comes back every time.

use super::host::HostPlatform;
use super::testio::MemConsole;
use super::*;
use crate::vmcirc::ByteRing;
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;

/// Everything a command may change.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    rings: Vec<(u32, usize, usize, usize, u64, u64, u32)>,
    current: Option<u32>,
    free: u64,
}

fn snapshot(p: &mut HostPlatform) -> Snapshot {
    let free = p.free_units();
    let rings = p.rings();
    Snapshot {
        rings: rings
            .iter()
            .map(|s| {
                (
                    s.id,
                    s.ring.capacity(),
                    s.ring.len(),
                    // An empty ring has no position to keep: its next write starts
                    // over at the start of the store (the FIFO rewind, see
                    // `vmcirc::ByteRing`), so preparing a write that then fails
                    // may move it there. Its data, counters and totals may not change.
                    if s.ring.is_empty() {
                        0
                    } else {
                        s.ring.read_offset()
                    },
                    s.pushed,
                    s.popped,
                    crate::crc32::crc32(s.ring.peek()),
                )
            })
            .collect(),
        current: rings.current_id(),
        free,
    }
}

/// A command line the shell knows, with small arguments (and bad ones).
fn command() -> impl Strategy<Value = Vec<u8>> {
    let n = || 0u64..70_000;
    prop_oneof![
        Just("ring new 1".to_string()),
        Just("ring new 4".to_string()),
        Just("ring new 0".to_string()),
        Just("ring new 99".to_string()),
        Just("ring free".to_string()),
        (0u32..4).prop_map(|i| format!("ring use {i}")),
        (0u32..4).prop_map(|i| format!("ring free {i}")),
        Just("ring list".to_string()),
        "[ -~]{0,40}".prop_map(|t| format!("push {t}")),
        "([0-9a-f]{2} ?){0,20}".prop_map(|h| format!("pushx {h}")),
        Just("pushx 0g".to_string()),
        n().prop_map(|k| format!("fill {k}")),
        n().prop_map(|k| format!("fill {k} seq")),
        (n(), any::<u8>()).prop_map(|(k, b)| format!("fill {k} byte {b}")),
        n().prop_map(|k| format!("pop {k}")),
        Just("pop x".to_string()),
        n().prop_map(|k| format!("peek {k}")),
        (0u64..300, 0u64..300).prop_map(|(o, l)| format!("dump {o} {l}")),
        Just("stat".to_string()),
        Just("map".to_string()),
        Just("help".to_string()),
        Just("info".to_string()),
        (0u64..50_000, 0u64..5000).prop_map(|(b, c)| format!("stress {b} {c} 3")),
        (0u64..5000).prop_map(|b| format!("bench {b}")),
        Just("x 0x10 16".to_string()),
        Just("fault dabt".to_string()),
        Just("reboot".to_string()),
        Just("hs 16 4 3".to_string()),
        Just("frobnicate".to_string()),
        "[ -~]{0,30}".prop_map(|t| format!("echo {t}")),
    ]
    .prop_map(|s| s.into_bytes())
}

/// A data command followed by its payload, or (then the sender pauses past the
/// shell's timeout) by part of it.
fn transfer() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (
        prop_oneof![Just("rx"), Just("push rx"), Just("hs 8 4")],
        proptest::collection::vec(any::<u8>(), 0..48),
        0usize..4,
    )
        .prop_map(|(cmd, data, short)| {
            let len = data.len() + usize::from(short == 0) * 3;
            let mut v = format!("{cmd} {len}\r").into_bytes();
            v.extend_from_slice(&data);
            (v, short == 0)
        })
}

/// Escape sequences: well-formed, broken, strings with bodies, reports.
fn escape() -> impl Strategy<Value = Vec<u8>> {
    let params = "[0-9;:?<>= ]{0,12}";
    prop_oneof![
        (params, 0x40u8..0x7f).prop_map(|(p, f)| {
            let mut v = b"\x1b[".to_vec();
            v.extend_from_slice(p.as_bytes());
            v.push(f);
            v
        }),
        (0u32..100_000, 0u32..100_000).prop_map(|(r, c)| format!("\x1b[{r};{c}R").into_bytes()),
        Just(b"\x1b[R".to_vec()),
        Just(b"\x1b[5R".to_vec()),
        Just(b"\x1b[0;0R".to_vec()),
        (0x20u8..0x7f).prop_map(|f| vec![0x1b, b'O', f]),
        (0x20u8..0x80).prop_map(|f| vec![0x1b, f]),
        (
            prop_oneof![Just(b']'), Just(b'P'), Just(b'_'), Just(b'^'), Just(b'X')],
            proptest::collection::vec(any::<u8>(), 0..20),
            prop_oneof![Just(&b"\x07"[..]), Just(&b"\x1b\\"[..]), Just(&b""[..])],
        )
            .prop_map(|(k, body, end)| {
                let mut v = vec![0x1b, k];
                v.extend(body);
                v.extend_from_slice(end);
                v
            }),
        proptest::collection::vec(
            prop_oneof![
                Just(0x1bu8),
                Just(b'['),
                Just(b';'),
                b'0'..=b'9',
                0x40u8..0x7f
            ],
            1..10
        ),
    ]
}

/// UTF-8 pieces: whole characters, cut ones, and forms that are not UTF-8.
fn utf8() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<char>().prop_map(|c| c.to_string().into_bytes()),
        (any::<char>(), 1usize..4).prop_map(|(c, cut)| {
            let b = c.to_string().into_bytes();
            b[..cut.min(b.len())].to_vec()
        }),
        Just(b"\xed\xa0\x80".to_vec()),
        Just(b"\xc0\x80".to_vec()),
        Just(b"\xe0\x80\xaf".to_vec()),
        Just(b"\xf4\x90\x80\x80".to_vec()),
        Just(b"\xf7\xbf\xbf\xbf".to_vec()),
        Just(b"\xc2\x85".to_vec()),
        (0x80u8..=0xff).prop_map(|b| vec![b]),
    ]
}

/// One piece of the stream, and whether the sender pauses after it.
fn piece() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        2 => transfer(),
        18 => bytes(),
    ]
}

/// Bytes sent without a pause.
fn bytes() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        4 => command().prop_map(|mut c| {
            c.push(b'\r');
            c
        }),
        2 => escape(),
        2 => utf8(),
        2 => proptest::collection::vec(0u8..0x20, 1..3),
        1 => Just(b"\x7f".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        1 => (250usize..300, prop_oneof![Just(""), Just("é"), Just("😀")])
            .prop_map(|(n, tail)| {
                let mut v = b"push ".to_vec();
                v.extend(std::iter::repeat_n(b'a', n));
                v.extend_from_slice(tail.as_bytes());
                v.push(b'\r');
                v
            }),
        // Long commands, each followed by the Ctrl-C that stops it.
        1 => prop_oneof![
            Just("stress 1099511627776"),
            Just("bench 1073741824"),
            Just("fill 1048576"),
            Just("dump 0 1048576"),
        ]
        .prop_map(|c| format!("{c}\r\x03").into_bytes()),
        2 => proptest::collection::vec(any::<u8>(), 1..16),
    ]
    .prop_map(|v| (v, false))
}

/// The input, and the offsets where the sender pauses.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    proptest::collection::vec(piece(), 1..40).prop_map(|pieces| {
        // Most sessions start with a ring, so ring commands have one to act on.
        let mut input = b"ring new 4\r".to_vec();
        let mut pauses = Vec::new();
        for (bytes, pause) in pieces {
            input.extend_from_slice(&bytes);
            if pause {
                pauses.push(input.len());
            }
        }
        (input, pauses)
    })
}

/// Runs `input` through the shell, checking the properties; returns a
/// description of the first violation.
fn check(input: &[u8], pauses: &[usize]) -> Result<(), String> {
    // Rings of 64 KiB units, at most 1 MiB in all.
    let mut p = HostPlatform::new(64 * 1024, 16);
    let mut con = MemConsole::new(input);
    for &at in pauses {
        con.pause_at(at);
    }
    let mut line_buf = [0u8; LINE_BUFFER_BYTES];
    let mut hist = [0u8; HISTORY_BYTES];
    let mut st = term::LineState::new();
    let mut io = LineIo::new(&mut con, &mut st);
    let mut shell = Shell::new(&mut line_buf, &mut hist, &mut io);
    for _ in 0..10_000 {
        let before = io.console().output().len();
        let input = shell.read_line(&mut io);
        let mut line: heapless::String<LINE_BUFFER_BYTES> = heapless::String::new();
        let end = match input {
            Input::Line(l) => {
                if core::str::from_utf8(l.as_bytes()).is_err() || l.len() > LINE_MAX {
                    return Err(format!("bad line {:x?}", l.as_bytes()));
                }
                let _ = line.push_str(l);
                false
            }
            Input::Dropped => false,
            Input::Eof => true,
            Input::OutputFailed => return Err("output failed".into()),
        };
        let prompted = &io.console().output()[before..];
        if !prompted
            .windows(PROMPT.len())
            .any(|w| w == PROMPT.as_bytes())
        {
            return Err(format!("no prompt before {line:?}"));
        }
        if end {
            return Ok(());
        }
        if line.is_empty() {
            continue;
        }
        let state = snapshot(&mut p);
        let before = io.console().output().len();
        execute(&line, &mut io, &mut p);
        let out = String::from_utf8_lossy(&io.console().output()[before..]).into_owned();
        let is_echo = line.split_ascii_whitespace().next() == Some("echo");
        if !is_echo && out.lines().any(|l| l.starts_with("error: ")) {
            let after = snapshot(&mut p);
            if after != state {
                return Err(format!(
                    "{line:?} printed {out:?} but changed {state:?} into {after:?}"
                ));
            }
        }
    }
    Err("the shell did not reach the end of its input".into())
}

proptest! {
    // Bounded: 40 pieces of at most a few hundred bytes a case; long commands
    // only come with the Ctrl-C that stops them.
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn hostile_input_never_breaks_the_shell((input, pauses) in stream()) {
        if let Err(e) = check(&input, &pauses) {
            prop_assert!(false, "{e}\ninput: {input:x?}, pauses at {pauses:?}");
        }
    }
}

#[test]
fn the_checks_see_state_and_timeouts() {
    // The snapshot sees a change, and a paused transfer times out (an error
    // whose state is compared) without breaking the session.
    let mut p = HostPlatform::new(64 * 1024, 16);
    let a = snapshot(&mut p);
    let _ = p.add_ring(65536);
    assert_ne!(a, snapshot(&mut p));
    let input = b"ring new 1\rpush abc\rpush rx 10\r12345echo after\r";
    assert_eq!(check(input, &[24]), Ok(()));
}
