//! Host tests of the shell: the same code the kernel runs, on in-memory streams.

use super::testio::{FakePlatform, MemConsole, FAKE_MEM_BASE};
use super::*;
use std::string::String;
use std::vec::Vec;

/// Runs the shell over `input` until it ends; returns the cleaned-up transcript.
fn run(input: &[u8]) -> String {
    run_with(input, &mut FakePlatform::default())
}

fn run_with(input: &[u8], platform: &mut FakePlatform) -> String {
    let mut con = MemConsole::new(input);
    let mut line = [0u8; LINE_BUFFER_BYTES];
    let mut hist = [0u8; HISTORY_BYTES];
    {
        let mut io = LineIo::new(&mut con);
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
    let t = run(b"x 0x10000010 20\rx 0x20000000 16\r");
    let o = outputs(&t);
    let p = FakePlatform::default();
    let mut expect = String::new();
    hexdump::write_row(&mut expect, FAKE_MEM_BASE + 16, &p.mem[16..32], "").unwrap();
    hexdump::write_row(&mut expect, FAKE_MEM_BASE + 32, &p.mem[32..36], "").unwrap();
    assert_eq!(o[0], expect);
    assert_eq!(o[1], "error: x: address not mapped\n");
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
    let mut p = FakePlatform::default();
    {
        let mut io = LineIo::new(&mut con);
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
    for i in 0..200 {
        assert_eq!(o[i], format!("line {i}\n"));
    }
}
