//! `vmcirc shell` as a process: how a session ends (end of input, a closed
//! stdout), Ctrl-C and Ctrl-D in piped input, and its start-up errors.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vmcirc");

/// Waits for `child` at most `limit`; kills it (and fails) if it is still there.
fn wait(child: &mut Child, limit: Duration) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmcirc shell still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `vmcirc shell ARGS` on `input`; (exit code, stdout without terminal
/// control, stderr).
fn shell(args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("shell")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let code = wait(&mut child, Duration::from_secs(60));
    let _ = writer.join();
    let out = reader.join().unwrap();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let text = String::from_utf8_lossy(&out)
        .replace("\x1b7", "")
        .replace("\x1b8", "");
    let re = regex::Regex::new(r"\x1b\[[0-9;]*[A-Za-z]|\r|\x07").unwrap();
    (code, re.replace_all(&text, "").into_owned(), err)
}

#[test]
fn a_closed_stdout_ends_the_session_quietly() {
    // stdin stays open and keeps feeding commands: only the closed pipe can end
    // the session (it used to spin at 100% CPU forever).
    let mut child = Command::new(BIN)
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for _ in 0..2000 {
            if stdin.write_all(b"help\r").is_err() {
                return;
            }
        }
        // Keep stdin open until the shell is gone.
        let _ = stdin.write_all(b"");
        std::thread::sleep(Duration::from_secs(30));
    });
    let mut out = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    out.read_exact(&mut one).unwrap();
    drop(out);
    let code = wait(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(code, 141, "stderr: {err}");
    assert_eq!(err, "");
    drop(feeder);
}

#[test]
fn ctrl_c_stops_a_long_command_in_the_host_shell() {
    let (code, out, err) = shell(
        &[],
        b"ring new 1\rstress 1099511627776\r\x03bench 1073741824\r\x03echo after\r",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(" of 1099511627776 bytes in ")
            && out.contains(", 0 mismatches (interrupted by Ctrl-C)\n"),
        "{out}"
    );
    assert!(out.contains("\nbench: interrupted by Ctrl-C\n"), "{out}");
    assert!(out.contains("\nafter\n"), "{out}");
}

#[test]
fn piped_ctrl_d_is_a_key_and_the_last_line_runs() {
    // Not a terminal: Ctrl-D on an empty line abandons it, mid-line it is an
    // editing key, in data it is data; the session ends at end of input, and
    // the last line, without a newline, is run.
    let (code, out, err) = shell(&[], b"echo a\x04b\r\x04rx 2\r\x04\x04echo last");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\nab\n"), "{out}");
    assert!(out.contains("\nrx 2 crc32="), "{out}");
    assert!(out.contains("\nlast\n"), "{out}");
}

#[test]
fn capacity_errors_are_one_clear_line() {
    let (code, _, err) = shell(&["--capacity", "0"], b"");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: --capacity 0: the capacity must be at least 1 byte\n"
    );
    // More than the 4 GiB all rings may take.
    let (code, _, err) = shell(&["--capacity", "4294967297"], b"");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: --capacity 4294967297: more than the 4294967296 bytes rings may use\n"
    );
    // Exactly 4 GiB leaves nothing for `ring new`, and freeing it gives back
    // all of it (not more).
    let (code, out, err) = shell(
        &["--capacity", "4294967296"],
        b"ring new 1\rring free\rring new 4096\rring new 1\r",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.matches("error: ring new: not enough memory: 1 requested, 0 free")
            .count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("ring 2: memfd store of 4294967296 bytes"),
        "{out}"
    );
}
