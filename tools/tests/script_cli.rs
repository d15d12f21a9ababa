//! `vmcirc script` end to end against the hidden fake board (`vmcirc fake-board`),
//! spawned through the test-only `--exec` transport: no QEMU needed.
//!
//! These prove the runner's verdicts: zero only when every expectation held, non-zero
//! on a failed expectation, a corrupted upload, a hung or vanished target, and a bad
//! script; and that it never leaves the target process behind.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vmcirc");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run_in(dir: &Path, script: &str, board_flags: &str, extra: &[&str]) -> Run {
    run_env(dir, script, board_flags, extra, &[])
}

fn run_env(
    dir: &Path,
    script: &str,
    board_flags: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let file = dir.join("test.vms");
    std::fs::write(&file, script).unwrap();
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .env_remove("VMCIRC_ACCEPT")
        .envs(env.iter().copied())
        .arg("script")
        .arg(&file)
        .arg("--exec")
        .arg(format!("'{BIN}' fake-board {board_flags}"))
        .args(if extra.contains(&"--session-timeout") {
            &[][..]
        } else {
            &["--session-timeout", "60"][..]
        })
        .args(extra)
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t0.elapsed(),
    };
    eprintln!("--- stdout\n{}--- stderr\n{}", r.stdout, r.stderr);
    r
}

fn run(script: &str, board_flags: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), script, board_flags, &[])
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

const GOOD: &str = r"# a whole session that must pass
expect fake vmcirc board
expect-not error
> help
expect echo ARGS
expect-re (?m)^rx LEN\s+receive
> echo hi there
expect-line hi there
# binary-safe upload, CRC computed by the tool from the bytes it sent
# (and the generator pinned to a value from Python's zlib.crc32)
> rx 16384
sendgen 16384 42 crc32=8bde31dc
expect-line rx ${len} crc32=${crc32}
# a pasted block of 200 commands, all executed in order
paste 200 echo line-{i}
expect-each 200 line-{i}
expect-not error
> nope
expect-line error: unknown command `nope`
> echo a\x00\xffb
expect-line ab
";

#[test]
fn passing_session_exits_zero() {
    let r = run(GOOD, "");
    assert_eq!(r.code, 0);
    // 17 steps + the implicit end-of-script prompt check.
    assert_eq!(last_line(&r.stdout), "18 passed, 0 failed");
    assert!(!r.stdout.contains("FAIL"));
}

#[test]
fn failed_expectation_exits_nonzero_and_shows_output() {
    let r = run("> echo hi\nexpect hello\n> help\nexpect echo\n", "");
    assert_eq!(r.code, 1);
    assert_eq!(last_line(&r.stdout), "1 passed, 1 failed, 2 skipped");
    assert!(r.stdout.contains("FAIL  line   2: expect hello"));
    assert!(r
        .stdout
        .contains("expected: `hello` in the output of `> echo hi` (line 1)"));
    assert!(r.stdout.contains("the prompt came back without it"));
    // The tail of what arrived, escaped.
    assert!(r.stdout.contains("          | hi\\n"), "no escaped tail");
}

#[test]
fn the_echo_of_the_command_is_not_its_output() {
    // `echo` prints nothing here, so only the echoed line contains "marker".
    let r = run("> echo\nexpect marker\n> echo marker\nexpect marker\n", "");
    assert_eq!(r.code, 1);
    let r = run("> echo marker\nexpect marker\n", "");
    assert_eq!(r.code, 0);
}

#[test]
fn expect_not_checks_the_whole_output_not_only_after_the_last_match() {
    let r = run("> help\nexpect exit\nexpect-not echo ARGS\n", "");
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("found at offset"));
}

#[test]
fn corrupted_upload_fails_the_crc_check() {
    let s = "> rx 4096\nsendgen 4096 1\nexpect-line rx 4096 crc32=${crc32}\n";
    assert_eq!(run(s, "").code, 0);
    let r = run(s, "--corrupt-rx");
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("FAIL  line   3"));
}

#[test]
fn a_wrong_pinned_crc_stops_before_sending() {
    let r = run("> rx 16\nsendgen 16 42 crc32=00000000\n", "");
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the script pins 00000000"));
}

#[test]
fn order_of_pasted_output_is_checked() {
    // Lines exist but not in this order.
    let r = run("paste 3 echo l{i}\nexpect-line l2\nexpect-line l0\n", "");
    assert_eq!(r.code, 1);
}

#[test]
fn a_hung_shell_times_out() {
    let r = run("timeout 0.5\n> help\n> help\n", "--hang-after 1");
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("not seen within the step timeout (0.5s)"));
    assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);
}

#[test]
fn a_shell_that_never_comes_back_fails_at_the_end() {
    // Every step passes, but the last command never returns to the prompt.
    let r = run("timeout 0.5\n> help\nexpect exit\n", "--hang-after 1");
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("FAIL  (end of script)"));
}

#[test]
fn the_session_timeout_bounds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        "timeout 30\n> help\n> help\n",
        "--hang-after 1",
        &["--session-timeout", "1"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("session timeout"));
    assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);
}

#[test]
fn a_target_that_exits_fails_immediately() {
    let r = run("timeout 30\n> exit\nexpect never\n", "");
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the target closed the link"));
    assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);
}

#[test]
fn bad_script_is_a_one_line_error_with_exit_2() {
    let r = run("> help\n\nexpct x\n", "");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("line 3: unknown keyword `expct`"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1);
}

#[test]
fn sendfile_is_relative_to_the_script() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blob.bin"), b"\x00\x01\x02hello\xff").unwrap();
    // crc32 of the 9 bytes, computed by Python's zlib.crc32.
    let r = run_in(
        dir.path(),
        "> rx 9\nsendfile blob.bin\nexpect-line rx ${len} crc32=f7139209\n",
        "",
        &[],
    );
    assert_eq!(r.code, 0);
}

#[test]
fn no_target_process_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let file = dir.path().join("t.vms");
    std::fs::write(&file, "timeout 0.3\n> help\n> help\n").unwrap();
    let status = Command::new(BIN)
        .arg("script")
        .arg(&file)
        .arg("--exec")
        .arg(format!(
            "echo $$ > '{}'; exec '{BIN}' fake-board --hang-after 1",
            pidfile.display()
        ))
        // The tool's report would end in an `N passed, N failed` line of its own.
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let proc = format!("/proc/{}", pid.trim());
    assert!(
        !Path::new(&proc).exists(),
        "the target {proc} is still there"
    );
}

#[test]
fn raw_typing_at_the_prompt_is_accounted_for() {
    // Ctrl-C typed at the prompt (once `wait-prompt` saw it) brings back one more
    // prompt; the next command's output must start after it, whatever the timing.
    for _ in 0..5 {
        let r = run(
            "> echo one\nexpect-line one\nwait-prompt\nraw echo abandoned\\x03\n> echo after\nexpect-line after\nexpect-not abandoned\n",
            "",
        );
        assert_eq!(r.code, 0);
    }
    // Raw bytes for a running command (no line end) owe no prompt.
    let r = run(
        "> rx 5\nraw hello\nexpect-line rx 5 crc32=${crc32}\n> echo next\nexpect-line next\n",
        "",
    );
    assert_eq!(r.code, 0);
}

#[test]
fn raw_ctrl_c_stops_a_running_command_without_owing_a_prompt() {
    // The Ctrl-C that stops `busy` brings no prompt of its own: the next command
    // must not wait for one (`timeout 3` keeps a wrong count from taking long).
    let r = run(
        "timeout 3\n> busy\nraw \\x03\nexpect-line busy: interrupted by Ctrl-C\n\
         > echo after\nexpect-line after\n",
        "",
    );
    assert_eq!(r.code, 0);
    // A second Ctrl-C reaches the prompt that follows and abandons its line: that
    // one brings a prompt, which the next command's output must not start at.
    let r = run(
        "timeout 3\n> busy\nraw \\x03\\x03\nexpect-line busy: interrupted by Ctrl-C\n\
         > echo after\nexpect-line after\n",
        "",
    );
    assert_eq!(r.code, 0);
    // A command that reads data takes Ctrl-C as data.
    let r = run(
        "timeout 3\n> rx 3\nraw a\\x03b\nexpect-line rx 3 crc32=${crc32}\n> echo after\nexpect-line after\n",
        "",
    );
    assert_eq!(r.code, 0);
}

#[test]
fn raw_as_the_first_step_waits_for_the_boot_prompt() {
    // The board drops what arrives while it boots: typed before the prompt, the
    // line would be lost.
    let r = run(
        "timeout 5\nraw echo early\\r\nexpect-line early\n> echo next\nexpect-line next\n",
        "--boot-delay 700",
    );
    assert_eq!(r.code, 0);
    assert!(r.took >= Duration::from_millis(700), "took {:?}", r.took);
    // So do the other sends (here `sendgen` after `> rx` is typed at the prompt).
    let r = run(
        "timeout 5\n> rx 16\nsendgen 16 3\nexpect-line rx 16 crc32=${crc32}\n",
        "--boot-delay 700",
    );
    assert_eq!(r.code, 0);
}

#[test]
fn sendfile_acked_sends_each_block_after_an_ack_and_stops_when_the_command_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
    std::fs::write(dir.path().join("img"), &data).unwrap();
    let crc = vmcirc::crc32::crc32(&data);
    // The fake board's `load`: an ACK before each block of 1024.
    let r = run_in(
        dir.path(),
        &format!(
            "> load 5000 {crc:#x}\nexpect-line load: waiting for 5000 bytes in blocks of 1024\n\
             sendfile-acked 1024 \\x06 img\n\
             expect-line load: ${{len}} bytes, crc32=${{crc32}} ok; starting the new kernel\n"
        ),
        "",
        &[],
    );
    assert_eq!(r.code, 0);
    // A loader that takes fewer bytes than the file holds ends after the third
    // block: the fourth is not sent, and the step fails at once, not at its timeout.
    let r = run_in(
        dir.path(),
        "timeout 20\n> load 3000 0x0\nsendfile-acked 1024 \\x06 img\n",
        "",
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);
    assert!(
        r.stdout.contains(
            "but: the prompt came back after 3072 of 5000 bytes, without `\\x06` for the next block"
        ),
        "{}",
        r.stdout
    );
}

/// The fake board's `help` output as the checks see it (no `\r`).
const FAKE_HELP: &str = "help        list the commands\necho ARGS   print ARGS\n\
rx LEN      receive LEN raw bytes, print their CRC-32\nexit        quit\n";

const GOLDEN: &str =
    "> echo one\nexpect-line one\n> help\nexpect-golden help\n> echo two\nexpect-line two\n";

#[test]
fn golden_match_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("golden")).unwrap();
    std::fs::write(dir.path().join("golden/help"), FAKE_HELP).unwrap();
    let r = run_in(dir.path(), GOLDEN, "", &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("  ok    line   4: expect-golden help"));
    assert_eq!(last_line(&r.stdout), "7 passed, 0 failed");
    // CRLF line ends in the file (a Windows checkout) are read as LF.
    std::fs::write(
        dir.path().join("golden/help"),
        FAKE_HELP.replace('\n', "\r\n"),
    )
    .unwrap();
    assert_eq!(run_in(dir.path(), GOLDEN, "", &[]).code, 0);
    // In a folder of its own, relative to the script's folder.
    std::fs::create_dir(dir.path().join("golden/fake")).unwrap();
    std::fs::write(dir.path().join("golden/fake/help.txt"), FAKE_HELP).unwrap();
    let r = run_in(dir.path(), "> help\nexpect-golden fake/help.txt\n", "", &[]);
    assert_eq!(r.code, 0);
}

#[test]
fn golden_mismatch_fails_with_a_line_diff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("golden")).unwrap();
    let want = FAKE_HELP.replace("print ARGS", "print the ARGS") + "extra line\n";
    std::fs::write(dir.path().join("golden/help"), &want).unwrap();
    let r = run_in(dir.path(), GOLDEN, "", &[]);
    assert_eq!(r.code, 1);
    assert_eq!(last_line(&r.stdout), "3 passed, 1 failed, 2 skipped");
    assert!(r.stdout.contains("  FAIL  line   4: expect-golden help"));
    let path = dir.path().join("golden/help");
    assert!(r.stdout.contains(&format!(
        "expected: the output of `> help` (line 3) to equal the golden file {}",
        path.display()
    )));
    assert!(r.stdout.contains(&format!(
        "but: the output differs from {}: first difference at line 2 (golden file 5 lines, received 4 lines)",
        path.display()
    )));
    for l in [
        "--- expected (golden file)",
        "+++ received",
        "@@ -1,5 +1,4 @@",
        "     1    1 | help        list the commands",
        "-    2      | echo ARGS   print the ARGS",
        "+         2 | echo ARGS   print ARGS",
        "     4    4 | exit        quit",
        "-    5      | extra line",
        "with --accept (or VMCIRC_ACCEPT=1)",
    ] {
        assert!(r.stdout.contains(l), "no `{l}` in the report");
    }
    // The file is left alone.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
}

#[test]
fn a_missing_golden_file_fails_and_says_how_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), GOLDEN, "", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("  FAIL  line   4: expect-golden help"));
    assert!(r.stdout.contains(&format!(
        "but: the golden file {} does not exist; to create it from this output, run the script with --accept",
        dir.path().join("golden/help").display()
    )));
    // The output it would have written is shown.
    assert!(r.stdout.contains("          | exit        quit\\n"));
    assert!(!dir.path().join("golden").exists());
}

#[test]
fn accept_writes_the_golden_file_then_a_normal_run_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golden/help");
    // New file (the folder is created).
    let r = run_in(dir.path(), GOLDEN, "", &["--accept"]);
    assert_eq!(r.code, 0);
    assert!(r
        .stdout
        .contains("  accepted line   4: expect-golden help  ("));
    assert!(r
        .stdout
        .contains(&format!("new file: {}, 4 lines)", path.display())));
    assert_eq!(
        last_line(&r.stdout),
        "6 passed, 0 failed, 1 accepted (1 changed)"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), FAKE_HELP);
    // A normal run against it passes.
    let r = run_in(dir.path(), GOLDEN, "", &[]);
    assert_eq!(r.code, 0);
    assert_eq!(last_line(&r.stdout), "7 passed, 0 failed");
    // Accepting the same output again changes nothing.
    let r = run_in(dir.path(), GOLDEN, "", &["--accept"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("unchanged: "));
    assert_eq!(
        last_line(&r.stdout),
        "6 passed, 0 failed, 1 accepted (0 changed)"
    );
    // A stale file is rewritten, and the report shows what changed; VMCIRC_ACCEPT=1
    // is the same switch (for `make accept`).
    std::fs::write(&path, "old\n").unwrap();
    let r = run_env(dir.path(), GOLDEN, "", &[], &[("VMCIRC_ACCEPT", "1")]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains(&format!(
        "changed: {}, first difference at line 1 (golden file 1 line, received 4 lines))",
        path.display()
    )));
    assert!(r.stdout.contains("--- golden file before"));
    assert!(r.stdout.contains("-    1      | old"));
    assert!(r
        .stdout
        .contains("+         1 | help        list the commands"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), FAKE_HELP);
    // VMCIRC_ACCEPT=0 does not accept.
    std::fs::write(&path, "old\n").unwrap();
    let r = run_env(dir.path(), GOLDEN, "", &[], &[("VMCIRC_ACCEPT", "0")]);
    assert_eq!(r.code, 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
    // A failure before the golden step writes nothing.
    std::fs::remove_file(&path).unwrap();
    let r = run_in(
        dir.path(),
        "> echo one\nexpect-line two\n> help\nexpect-golden help\n",
        "",
        &["--accept"],
    );
    assert_eq!(r.code, 1);
    assert!(!path.exists());
}

#[test]
fn a_bad_golden_name_is_a_script_error() {
    for (name, why) in [
        ("../help", "contains `..`"),
        ("/tmp/help", "is an absolute path"),
    ] {
        let r = run(&format!("> help\nexpect-golden {name}\n"), "");
        assert_eq!(r.code, 2);
        assert!(
            r.stderr.contains(&format!(
                "line 2: `expect-golden` needs a plain relative file name, `{name}` {why}"
            )),
            "{}",
            r.stderr
        );
    }
}

/// A run of the tool watched from outside: its exit code, output, time, and the
/// peak of its resident memory (`VmHWM`), polled while it runs. A run that takes
/// longer than `limit` is killed and reported with code -1.
struct Watched {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
    peak_kib: u64,
}

fn watched(dir: &Path, script: &str, exec: &str, extra: &[&str], limit: Duration) -> Watched {
    use std::io::Read;
    let file = dir.join("test.vms");
    std::fs::write(&file, script).unwrap();
    let t0 = Instant::now();
    let mut child = Command::new(BIN)
        .arg("script")
        .arg(&file)
        .arg("--exec")
        .arg(exec)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:")) {
                let kib: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = t0.elapsed();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    eprintln!("--- stdout\n{stdout}--- stderr\n{stderr}--- took {took:?}, peak {peak_kib} KiB");
    Watched {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout,
        stderr,
        took,
        peak_kib,
    }
}

/// Resident memory a session may reach however much the target sends (the output
/// text is capped at --max-output, 16 MiB by default, the link queue at 1 MiB).
const MEMORY_BOUND_KIB: u64 = 160 * 1024;

#[test]
fn a_flooding_target_is_stopped_at_the_step_deadline_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Regression: this reached 14 GB in 9 s and ignored both timeouts.
    let r = watched(
        dir.path(),
        "> help\nexpect never\n",
        "yes garbage",
        &[
            "--timeout",
            "3",
            "--session-timeout",
            "10",
            "--max-output",
            "1000000",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("not seen within the step timeout (3.0s)"));
    assert!(r.took < Duration::from_secs(8), "took {:?}", r.took);
    assert!(r.peak_kib < MEMORY_BOUND_KIB, "peak {} KiB", r.peak_kib);
    // The report says the output was cut and how much of it went.
    assert!(
        r.stdout.contains(
            "bytes of output text were dropped (the tool keeps the last 1000000, --max-output)"
        ),
        "no drop note"
    );
    assert!(r.stdout.contains("          | garbage\\n"));
}

#[test]
fn a_flooding_target_is_stopped_at_the_session_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let r = watched(
        dir.path(),
        "> help\nexpect never\n",
        "yes garbage",
        &["--timeout", "60", "--session-timeout", "3"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the session timeout (3s) ran out"));
    assert!(r.took < Duration::from_secs(8), "took {:?}", r.took);
    assert!(r.peak_kib < MEMORY_BOUND_KIB, "peak {} KiB", r.peak_kib);
}

#[test]
fn huge_counts_cost_time_not_memory() {
    let dir = tempfile::tempdir().unwrap();
    let board = format!("'{BIN}' fake-board");
    let limits = ["--session-timeout", "3"];
    // 100 GB generated as the board takes it, until the session deadline.
    let r = watched(
        dir.path(),
        "> rx 100000000000\nsendgen 100000000000 1\nexpect-line rx ${len} crc32=${crc32}\n",
        &board,
        &limits,
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the session timeout (3s) ran out"));
    assert!(r.peak_kib < MEMORY_BOUND_KIB, "peak {} KiB", r.peak_kib);
    // Ten million pasted lines and as many expected ones: typed and checked lazily.
    let r = watched(
        dir.path(),
        "paste 10000000 echo line-{i}\nexpect-each 10000000 line-{i}\n",
        &board,
        &limits,
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the session timeout (3s) ran out"));
    assert!(r.peak_kib < MEMORY_BOUND_KIB, "peak {} KiB", r.peak_kib);
    // Impossible counts are script errors, before anything runs.
    for line in [
        "sendgen 18446744073709551615 1",
        "paste 100000000000 echo x",
        "expect-each 100000000000 x",
    ] {
        let r = watched(
            dir.path(),
            &format!("> rx 1\n{line}\n"),
            &board,
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(r.code, 2, "{line}");
        assert!(r.stderr.contains(": line 2: "), "{line}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1);
    }
}

/// Whether process `pid` is still running (a zombie has ended).
fn running(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Polls until neither process runs; false if they still do after 5 s.
fn all_ended(pids: &[String]) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if !pids.iter().any(|p| running(p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts a session whose target is `sh` with a background child, then ends the
/// tool with `signal` (`None`: let the script fail on its own); returns the pids of
/// the target shell and its child.
fn session_with_children(signal: Option<&str>, script: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (pid1, pid2) = (dir.path().join("pid1"), dir.path().join("pid2"));
    let file = dir.path().join("t.vms");
    std::fs::write(&file, script).unwrap();
    let exec = format!(
        "echo $$ > '{}'; sleep 600 & echo $! > '{}'; exec '{BIN}' fake-board --hang-after 1",
        pid1.display(),
        pid2.display()
    );
    let mut tool = Command::new(BIN)
        .arg("script")
        .arg(&file)
        .arg("--exec")
        .arg(exec)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .filter(|s| s.ends_with('\n'))
    };
    let t0 = Instant::now();
    while (read(&pid1).is_none() || read(&pid2).is_none()) && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids: Vec<String> = [&pid1, &pid2]
        .iter()
        .map(|p| {
            read(p)
                .expect("the target wrote its pids")
                .trim()
                .to_string()
        })
        .collect();
    if let Some(sig) = signal {
        assert!(pids.iter().all(|p| running(p)));
        // Let the session reach its waiting step, then end the tool.
        std::thread::sleep(Duration::from_millis(300));
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(tool.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let t0 = Instant::now();
    while tool.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the tool did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pids
}

#[test]
fn no_target_process_survives_the_tool_however_it_ends() {
    let hang = "timeout 60\n> help\n> help\n";
    // Killed outright or aborted: the tool runs no clean-up code at all.
    for sig in ["KILL", "ABRT", "TERM", "INT", "HUP"] {
        let pids = session_with_children(Some(sig), hang);
        assert!(all_ended(&pids), "SIG{sig}: {pids:?} still running");
    }
    // A timed-out step, and a step that fails with an error.
    let pids = session_with_children(None, "timeout 0.5\n> help\n> help\n");
    assert!(all_ended(&pids), "timeout: {pids:?} still running");
    let pids = session_with_children(None, "> help\nsendfile no-such-file\n");
    assert!(all_ended(&pids), "error: {pids:?} still running");
}

#[test]
fn attach_provokes_a_fresh_prompt_from_a_running_shell() {
    let dir = tempfile::tempdir().unwrap();
    // The boot banner is old output: the first window is what came after the key.
    let script = "expect-not fake vmcirc board\n> echo hi\nexpect-line hi\n";
    let r = run_in(dir.path(), script, "", &["--attach"]);
    assert_eq!(r.code, 0);
    assert!(r
        .stdout
        .contains("  ok    attach  : the target answered with a fresh prompt"));
    // attach, 3 steps, end.
    assert_eq!(last_line(&r.stdout), "5 passed, 0 failed");
    // Ctrl-C ignored: Enter brings the prompt.
    let r = run_in(dir.path(), script, "--no-ctrl-c", &["--attach"]);
    assert_eq!(r.code, 0);
    // The same script waiting for a boot sees the banner.
    let r = run_in(dir.path(), script, "", &["--wait-boot"]);
    assert_eq!(r.code, 1);
    assert!(r
        .stdout
        .contains("FAIL  line   1: expect-not fake vmcirc board"));
    // A target that never answers fails the attach step, and says what to try; the
    // script's leading settings (here `timeout`) apply to the attach.
    let r = run_in(
        dir.path(),
        "timeout 2\n> echo hi\n",
        "--hang-after 0",
        &["--attach"],
    );
    assert_eq!(r.code, 1);
    assert!(r.took < Duration::from_secs(6), "took {:?}", r.took);
    assert!(r.stdout.contains("  FAIL  (attach)"));
    assert!(r
        .stdout
        .contains("--wait-boot waits for a board being powered on"));
    assert_eq!(last_line(&r.stdout), "0 passed, 1 failed, 1 skipped");
}
