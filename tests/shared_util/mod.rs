//! Helpers for the cross-process shared-ring tests: a test binary re-runs itself
//! as a child process in a given role (`VMCIRC_CHILD`), optionally inheriting a
//! descriptor (`VMCIRC_FD`).
#![allow(dead_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use vmcirc::prng::SplitMix64;

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var("VMCIRC_CHILD").ok()
}

/// An environment variable of the child's (panics if missing: a test bug).
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
}

/// The descriptor the child inherited.
pub fn inherited_fd() -> OwnedFd {
    let n: i32 = var("VMCIRC_FD").parse().unwrap();
    // SAFETY: the parent passed this descriptor number, open and without
    // close-on-exec, for this process to own.
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// Starts this test binary as a child running only `entry` in `role`.
pub fn spawn(entry: &str, role: &str, envs: &[(&str, String)], fd: Option<&OwnedFd>) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([entry, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("VMCIRC_CHILD", role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        c.env(k, v);
    }
    if let Some(fd) = fd {
        c.env("VMCIRC_FD", fd.as_raw_fd().to_string());
    }
    c.spawn().unwrap()
}

/// Waits for a child and returns its stdout lines that start with `result:`.
pub fn finish(child: Child) -> (std::process::ExitStatus, Vec<String>) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines = text
        .lines()
        .filter_map(|l| l.strip_prefix("result: ").map(str::to_owned))
        .collect();
    (out.status, lines)
}

/// Random chunk sizes in 1..=max.
pub struct Chunks(SplitMix64);

impl Chunks {
    pub fn new(seed: u64) -> Self {
        Chunks(SplitMix64::new(seed))
    }
    pub fn next(&mut self, max: usize) -> usize {
        self.0.below_inclusive(max as u64) as usize
    }
    pub fn coin(&mut self) -> bool {
        self.0.next_u64() & 1 == 1
    }
}

/// Bytes to move in a big transfer: `VMCIRC_COPY_BYTES`, else 1 GiB in release
/// builds and 32 MiB in debug builds.
pub fn big_bytes() -> u64 {
    std::env::var("VMCIRC_COPY_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            32 << 20
        } else {
            1 << 30
        })
}

/// A unique shm name for this test run.
pub fn unique_name(tag: &str) -> String {
    format!(
        "/vmcirc-test-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}
