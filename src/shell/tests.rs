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
    data[0] = b'\n'; // binary-safe: an LF right after the data starts is data
    data[1] = b'\r';
    let mut input = b"rx 16384\r".to_vec();
    input.extend_from_slice(&data);
    input.extend_from_slice(b"echo after\r");
    let t = run(&input);
    let o = outputs(&t);
    // The CRLF rule only drops an LF directly after the command's CR, and this
    // command ended in CR alone, so data[0] == '\n' would be dropped: check the
    // documented behaviour with a CRLF-terminated command instead.
    let _ = o;
    let mut input = b"rx 16384\r\n".to_vec();
    input.extend_from_slice(&data);
    input.extend_from_slice(b"echo after\r");
    let t = run(&input);
    let o = outputs(&t);
    let crc = crate::crc32::crc32(&data);
    assert_eq!(
        o[0],
        format!("rx: waiting for 16384 bytes\nrx 16384 crc32={crc:08x}\n")
    );
    assert_eq!(o[1], "after\n");
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
    let mut input = b"ring new 1\rring new 2\rring list\rring free 1\rring use 2\rpush rx 5\r\nhellopeek\rring free\rring list\r".to_vec();
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
    let mut input = format!("hs 10 5 {}\r\n", stream.len()).into_bytes();
    input.extend_from_slice(&stream);
    input.extend_from_slice(
        b"hs 16 4 10\rhs 10 5\rhs 8 4 3\r\n\x80\x00\x00hs 15 8 2\r\n\x00\x00echo alive\r",
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
