//! `vmcirc ipc send` / `recv` between two processes: either started first, files
//! and stdin/stdout, exit codes and one-line errors (vanished sender after its
//! data, vanished receiver, bad names, missing input), `ipc rm`.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmcirc::prng::SplitMix64;

const BIN: &str = env!("CARGO_BIN_EXE_vmcirc");

fn name(tag: &str) -> String {
    format!("test-{tag}-{}", std::process::id())
}

fn shm_exists(name: &str) -> bool {
    Path::new(&format!("/dev/shm/vmcirc.{name}")).exists()
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    SplitMix64::new(seed).fill(&mut v);
    v
}

fn vmcirc(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    c
}

fn wait_timeout(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("process did not finish in {secs} s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn files_either_side_first() {
    let dir = tempfile::tempdir().unwrap();
    // Larger than the ring: the sender blocks until the receiver drains.
    let a = dir.path().join("a");
    std::fs::write(&a, data(5 << 20, 1)).unwrap();
    for recv_first in [true, false] {
        let n = name(if recv_first { "rf" } else { "sf" });
        let b = dir.path().join(format!("b-{recv_first}"));
        let recv_args = [
            "ipc",
            "recv",
            &n,
            b.to_str().unwrap(),
            "--capacity",
            "65536",
        ];
        let send_args = ["ipc", "send", &n, a.to_str().unwrap()];
        let (first, second) = if recv_first {
            (recv_args.as_slice(), send_args.as_slice())
        } else {
            (send_args.as_slice(), recv_args.as_slice())
        };
        let mut c1 = vmcirc(first).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut c2 = vmcirc(second).spawn().unwrap();
        assert!(wait_timeout(&mut c1, 60).success(), "{first:?}");
        assert!(wait_timeout(&mut c2, 60).success());
        assert_eq!(std::fs::read(&b).unwrap(), std::fs::read(&a).unwrap());
        assert!(!shm_exists(&n), "recv removes the name at the end");
    }
}

#[test]
fn stdin_to_stdout_through_a_shell_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, data(3 << 20, 2)).unwrap();
    let n = name("sh");
    // The README's example, literally: `recv > b &` then `send < a`.
    let script = format!(
        "{BIN} ipc recv {n} > {b} & {BIN} ipc send {n} < {a}; s=$?; wait $!; r=$?; echo $s $r",
        b = b.display(),
        a = a.display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0 0");
    assert_eq!(std::fs::read(&b).unwrap(), std::fs::read(&a).unwrap());
    // An empty stream.
    let n = name("empty");
    let script = format!("{BIN} ipc send {n} < /dev/null && {BIN} ipc recv {n} | wc -c");
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[test]
fn vanished_sender_is_an_error_after_its_data() {
    let n = name("kill-send");
    let mut send = vmcirc(&["ipc", "send", &n])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut recv = vmcirc(&["ipc", "recv", &n])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let payload = data(100_000, 3);
    send.stdin.as_mut().unwrap().write_all(&payload).unwrap();
    // Wait until the receiver has it all, then kill the sender mid-stream.
    let mut out = recv.stdout.take().unwrap();
    let mut got = vec![0u8; payload.len()];
    out.read_exact(&mut got).unwrap();
    assert_eq!(got, payload);
    send.kill().unwrap();
    let status = wait_timeout(&mut recv, 10);
    let err = stderr_of(&mut recv);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("sender") && err.contains("vanished") && err.contains("100000 bytes"),
        "{err}"
    );
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    send.wait().unwrap();
    assert!(!shm_exists(&n));
}

#[test]
fn failed_input_is_not_a_clean_end() {
    // Reading a directory fails (EISDIR) after the ring is set up: the receiver
    // must report a vanished sender, not a complete (empty) stream.
    let n = name("bad-input");
    let mut recv = vmcirc(&["ipc", "recv", &n])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let send = vmcirc(&["ipc", "send", &n, "/"]).output().unwrap();
    let e = String::from_utf8_lossy(&send.stderr);
    assert_eq!(send.status.code(), Some(1), "{e}");
    assert!(e.contains("reading the input"), "{e}");
    let status = wait_timeout(&mut recv, 10);
    let err = stderr_of(&mut recv);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("vanished"), "{err}");
    assert!(!shm_exists(&n));
}

#[test]
fn vanished_receiver_fails_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, data(1 << 20, 4)).unwrap();
    let n = name("kill-recv");
    // A receiver that reads nothing: stop it before it drains, then kill it.
    let mut recv = vmcirc(&["ipc", "recv", &n, "--capacity", "4096"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&recv),
        rustix::process::Signal::STOP,
    )
    .unwrap();
    let mut send = vmcirc(&["ipc", "send", &n, a.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    recv.kill().unwrap();
    recv.wait().unwrap();
    let status = wait_timeout(&mut send, 10);
    let err = stderr_of(&mut send);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("receiver"),
        "{err}"
    );
    // The killed receiver could not remove the name; `ipc rm` does.
    assert!(shm_exists(&n));
    let again = vmcirc(&["ipc", "recv", &n]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    let e = String::from_utf8_lossy(&again.stderr);
    assert!(e.contains("ipc rm"), "{e}");
    assert!(vmcirc(&["ipc", "rm", &n]).status().unwrap().success());
    assert!(!shm_exists(&n));
}

#[test]
fn bad_input_changes_nothing() {
    let n = name("bad");
    for args in [
        vec!["ipc", "send", "a/b"],
        vec!["ipc", "recv", ""],
        vec!["ipc", "send", &n, "/nonexistent/file"],
        vec!["ipc", "send", &n, "--timeout=-1"],
        vec!["ipc", "rm", &n],
    ] {
        let out = vmcirc(&args).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(!shm_exists(&n), "{args:?} created the ring");
    }
    // Usage errors are clap's (status 2).
    let out = vmcirc(&["ipc", "send"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
