//! Is the peer process still alive? (Linux)
//!
//! Each side writes its owner word (pid and the low 32 bits of its start time in
//! clock ticks since boot, from `/proc/self/stat`) and its pid namespace into the
//! header when it attaches, and marks itself CLOSED when it detaches cleanly. A
//! peer that is about to wait longer than a short slice checks a side that is
//! still ATTACHED through a **pidfd**:
//!
//! - `pidfd_open(pid)` failing with `ESRCH`: dead.
//! - Otherwise the pidfd pins that process; its start time (read once from
//!   `/proc/PID/stat`) must equal the owner word's, else the pid was reused by a
//!   new process: the owner is dead.
//! - The pidfd becomes readable when the process exits (zombies included), so
//!   later checks are one `poll` with a zero timeout, no `/proc` parsing.
//!
//! Why not a robust futex: the kernel's robust list is per thread (the list of
//! the thread that attached, while our halves are `Send` and may move), and
//! glibc owns each thread's list head, so registering our own would clobber
//! it. Why not a heartbeat: a live but idle peer (a sender blocked on its own
//! input) would need a timer thread to keep beating, and death would only be
//! noticed after a timeout. A pidfd gives an exact answer at any time, with no
//! cooperation from the peer, at the cost of one syscall per check, which only
//! happens while a side is waiting anyway.
//!
//! Limits: the two processes must share a pid namespace; when the namespaces
//! differ (recorded in the header) the peer counts as alive and only its clean
//! close or the caller's timeout ends a wait. Without pidfd (Linux < 5.3) the
//! check falls back to `/proc/PID/stat` (exists, same start time, not a zombie).

use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::header::{pack_owner, unpack_owner};

/// This process: its owner word and pid namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Me {
    pub owner: u64,
    pub pidns: u64,
}

/// This process's identity for the header.
pub(crate) fn me() -> Me {
    let pid = std::process::id();
    Me {
        owner: pack_owner(pid, start_time(pid).map_or(0, |(t, _)| t as u32)),
        pidns: pidns(),
    }
}

/// Field 22 (start time in clock ticks) and field 3 (state) of `/proc/PID/stat`.
fn start_time(pid: u32) -> Option<(u64, u8)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // `rest` starts at field 3; the start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// Inode of `/proc/self/ns/pid`, 0 when unknown.
fn pidns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// The liveness of one owner, with its pidfd kept between checks.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    owner: u64,
    pidfd: Option<OwnedFd>,
    dead: bool,
}

impl Watch {
    /// Whether the process of `owner` (in pid namespace `their_ns`) has died.
    /// `owner == 0` (never attached) and a foreign namespace count as alive.
    pub fn is_dead(&mut self, owner: u64, their_ns: u64, my_ns: u64) -> bool {
        if owner == 0 || (their_ns != 0 && my_ns != 0 && their_ns != my_ns) {
            return false;
        }
        if owner != self.owner {
            *self = Watch {
                owner,
                pidfd: None,
                dead: false,
            };
            self.open();
        }
        if !self.dead {
            if let Some(fd) = &self.pidfd {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let ts = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                if poll(&mut fds, Some(&ts)).is_ok_and(|n| n > 0) {
                    self.dead = true;
                }
            } else {
                self.dead = proc_says_dead(owner);
            }
        }
        self.dead
    }

    fn open(&mut self) {
        let (pid, start) = unpack_owner(self.owner);
        let Some(p) = Pid::from_raw(pid as i32) else {
            self.dead = true;
            return;
        };
        match pidfd_open(p, PidfdFlags::empty()) {
            Ok(fd) => {
                // The pidfd pins the process now; make sure it is the one that
                // attached and not a later process that got the same pid.
                if start != 0 {
                    if let Some((t, _)) = start_time(pid) {
                        if t as u32 != start {
                            self.dead = true;
                        }
                    }
                }
                let _ = fd.as_fd();
                self.pidfd = Some(fd);
            }
            Err(rustix::io::Errno::SRCH) => self.dead = true,
            Err(_) => self.dead = proc_says_dead(self.owner),
        }
    }
}

/// The `/proc` fallback: gone, another process with the same pid, or a zombie.
fn proc_says_dead(owner: u64) -> bool {
    let (pid, start) = unpack_owner(owner);
    match start_time(pid) {
        None => std::path::Path::new("/proc/self/stat").exists(),
        Some((t, state)) => (start != 0 && t as u32 != start) || state == b'Z' || state == b'X',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_dead() {
        let m = me();
        assert_eq!(unpack_owner(m.owner).0, std::process::id());
        assert_ne!(unpack_owner(m.owner).1, 0, "start time from /proc");
        let mut w = Watch::default();
        assert!(!w.is_dead(m.owner, m.pidns, m.pidns));
        assert!(!w.is_dead(0, 0, 0), "never attached");

        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = child.id();
        let owner = pack_owner(pid, start_time(pid).unwrap().0 as u32);
        let mut w = Watch::default();
        assert!(!w.is_dead(owner, m.pidns, m.pidns));
        child.kill().unwrap();
        // Killed but not reaped: a zombie is dead too.
        let t0 = std::time::Instant::now();
        while !w.is_dead(owner, m.pidns, m.pidns) {
            assert!(t0.elapsed().as_secs() < 5, "kill not noticed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.wait().unwrap();
        let mut w = Watch::default();
        assert!(w.is_dead(owner, m.pidns, m.pidns), "reaped");
        // A live pid with another start time: the pid was reused.
        let mut w = Watch::default();
        let reused = pack_owner(std::process::id(), unpack_owner(m.owner).1 ^ 1);
        assert!(w.is_dead(reused, m.pidns, m.pidns));
        // A foreign pid namespace cannot be checked: alive.
        let mut w = Watch::default();
        assert!(!w.is_dead(owner, m.pidns + 1, m.pidns));
    }
}
