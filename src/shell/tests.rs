//! Host tests of the shell: the same code the kernel runs, on in-memory streams.

use super::host::HostPlatform;
use super::testio::MemConsole;
use super::*;
use std::string::String;
use std::vec::Vec;

/// Runs the shell over `input` until it ends; returns the cleaned-up transcript.
fn run(input: &[u8]) -> String {
    run_with(input, &mut platform())
}

/// Rings of 64 KiB units, at most 1 MiB in all.
fn platform() -> HostPlatform {
    HostPlatform::new(64 * 1024, 16)
}

fn run_with(input: &[u8], platform: &mut HostPlatform) -> String {
    let mut con = MemConsole::new(input);
    let mut line = [0u8; LINE_BUFFER_BYTES];
    let mut hist = [0u8; HISTORY_BYTES];
    {
        let mut st = term::LineState::new();
        let mut io = LineIo::new(&mut con, &mut st);
        let mut shell = Shell::new(&mut line, &mut hist, &mut io);
        let mut steps = 0;
        while shell.step(&mut io, platform) == Step::Continue {
            steps += 1;
            assert!(steps < 100_000, "shell does not stop at end of input");
        }
    }
    con.text()
}

/// The outputs of each command: the text between prompts.
fn outputs(transcript: &str) -> Vec<String> {
    transcript
        .split(PROMPT)
        .skip(1)
        .map(|s| {
            // Drop the echoed command line.
            s.split_once('\n')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn prompt_appears_without_a_terminal() {
    let t = run(b"");
    assert!(t.contains(PROMPT), "{t:?}");
}

#[test]
fn echo_and_help() {
    let t = run(b"echo hello   world\rhelp\r");
    let o = outputs(&t);
    assert_eq!(o[0], "hello world\n");
    for c in COMMANDS {
        assert!(o[1].contains(c.usage), "help lacks {}", c.usage);
    }
    assert!(!o[1].contains("error"));
}

#[test]
fn crlf_lf_and_cr_each_end_one_line() {
    let t = run(b"echo a\r\necho b\necho c\r");
    let o = outputs(&t);
    assert_eq!(&o[..3], &["a\n", "b\n", "c\n"]);
    // No empty extra command ran between them.
    assert_eq!(t.matches(PROMPT).count(), 4);
}

#[test]
fn unknown_command_is_one_error_line() {
    let t = run(b"frobnicate 1 2\recho still here\r");
    let o = outputs(&t);
    assert_eq!(o[0], "error: unknown command 'frobnicate' (try 'help')\n");
    assert_eq!(o[1], "still here\n");
}

#[test]
fn numbers_are_checked() {
    let t = run(b"x abc\rx 0x10000000 0x10001\rx 0x10000000 1 2\rx\r");
    let o = outputs(&t);
    assert_eq!(
        o[0],
        "error: invalid number 'abc' (use decimal or 0x-hex)\n"
    );
    assert_eq!(o[1], "error: LEN 65537 out of range (at most 65536)\n");
    assert_eq!(o[2], "error: unexpected argument '2'\n");
    assert_eq!(o[3], "error: missing ADDR\n");
}

#[test]
fn hexdump_of_memory_and_unmapped_error() {
    let mut p = platform();
    let id = p.add_ring(65536).unwrap();
    let (base, cap) = p.window(id).unwrap();
    // 20 bytes from 16 before the end of the first copy: the second copy shows
    // the store's first bytes.
    let at = base + cap - 16;
    let input = format!("fill 65536 seq\rx {at:#x} 20\rx 0x10 16\r");
    let t = run_with(input.as_bytes(), &mut p);
    let o = outputs(&t);
    let seq: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
    let mut expect = String::new();
    hexdump::write_row(&mut expect, at as u64, &seq[cap - 16..], "").unwrap();
    hexdump::write_row(&mut expect, (at + 16) as u64, &seq[..4], "").unwrap();
    assert_eq!(o[1], expect);
    assert_eq!(
        o[2],
        "error: x: on the host only the rings' windows are readable\n"
    );
}

#[test]
fn overlong_line_is_rejected_whole() {
    let mut input = b"echo ".to_vec();
    input.extend(std::iter::repeat_n(b'y', 400));
    input.extend_from_slice(b"\recho ok\r");
    let t = run(&input);
    let o = outputs(&t);
    // The echo of the long line wraps at 80 columns; the output is the error.
    let err = format!("error: line too long (at most {LINE_MAX} bytes); discarded\n");
    assert!(o[0].ends_with(&err), "{:?}", o[0]);
    assert!(o[0]
        .trim_end_matches(&err)
        .chars()
        .all(|c| c == 'y' || c == '\n'));
    assert_eq!(o[1], "ok\n");
    // A line of exactly LINE_MAX bytes is fine.
    let mut input = b"echo ".to_vec();
    input.extend(std::iter::repeat_n(b'z', LINE_MAX - 5));
    input.push(b'\r');
    let o = outputs(&run(&input));
    assert!(
        o[0].replace('\n', "").ends_with(&"z".repeat(LINE_MAX - 5)),
        "{:?}",
        o[0]
    );
    assert!(!o[0].contains("error"));
}

#[test]
fn garbage_bytes_do_not_break_the_shell() {
    let mut input = Vec::new();
    input.extend_from_slice(b"\0\0echo a\0b\r");
    input.extend_from_slice(b"\xff\xfe\x80 \x1b[99;99;99X\x1b[Z\x1bO\x1b\x1b[\r");
    input.extend_from_slice("écho é\r".as_bytes());
    input.extend_from_slice(b"echo alive\r");
    let t = run(&input);
    assert!(t.contains("ab\n"), "{t:?}");
    assert!(t.ends_with(&format!("alive\n{PROMPT}")), "{t:?}");
    assert!(t.contains("error: unknown command '\\u{e9}cho'"), "{t:?}");
}

#[test]
fn ctrl_c_abandons_the_line() {
    let t = run(b"echo nope\x03echo yes\r");
    let o = outputs(&t);
    // The abandoned line produced no output at all; the next one ran.
    assert_eq!(&o[..2], &["", "yes\n"], "{t:?}");
}

#[test]
fn history_recalls_previous_lines() {
    // Up-arrow twice recalls "echo one".
    let t = run(b"echo one\recho two\r\x1b[A\x1b[A\r");
    let o = outputs(&t);
    assert_eq!(&o[..3], &["one\n", "two\n", "one\n"]);
}

#[test]
fn rx_receives_binary_bytes_and_reports_crc() {
    let mut data: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    // Binary-safe: the payload starts right after the CR that ended the
    // command, so a first byte LF (then CR) is data.
    data[0] = b'\n';
    data[1] = b'\r';
    let crc = crate::crc32::crc32(&data);
    for end in [&b"\r"[..], b"\n"] {
        let mut input = b"rx 16384".to_vec();
        input.extend_from_slice(end);
        input.extend_from_slice(&data);
        input.extend_from_slice(b"echo after\r");
        let o = outputs(&run(&input));
        assert_eq!(
            o[0],
            format!("rx: waiting for 16384 bytes\nrx 16384 crc32={crc:08x}\n")
        );
        assert_eq!(o[1], "after\n");
    }
    // A CRLF sender: the LF is the first payload byte (README, rules for
    // scripts), so the last data byte is left over for the line editor.
    let mut input = b"rx 4\r\n1234\r".to_vec();
    input.extend_from_slice(b"echo after\r");
    let o = outputs(&run(&input));
    let crc = crate::crc32::crc32(b"\n123");
    assert_eq!(
        o[0],
        format!("rx: waiting for 4 bytes\nrx 4 crc32={crc:08x}\n")
    );
    assert_eq!(o[1], "error: unknown command '4' (try 'help')\n");
    assert_eq!(o[2], "after\n");
}

#[test]
fn sendgen_64_22_starts_with_lf_and_arrives_whole() {
    // The script tool's `sendgen 64 22`: splitmix64 seeded with 22, 8 bytes a
    // step, little endian. Its first byte is 0x0a.
    let mut data = [0u8; 64];
    crate::prng::SplitMix64::new(22).fill(&mut data);
    assert_eq!(data[0], b'\n');
    let crc = crate::crc32::crc32(&data);
    let mut input = b"rx 64\r".to_vec();
    input.extend_from_slice(&data);
    input.extend_from_slice(b"ring new 1\rpush rx 64\r");
    input.extend_from_slice(&data);
    input.extend_from_slice(b"peek 2\rhs 8 4 1\r\n");
    let o = outputs(&run(&input));
    assert_eq!(
        o[0],
        format!("rx: waiting for 64 bytes\nrx 64 crc32={crc:08x}\n")
    );
    assert_eq!(
        o[2],
        format!("rx: waiting for 64 bytes\npushed 64 bytes\nrx 64 crc32={crc:08x}\n")
    );
    assert_eq!(o[3], format!("\"\\n\\x{:02x}\" (62 more)\n", data[1]));
    // hs takes the LF as its one byte of compressed data (and does not wait
    // for another).
    assert!(o[4].starts_with("hs: waiting for 1 bytes\n"), "{}", o[4]);
    assert!(!o[4].contains("timed out"), "{}", o[4]);
}

#[test]
fn rx_times_out_when_the_sender_stops_early() {
    let mut con = MemConsole::new(b"rx 100\r0123456789");
    con.set_closed_when_empty(false);
    let mut line = [0u8; LINE_BUFFER_BYTES];
    let mut hist = [0u8; HISTORY_BYTES];
    let mut p = platform();
    {
        let mut st = term::LineState::new();
        let mut io = LineIo::new(&mut con, &mut st);
        let mut shell = Shell::new(&mut line, &mut hist, &mut io);
        assert_eq!(shell.step(&mut io, &mut p), Step::Continue);
    }
    let o = outputs(&con.text());
    assert_eq!(
        o[0],
        "rx: waiting for 100 bytes\nerror: rx: timed out after 10 of 100 bytes (no data for 3 s); discarded 0 stray bytes\n"
    );
}

#[test]
fn paste_of_200_lines_runs_in_order() {
    let mut input = Vec::new();
    for i in 0..200 {
        input.extend_from_slice(format!("echo line {i}\r\n").as_bytes());
    }
    let t = run(&input);
    let o = outputs(&t);
    for (i, out) in o.iter().take(200).enumerate() {
        assert_eq!(*out, format!("line {i}\n"));
    }
    assert_eq!(o.len(), 201);
}

#[test]
fn ring_commands_need_a_ring_and_reject_bad_input_without_change() {
    let t = run(b"stat\rpush x\rring new 0\rring new 17\rring new 1\rpushx 41\rpop abc\rpushx 0g\rpushx 41 4\rfill 3 sideways\rring use 9\rstat\rpeek\r");
    let o = outputs(&t);
    assert_eq!(o[0], "error: no ring: create one with 'ring new MIB'\n");
    assert_eq!(o[1], "error: no ring: create one with 'ring new MIB'\n");
    assert_eq!(o[2], "error: ring new: MIB must be at least 1\n");
    assert_eq!(
        o[3],
        "error: ring new: not enough memory: 17 requested, 16 free\n"
    );
    assert!(
        o[4].starts_with("ring 1: memfd store of 65536 bytes, window 0x"),
        "{}",
        o[4]
    );
    assert_eq!(o[5], "pushed 1 bytes\n");
    assert_eq!(
        o[6],
        "error: invalid number 'abc' (use decimal or 0x-hex)\n"
    );
    assert_eq!(o[7], "error: invalid hex '0g' (pairs of 0-9a-f)\n");
    assert_eq!(o[8], "error: invalid hex '4' (pairs of 0-9a-f)\n");
    assert_eq!(o[9], "error: unexpected argument 'sideways'\n");
    assert_eq!(o[10], "error: ring use: no such ring\n");
    assert!(
        o[11].starts_with("ring 1: capacity 65536, len 1, remaining 65535\n"),
        "{}",
        o[11]
    );
    assert_eq!(o[12], "\"A\"\n");
}

#[test]
fn ring_capacity_wrap_and_dump() {
    let t = run(b"ring new 1\rfill 65536 byte 0x41\rpush Z\rpop 65530\rpush 0123456789ABCDEF\rpeek\rdump\rstat\rpop 1000\rpop 5\r");
    let o = outputs(&t);
    assert_eq!(o[1], "pushed 65536 bytes\n");
    assert_eq!(o[2], "pushed 0 of 1 bytes (ring full, 0 free)\n");
    assert_eq!(o[3], "popped 65530 bytes\n");
    assert_eq!(o[4], "pushed 16 bytes\n");
    assert_eq!(o[5], "\"AAAAAA0123456789ABCDEF\"\n");
    let rows: Vec<&str> = o[6].lines().collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].ends_with("41 41 41 41 41 41 30 31  32 33 34 35 36 37 38 39  |AAAAAA0123456789| <- mirror boundary at ") || rows[0].contains("<- mirror boundary at 0x"), "{}", rows[0]);
    assert!(rows[1].contains(" 41 42 43 44 45 46 "), "{}", rows[1]);
    assert!(o[7].contains("len 22, remaining 65514"), "{}", o[7]);
    assert!(o[7].contains("(offset 65530)"), "{}", o[7]);
    assert!(
        o[7].contains("total pushed 65552, popped 65530"),
        "{}",
        o[7]
    );
    assert_eq!(o[8], "popped 22 bytes\n");
    assert_eq!(o[9], "popped 0 bytes\n");
}

#[test]
fn several_rings_and_push_rx() {
    let mut input = b"ring new 1\rring new 2\rring list\rring free 1\rring use 2\rpush rx 5\rhellopeek\rring free\rring list\r".to_vec();
    input.extend_from_slice(b"echo end\r");
    let t = run(&input);
    let o = outputs(&t);
    assert!(
        o[2].contains("  ring 1: capacity 65536, len 0,")
            && o[2].contains("* ring 2: capacity 131072, len 0,"),
        "{}",
        o[2]
    );
    assert_eq!(o[3], "ring 1 freed\n");
    assert_eq!(o[4], "using ring 2\n");
    let crc = crate::crc32::crc32(b"hello");
    assert_eq!(
        o[5],
        format!("rx: waiting for 5 bytes\npushed 5 bytes\nrx 5 crc32={crc:08x}\n")
    );
    assert_eq!(o[6], "\"hello\"\n");
    assert_eq!(o[7], "ring 2 freed\n");
    assert_eq!(o[8], "no rings\n");
}

#[test]
fn stress_finds_no_mismatch_on_both_rings() {
    let t = run(b"ring new 1\rstress 1000000 5000 3\rstress 100000 1\rstress 1 0\r");
    let o = outputs(&t);
    for i in [1, 2] {
        let lines: Vec<&str> = o[i].lines().collect();
        assert!(
            lines[0].starts_with("mirrored: ") && lines[0].ends_with(", 0 mismatches"),
            "{}",
            o[i]
        );
        assert!(
            lines[1].starts_with("modular: ") && lines[1].ends_with(", 0 mismatches"),
            "{}",
            o[i]
        );
        assert!(lines[2].starts_with("ratio mirrored/modular: "), "{}", o[i]);
    }
    assert!(o[1].contains("mirrored: 1000000 bytes"));
    assert_eq!(o[3], "error: stress: MAXCHUNK must be at least 1\n");
}

#[test]
fn prng_matches_the_reference_splitmix64() {
    // First output of splitmix64 seeded with 1 (the test data README's generator).
    let mut p = crate::prng::SplitMix64::new(1);
    let mut b = [0u8; 8];
    p.fill(&mut b);
    assert_eq!(u64::from_le_bytes(b), 0x910a_2dec_8902_5cc1);
    // Byte-wise and bulk filling give the same stream.
    let mut a = crate::prng::SplitMix64::new(9);
    let mut c = crate::prng::SplitMix64::new(9);
    let mut x = [0u8; 37];
    for chunk in x.chunks_mut(5) {
        a.fill(chunk);
    }
    let mut y = [0u8; 37];
    c.fill(&mut y);
    assert_eq!(x, y);
    assert_eq!(crate::prng::SplitMix64::new(9).verify(&y), 0);
    // Verifying in odd pieces follows the stream too, and a flipped byte counts.
    let mut v = crate::prng::SplitMix64::new(9);
    let mut bad = y;
    bad[20] ^= 1;
    let n: u64 = bad.chunks(3).map(|c| v.verify(c)).sum();
    assert_eq!(n, 1);
    // Chunk sizes stay within 1..=max.
    let mut r = crate::prng::SplitMix64::new(3);
    for max in [1u64, 2, 7, 4096, 1 << 31] {
        for _ in 0..1000 {
            let x = r.below_inclusive(max);
            assert!((1..=max).contains(&x), "{x} of {max}");
        }
    }
}

#[test]
fn hs_demo_matches_the_original() {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/heatshrink/text_200k.txt"
    ))
    .unwrap();
    assert_eq!(
        (data.len() as u64, crate::crc32::crc32(&data)),
        hs::DEMO_ORIGINAL
    );
    let t = run(b"hs demo\r");
    let o = outputs(&t);
    assert!(o[0].starts_with("hs demo: text_200k.txt W=11 L=4: 93668 bytes in, 204800 bytes out, crc32=e22df9de (expected e22df9de): ok\n"), "{}", o[0]);
    assert!(
        o[0].contains("\nmirrored window: ") && o[0].contains("\nmodular window: "),
        "{}",
        o[0]
    );
}

#[test]
fn hs_over_the_uart_and_its_errors() {
    let stream = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/heatshrink/repeat_text.txt.w10l5.hs"
    ))
    .unwrap();
    let orig = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/heatshrink/repeat_text.txt"
    ))
    .unwrap();
    let mut input = format!("hs 10 5 {}\r", stream.len()).into_bytes();
    input.extend_from_slice(&stream);
    input.extend_from_slice(
        b"hs 16 4 10\rhs 10 5\rhs 8 4 3\r\x80\x00\x00hs 15 8 2\r\x00\x00echo alive\r",
    );
    let t = run(&input);
    let o = outputs(&t);
    let crc = crate::crc32::crc32(&orig);
    assert!(
        o[0].starts_with(&format!(
            "hs: waiting for {} bytes\nhs: {} bytes in, {} bytes out, crc32={crc:08x}, decode ",
            stream.len(),
            stream.len(),
            orig.len()
        )),
        "{}",
        o[0]
    );
    assert!(
        o[1].starts_with("error: hs: bad heatshrink parameters -w 16 -l 4"),
        "{}",
        o[1]
    );
    assert_eq!(o[2], "error: missing LEN\n");
    // 24 bits at W=8 L=4: a literal 0x00 (9 bits), a reference d=1 n=1 (13
    // bits), 2 bits of padding: two zero bytes.
    assert_eq!(
        o[3].lines()
            .nth(1)
            .unwrap()
            .split(", decode")
            .next()
            .unwrap(),
        format!(
            "hs: 3 bytes in, 2 bytes out, crc32={:08x}",
            crate::crc32::crc32(&[0, 0])
        )
    );
    // 16 bits at W=15 L=8: a reference needs 24, so the stream is cut short.
    assert_eq!(o[4], "hs: waiting for 2 bytes\nerror: hs: heatshrink stream truncated inside a token (16 bits left over)\n");
    assert_eq!(o[5], "alive\n");
}

/// Runs the shell on `con` until it stops; returns how it stopped.
fn session(con: &mut MemConsole, p: &mut HostPlatform) -> Step {
    let mut line = [0u8; LINE_BUFFER_BYTES];
    let mut hist = [0u8; HISTORY_BYTES];
    let mut st = term::LineState::new();
    let mut io = LineIo::new(con, &mut st);
    let mut shell = Shell::new(&mut line, &mut hist, &mut io);
    for _ in 0..100_000 {
        match shell.step(&mut io, p) {
            Step::Continue => {}
            end => return end,
        }
    }
    panic!("shell does not stop");
}

#[test]
fn cursor_reports_typed_at_the_prompt_are_dropped() {
    // noline 0.5.1 unwraps the missing numbers of `ESC [ R` and `ESC [ 5 R`,
    // and divides by zero on a zero size.
    let t = run(
        b"\x1b[Recho a\r\x1b[5Recho b\r\x1b[0;0Recho c\r\x1b[24;80Recho d\recho \x1b[R\x1b[5Re\r",
    );
    let o = outputs(&t);
    assert_eq!(&o[..5], &["a\n", "b\n", "c\n", "d\n", "e\n"], "{t:?}");
}

#[test]
fn a_bad_answer_to_a_probe_is_dropped_and_the_next_line_is_intact() {
    // A real terminal answers the first prompt's probes (size 30x100, cursor at
    // row 30 column 9), so the link is not dumb; the next size probe gets
    // `ESC[0;0R`. On the board that garbled the next line into `erecho`.
    let t = run(b"\x1b[30;100R\x1b[30;9Recho one\r\x1b[0;0Recho after\r");
    let o = outputs(&t);
    assert_eq!(&o[..2], &["one\n", "after\n"], "{t:?}");
    assert!(!t.contains("erecho"), "{t:?}");
    // A cursor outside the size just reported is no answer either.
    let t = run(b"\x1b[30;100R\x1b[31;9Recho two\r\x1b[30;100R\x1b[30;101Recho three\r");
    assert_eq!(&outputs(&t)[..2], &["two\n", "three\n"], "{t:?}");
    // Nor are huge numbers, or a report with three numbers.
    let t = run(b"\x1b[99999999999999999999;1Recho four\r\x1b[1;2;3Recho five\r");
    assert_eq!(&outputs(&t)[..2], &["four\n", "five\n"], "{t:?}");
}

#[test]
fn invalid_utf8_never_reaches_a_command() {
    let t = run(b"echo \xed\xa0\x80\rring new 1\rpush \xc0\x80\xed\xa0\x80\xf7\xbf\xbf\xbf\rstat\recho a\xffb\xc3\xa9\xf4\x90\x80\x80c\r");
    let o = outputs(&t);
    // The surrogate U+D800 is dropped (it used to print as \u{d800}).
    assert_eq!(o[0], "\n");
    // Overlong NUL, surrogate, beyond U+10FFFF: nothing pushed.
    assert_eq!(o[2], "pushed 0 bytes\n");
    assert!(o[3].contains("len 0,"), "{}", o[3]);
    assert_eq!(o[4], "ab\\u{e9}c\n");
}

#[test]
fn escape_strings_and_unknown_keys_leave_nothing_in_the_line() {
    let t = run(b"echo a\x1b]0;evil title\x07b\recho c\x1bPq#0;2;0;0;0\x1b\\d\recho e\x1b[15~\x1b[1;5Cf\x1bOPg\r\x1bOA\recho h\x1b]unterminated\recho i\r");
    let o = outputs(&t);
    assert_eq!(&o[..4], &["ab\n", "cd\n", "efg\n", "efg\n"], "{t:?}");
    // An OSC string cut by Enter ends there: the line before it runs, the
    // next line is untouched.
    assert_eq!(&o[4..6], &["h\n", "i\n"], "{t:?}");
}

#[test]
fn application_cursor_keys_are_the_arrows() {
    // ESC O A is Up (history), ESC O D / ESC O C move the cursor.
    let t = run(b"echo one\r\x1bOA\recho xz\x1bODy\x1bOCw\r");
    let o = outputs(&t);
    assert_eq!(&o[..3], &["one\n", "one\n", "xyzw\n"], "{t:?}");
}

#[test]
fn an_overlong_line_is_rejected_whatever_its_last_character() {
    let err = format!("error: line too long (at most {LINE_MAX} bytes); discarded\n");
    for tail in ["é", "😀", "€"] {
        // 5 + 250 + the character: one byte or more past the limit.
        let mut input = b"ring new 1\rpush ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 250));
        input.extend_from_slice(tail.as_bytes());
        input.extend_from_slice(b"\rstat\r");
        let o = outputs(&run(&input));
        assert!(o[1].ends_with(&err), "{tail}: {:?}", o[1]);
        assert!(o[2].contains("len 0,"), "{tail}: {}", o[2]);
    }
    // Exactly LINE_MAX bytes ending in a 2-byte character is fine.
    let mut input = b"ring new 1\rpush ".to_vec();
    input.extend(std::iter::repeat_n(b'a', LINE_MAX - 7));
    input.extend_from_slice("é".as_bytes());
    input.push(b'\r');
    let o = outputs(&run(&input));
    assert_eq!(o[1].lines().last(), Some("pushed 250 bytes"), "{:?}", o[1]);
    // Typing past the limit and deleting back under it still rejects the line:
    // characters were lost on the way.
    let mut input = b"echo ".to_vec();
    input.extend(std::iter::repeat_n(b'y', 300));
    input.extend(std::iter::repeat_n(0x7f, 60));
    input.extend_from_slice(b"\recho ok\r");
    let o = outputs(&run(&input));
    assert!(o[0].ends_with(&err), "{:?}", o[0]);
    assert_eq!(o[1], "ok\n");
}

#[test]
fn rest_of_line_commands_take_any_number_of_words() {
    let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let hex: Vec<String> = (0..40).map(|i| format!("{:02x}", 0x30 + i % 10)).collect();
    let input = format!(
        "ring new 1\rpush {}\rpop 1000\recho {}\rpushx {}\rpeek\rfill 1 byte 1 x x x x x x x x x x x x x x x x x x x\r",
        words.join(" "),
        words.join(" "),
        hex.join(" ")
    );
    let o = outputs(&run(input.as_bytes()));
    let text = words.join(" ");
    // (The echo of a long line wraps; the output is its last line.)
    assert_eq!(
        o[1].lines().last(),
        Some(format!("pushed {} bytes", text.len()).as_str())
    );
    assert!(o[3].ends_with(&format!("\n{text}\n")), "{}", o[3]);
    assert_eq!(o[4].lines().last(), Some("pushed 40 bytes"));
    assert_eq!(o[5], format!("\"{}\"\n", "0123456789".repeat(4)));
    // Commands with fixed arguments still reject extra words.
    assert_eq!(o[6], "error: unexpected argument 'x'\n");
}

#[test]
fn a_timed_out_transfer_changes_nothing() {
    // push rx 100 gets 40 bytes, then the sender pauses past the timeout.
    let mut input = b"ring new 1\rpush 12345\rpush rx 100\r".to_vec();
    input.extend(std::iter::repeat_n(b'z', 40));
    let pause = input.len();
    input.extend_from_slice(b"stat\rpeek\r");
    let mut con = MemConsole::new(&input);
    con.pause_at(pause);
    let mut p = platform();
    assert_eq!(session(&mut con, &mut p), Step::Eof);
    let o = outputs(&con.text());
    assert_eq!(
        o[2],
        "rx: waiting for 100 bytes\nerror: push rx: timed out after 40 of 100 bytes (no data for 3 s); nothing pushed; discarded 0 stray bytes\n"
    );
    assert!(o[3].contains("len 5,"), "{}", o[3]);
    assert!(o[3].contains("total pushed 5, popped 0"), "{}", o[3]);
    assert_eq!(o[4], "\"12345\"\n");
    // hs and rx: the same rule, the same message.
    let mut input = b"hs 8 4 100\r".to_vec();
    input.extend(std::iter::repeat_n(0u8, 10));
    let pause = input.len();
    input.extend_from_slice(b"echo next\r");
    let mut con = MemConsole::new(&input);
    con.pause_at(pause);
    session(&mut con, &mut platform());
    let o = outputs(&con.text());
    assert_eq!(o[0], "hs: waiting for 100 bytes\nerror: hs: timed out after 10 of 100 bytes (no data for 3 s); discarded 0 stray bytes\n");
    assert_eq!(o[1], "next\n");
}

#[test]
fn rx_at_end_of_input_says_so() {
    let o = outputs(&run(b"rx 3\r1"));
    assert_eq!(
        o[0],
        "rx: waiting for 3 bytes\nerror: rx: timed out after 1 of 3 bytes (end of input); discarded 0 stray bytes\n"
    );
}

#[test]
fn stress_and_bench_refuse_a_ring_that_holds_data() {
    let t = run(b"ring new 1\rpush hello\rstress 100\rbench 100\rpeek\rstat\rpop 5\rstress 100000\rbench 1000\rstat\r");
    let o = outputs(&t);
    assert_eq!(
        o[2],
        "error: stress: ring 1 holds 5 bytes; pop them or use an empty ring\n"
    );
    assert_eq!(
        o[3],
        "error: bench: ring 1 holds 5 bytes; pop them or use an empty ring\n"
    );
    assert_eq!(o[4], "\"hello\"\n");
    assert!(o[5].contains("total pushed 5, popped 0"), "{}", o[5]);
    assert!(o[7].contains(", 0 mismatches\nratio"), "{}", o[7]);
    assert!(o[8].contains("  4096 "), "{}", o[8]);
    // Empty before and after; the totals are the user's pushes and pops.
    assert!(o[9].contains("len 0,"), "{}", o[9]);
    assert!(o[9].contains("total pushed 5, popped 5"), "{}", o[9]);
}

#[test]
fn ctrl_c_stops_long_commands_and_says_what_was_done() {
    // A 1 TiB stress, a 1 GiB bench, a 1 MiB fill, a 64 KiB dump and x: each
    // stopped by the Ctrl-C typed after it; the line after it runs.
    let mut p = platform();
    let id = p.add_ring(1 << 20).unwrap();
    let (base, _) = p.window(id).unwrap();
    let input = format!(
        "stress 1099511627776\r\x03echo a\rbench 1073741824\r\x03echo b\rfill 1048576\r\x03echo c\rdump 0 1048576\r\x03echo d\rx {base:#x} 65536\r\x03echo e\r"
    );
    let t = run_with(input.as_bytes(), &mut p);
    let o = outputs(&t);
    let mirrored = o[0].lines().next().unwrap_or_default();
    assert!(
        mirrored.starts_with("mirrored: ")
            && mirrored.contains(" of 1099511627776 bytes in ")
            && mirrored.ends_with(", 0 mismatches (interrupted by Ctrl-C)"),
        "{}",
        o[0]
    );
    assert_eq!(o[0].lines().count(), 1, "{}", o[0]);
    assert_eq!(o[1], "a\n");
    assert!(
        o[2].ends_with(" chunk     mirrored      modular    ratio\nbench: interrupted by Ctrl-C\n"),
        "{}",
        o[2]
    );
    assert_eq!(o[3], "b\n");
    assert_eq!(
        o[4],
        format!(
            "pushed {} of 1048576 bytes (interrupted by Ctrl-C)\n",
            POLL_BYTES
        )
    );
    assert_eq!(o[5], "c\n");
    assert!(
        o[6].ends_with("dump: interrupted by Ctrl-C after 16 of 262144 bytes\n"),
        "{}",
        o[6]
    );
    assert_eq!(o[7], "d\n");
    assert!(
        o[8].ends_with("x: interrupted by Ctrl-C after 16 of 65536 bytes\n"),
        "{}",
        o[8]
    );
    assert_eq!(o[9], "e\n");
    // The interrupted stress left the ring empty, the fill kept its bytes.
    let t = run_with(b"stat\r", &mut p);
    assert!(t.contains(&format!("len {POLL_BYTES},")), "{t}");
}

#[test]
fn ctrl_d_ends_a_terminal_session_only_on_an_empty_line() {
    // In a terminal: Ctrl-D in a line is an editing key (here at the end of
    // the line: a bell), inside data it is data, on an empty line it ends the
    // session.
    let input = b"echo a\x04b\rrx 3\r\x04\x04\x04\x04echo never\r";
    let mut con = MemConsole::new(input);
    con.set_ctrl_d_ends_input(true);
    assert_eq!(session(&mut con, &mut platform()), Step::Eof);
    let o = outputs(&con.text());
    assert_eq!(o[0], "ab\n");
    let crc = crate::crc32::crc32(&[4, 4, 4]);
    assert_eq!(
        o[1],
        format!("rx: waiting for 3 bytes\nrx 3 crc32={crc:08x}\n")
    );
    assert!(!con.text().contains("never"));
    // Not a terminal (a pipe): Ctrl-D on an empty line abandons it, and the
    // session runs to the end of input.
    let o = outputs(&run(input));
    assert_eq!(o[3], "never\n");
}

#[test]
fn a_last_line_without_newline_is_run() {
    assert_eq!(outputs(&run(b"echo last"))[0], "last\n");
    // Even when it ends inside an escape sequence (dropped with a bell).
    assert_eq!(outputs(&run(b"echo x\x1b["))[0], "x\n");
    // But an abandoned line stays abandoned.
    assert_eq!(outputs(&run(b"echo no\x03")).len(), 2);
}

#[test]
fn a_failed_write_ends_the_session() {
    let input = b"help\r".repeat(1000);
    let mut con = MemConsole::new(&input);
    con.fail_writes_after(300);
    assert_eq!(session(&mut con, &mut platform()), Step::OutputFailed);
    assert!(con.consumed() < input.len(), "{}", con.consumed());
}

#[test]
fn messages_name_the_command_and_what_was_typed() {
    let mut p = HostPlatform::new(64 * 1024, 0);
    let o = outputs(&run_with(
        b"hs demo\rhs 8 4 10\rring new 18446744073709551615\rring new 4097\r",
        &mut p,
    ));
    assert_eq!(
        o[0],
        "error: hs demo: not enough memory: 1 requested, 0 free\n"
    );
    assert_eq!(o[1], "error: hs: not enough memory: 1 requested, 0 free\n");
    assert_eq!(
        o[2],
        "error: ring new: MIB 18446744073709551615 out of range (at most 4096)\n"
    );
    assert_eq!(
        o[3],
        "error: ring new: MIB 4097 out of range (at most 4096)\n"
    );
}

#[test]
fn the_first_ring_counts_against_the_budget() {
    // 4 units of 64 KiB in all; the first ring takes all of them.
    let mut p = HostPlatform::new(64 * 1024, 4);
    assert_eq!(p.add_ring(4 * 64 * 1024), Ok(1));
    let o = outputs(&run_with(
        b"ring new 1\rring free\rring new 4\rring new 1\r",
        &mut p,
    ));
    assert_eq!(
        o[0],
        "error: ring new: not enough memory: 1 requested, 4 free\n".replace("4 free", "0 free")
    );
    assert_eq!(o[1], "ring 1 freed\n");
    assert!(o[2].starts_with("ring 2: "), "{}", o[2]);
    assert_eq!(
        o[3],
        "error: ring new: not enough memory: 1 requested, 0 free\n"
    );
    // Too big or empty: refused, nothing taken.
    let mut p = HostPlatform::new(64 * 1024, 4);
    assert!(p.add_ring(5 * 64 * 1024).is_err());
    assert_eq!(
        p.add_ring(0).unwrap_err().to_string(),
        "the capacity must be at least 1 byte"
    );
    assert_eq!(p.add_ring(1), Ok(1));
    assert!(p.add_ring(3 * 64 * 1024).is_ok());
    assert!(p.add_ring(1).is_err());
}
