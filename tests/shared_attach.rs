//! Attaching to a shared ring treats the file as untrusted: corrupted header
//! fields, impossible counters (at attach time and while running), record
//! headers and random header bytes give errors, never a crash; a truncated file
//! is an error at attach time, never a SIGBUS; an anonymous ring is sealed
//! against resizing; names are checked.
#![cfg(all(target_os = "linux", feature = "std"))]

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use vmcirc::prng::SplitMix64;
use vmcirc::vmcirc::shared::{Error, MpscRing, Options, SpscRing};

// Header layout (src/vmcirc/shared/header.rs): line 0 at 0, `tail` at 128,
// `head` at 256, futex words at 384 and 512, consumer side at 640, producer
// side at 768. The data area starts at the page after the header.
const MAGIC: u64 = 0;
const VERSION: u64 = 8;
const KIND: u64 = 12;
const CAPACITY: u64 = 16;
const DATA_OFFSET: u64 = 24;
const HEADER_SIZE: u64 = 32;
const TAIL: u64 = 128;
const HEAD: u64 = 256;

fn page() -> u64 {
    rustix::param::page_size() as u64
}

fn poke(fd: impl AsFd, at: u64, bytes: &[u8]) {
    assert_eq!(rustix::io::pwrite(fd, bytes, at).unwrap(), bytes.len());
}

fn dup(fd: impl AsFd) -> OwnedFd {
    rustix::io::fcntl_dupfd_cloexec(fd, 3).unwrap()
}

#[test]
fn corrupted_header_fields_are_errors() {
    let p = page();
    type Check = fn(&Error) -> bool;
    let cases: Vec<(&str, u64, Vec<u8>, Check)> = vec![
        ("magic", MAGIC, 0u64.to_le_bytes().to_vec(), |e| {
            matches!(e, Error::NotInitialised)
        }),
        ("version", VERSION, 99u32.to_le_bytes().to_vec(), |e| {
            matches!(e, Error::BadVersion(99))
        }),
        ("kind", KIND, 2u32.to_le_bytes().to_vec(), |e| {
            matches!(e, Error::WrongKind { .. })
        }),
        ("kind 7", KIND, 7u32.to_le_bytes().to_vec(), |e| {
            matches!(e, Error::WrongKind { found: 7, .. })
        }),
        ("capacity 0", CAPACITY, 0u64.to_le_bytes().to_vec(), |e| {
            matches!(e, Error::Corrupt { .. })
        }),
        (
            "capacity odd",
            CAPACITY,
            (p + 1).to_le_bytes().to_vec(),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        (
            "capacity huge",
            CAPACITY,
            (!0xFFFFu64).to_le_bytes().to_vec(),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        (
            "capacity > file",
            CAPACITY,
            (4 * p).to_le_bytes().to_vec(),
            |e| matches!(e, Error::Truncated { .. }),
        ),
        (
            "data offset 0",
            DATA_OFFSET,
            0u64.to_le_bytes().to_vec(),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        (
            "data offset odd",
            DATA_OFFSET,
            100u64.to_le_bytes().to_vec(),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        (
            "data offset beyond",
            DATA_OFFSET,
            (2 * p).to_le_bytes().to_vec(),
            |e| matches!(e, Error::Truncated { .. }),
        ),
        (
            "header size",
            HEADER_SIZE,
            1u32.to_le_bytes().to_vec(),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        (
            "tail beyond capacity",
            TAIL,
            (2 * p + 1).to_le_bytes().to_vec(),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        ("head beyond tail", HEAD, 5u64.to_le_bytes().to_vec(), |e| {
            matches!(e, Error::Corrupt { .. })
        }),
    ];
    for (name, at, bytes, want) in cases {
        let ring = SpscRing::create(2 * p as usize).unwrap();
        poke(&ring, at, &bytes);
        let e = SpscRing::from_fd(dup(&ring)).expect_err(name);
        assert!(want(&e), "{name}: {e}");
        // One line, saying what is wrong.
        assert!(!e.to_string().contains('\n'), "{name}: {e}");
    }
}

#[test]
fn random_header_fields_never_crash() {
    let p = page();
    let mut g = SplitMix64::new(11);
    let fields = [
        (CAPACITY, 8),
        (DATA_OFFSET, 8),
        (HEADER_SIZE, 4),
        (TAIL, 8),
        (HEAD, 8),
    ];
    let mut accepted = 0;
    for _ in 0..300 {
        let ring = SpscRing::create(p as usize).unwrap();
        for _ in 0..1 + g.below_inclusive(3) {
            let (at, len) = fields[g.below_inclusive(5) as usize - 1];
            // Values near the valid ones and anywhere.
            let v = match g.below_inclusive(4) {
                1 => g.next_u64(),
                2 => g.below_inclusive(3 * p),
                3 => p * g.below_inclusive(4),
                _ => u64::MAX - g.below_inclusive(p),
            };
            poke(&ring, at, &v.to_le_bytes()[..len]);
        }
        let Ok(r) = SpscRing::from_fd(dup(&ring)) else {
            continue;
        };
        accepted += 1;
        // Whatever was accepted is safe to use: operations succeed or fail.
        if let (Ok(mut tx), Ok(mut rx)) = (r.producer(), r.consumer()) {
            let _ = tx.push(&[1; 100]);
            let _ = rx.pop(&mut [0; 50]);
            let _ = rx.readable().map(|s| s.len());
            let _ = tx.writable().map(|s| s.len());
        }
    }
    assert!(accepted > 0, "some valid positions were generated");
}

#[test]
fn corrupted_counters_while_running() {
    let ring = SpscRing::create(4096).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut rx = ring.consumer().unwrap();
    tx.push(b"hello").unwrap();
    assert_eq!(rx.readable().unwrap(), b"hello");
    // The "producer" claims more than the capacity, or goes backwards.
    poke(&ring, TAIL, &100_000u64.to_le_bytes());
    assert!(matches!(rx.readable(), Err(Error::Corrupt { .. })));
    assert!(matches!(
        rx.wait_readable(10, Some(Duration::from_millis(10))),
        Err(Error::Corrupt { .. })
    ));
    poke(&ring, TAIL, &2u64.to_le_bytes());
    let e: std::io::Error = rx.readable().unwrap_err().into();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    // The "consumer" reads past the write position.
    poke(&ring, HEAD, &6u64.to_le_bytes());
    assert!(matches!(tx.writable(), Err(Error::Corrupt { .. })));
    // An error changed nothing on our side.
    poke(&ring, TAIL, &5u64.to_le_bytes());
    poke(&ring, HEAD, &0u64.to_le_bytes());
    assert_eq!(rx.readable().unwrap(), b"hello");
}

#[test]
fn corrupted_record_header_is_an_error() {
    let p = page();
    let ring = MpscRing::create(4096).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut rx = ring.consumer().unwrap();
    tx.send(b"abc", None).unwrap();
    // Record header word: len 3 | COMMITTED << 32 | tag 0. Make it claim 5000 bytes.
    poke(&ring, p, &(5000u64 | 2 << 32).to_le_bytes());
    assert!(matches!(rx.try_recv(), Err(Error::Corrupt { .. })));
    // A header that belongs to another position.
    poke(&ring, p, &(3u64 | 2 << 32 | 1 << 34).to_le_bytes());
    assert!(matches!(rx.try_recv(), Err(Error::Corrupt { .. })));
    poke(&ring, p, &(3u64 | 2 << 32).to_le_bytes());
    assert_eq!(&*rx.try_recv().unwrap(), b"abc");
}

#[test]
fn truncated_file_is_an_error_not_sigbus() {
    let p = page();
    let name = format!("/vmcirc-test-trunc-{}", std::process::id());
    let ring = SpscRing::create_named(&name, &Options::new(4 * p as usize)).unwrap();
    assert!(!ring.is_sealed(), "shm files cannot be sealed");
    for (len, truncated) in [(p + 100, true), (2 * p, true), (9 * p, true), (0, false)] {
        rustix::fs::ftruncate(&ring, len).unwrap();
        match SpscRing::open_named(&name) {
            Err(Error::Truncated { file_len, expected }) if truncated => {
                assert_eq!((file_len, expected), (len, 5 * p));
            }
            Err(Error::NotInitialised) if !truncated => {}
            other => panic!("size {len}: {other:?}"),
        }
    }
    SpscRing::unlink_named(&name).unwrap();
}

#[test]
fn anonymous_rings_are_sealed() {
    let ring = SpscRing::create(4096).unwrap();
    assert!(ring.is_sealed());
    let e = rustix::fs::ftruncate(&ring, 100).unwrap_err();
    assert_eq!(e, rustix::io::Errno::PERM);
    let e = rustix::fs::ftruncate(&ring, 1 << 20).unwrap_err();
    assert_eq!(e, rustix::io::Errno::PERM);
}

#[test]
fn names_kinds_and_uninitialised_files() {
    for bad in ["", "/", "noslash", "/a/b", "/.", "/..", "/a\0b"] {
        assert!(SpscRing::open_named(bad).is_err(), "{bad:?}");
    }
    let long = format!("/{}", "x".repeat(300));
    assert!(SpscRing::create_named(&long, &Options::new(4096)).is_err());
    // A ring of the other kind.
    let m = MpscRing::create(4096).unwrap();
    assert!(matches!(
        SpscRing::from_fd(dup(&m)),
        Err(Error::WrongKind { .. })
    ));
    // A file created by someone who never initialised it: open_or_create gives
    // up after its wait, with a clear error.
    let name = format!("/vmcirc-test-uninit-{}", std::process::id());
    let fd = rustix::shm::open(
        name.as_str(),
        rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL | rustix::shm::OFlags::RDWR,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    let t0 = Instant::now();
    let e = SpscRing::open_or_create_named(
        &name,
        &Options::new(4096).init_wait(Duration::from_millis(100)),
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotInitialised), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    // Once it exists and is valid, both ways attach.
    drop(fd);
    SpscRing::unlink_named(&name).unwrap();
    let a = SpscRing::open_or_create_named(&name, &Options::new(4096)).unwrap();
    let b = SpscRing::open_or_create_named(&name, &Options::new(4096)).unwrap();
    assert_eq!(a.capacity(), b.capacity());
    assert!(matches!(
        SpscRing::create_named(&name, &Options::new(4096)),
        Err(Error::Os(_))
    ));
    SpscRing::unlink_named(&name).unwrap();
}

/// A forked child attaches from the descriptor it inherited (a fresh mapping of
/// its own, not the parent's: those are `MADV_DONTFORK` where the fork can be
/// detected), writes through it, and drops the handle it inherited without
/// unmapping anything of its own; the parent's consumer, on its own mappings,
/// reads what the child wrote.
#[test]
fn forked_child_attaches_from_the_descriptor() {
    let ring = SpscRing::create(1).unwrap();
    let mut rx = ring.consumer().unwrap();
    // SAFETY: the child only attaches, writes, drops and leaves with `_exit`,
    // never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = (|| {
            let mine = SpscRing::from_fd(dup(&ring)).map_err(|_| 1)?;
            let mut tx = mine.producer().map_err(|_| 2)?;
            // The inherited handle: dropping it unmaps nothing of the child's.
            drop(ring);
            tx.push_all(b"from the child", Some(Duration::from_secs(10)))
                .map_err(|_| 3)?;
            drop(tx);
            drop(mine);
            Ok::<i32, i32>(0)
        })()
        .unwrap_or_else(|c| c);
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status),
        "child killed by signal {}",
        libc::WTERMSIG(status)
    );
    assert_eq!(libc::WEXITSTATUS(status), 0, "failed step");
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut rx, &mut got).unwrap();
    assert_eq!(got, b"from the child");
}
