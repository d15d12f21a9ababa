//! The shared SPSC ring across processes: 1 GiB of splitmix64 data in random
//! chunk sizes with both sides blocking (CRC-32 on both sides, every byte
//! verified in order), each way of sharing the ring (inheritance, SCM_RIGHTS,
//! shm name with either side first, memfd by /proc path), `kill -9` of the
//! producer and of the consumer mid-stream, clean close, and sides used twice.
//!
//! The big transfer moves 1 GiB in release builds (`make test`) and 32 MiB in
//! debug builds; `VMCIRC_COPY_BYTES` overrides it.
#![cfg(all(target_os = "linux", feature = "std"))]

mod shared_util;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use shared_util::{big_bytes, finish, inherited_fd, role, spawn, unique_name, var, Chunks};
use vmcirc::crc32::CRC32;
use vmcirc::prng::SplitMix64;
use vmcirc::vmcirc::shared::{recv_fd, send_fd, Consumer, Error, Options, Producer, SpscRing};

const SEED: u64 = 0x5eed_0011;

/// Writes `total` bytes (u64::MAX: for ever) of the stream `seed` in random
/// chunks of 1..=max, half through `writable`/`commit`, half through `Write`.
/// Returns the CRC-32 of what was written.
fn produce(tx: &mut Producer, total: u64, seed: u64, max: usize) -> u32 {
    let mut gen = SplitMix64::new(seed);
    let mut chunks = Chunks::new(seed ^ 0xc0ffee);
    let mut crc = CRC32.digest();
    let mut buf = vec![0u8; max];
    let mut sent = 0u64;
    while sent < total {
        let n = (chunks.next(max) as u64).min(total - sent) as usize;
        if chunks.coin() {
            let n = n.min(tx.capacity());
            tx.wait_writable(n, None).unwrap();
            let w = tx.writable().unwrap();
            gen.fill(&mut w[..n]);
            crc.update(&w[..n]);
            tx.commit(n).unwrap();
            sent += n as u64;
        } else {
            gen.fill(&mut buf[..n]);
            crc.update(&buf[..n]);
            tx.write_all(&buf[..n]).unwrap();
            sent += n as u64;
        }
    }
    crc.finalize()
}

/// What a consumer saw: bytes, CRC-32, bytes that differ from the stream, and how
/// the stream ended.
struct Received {
    bytes: u64,
    crc: u32,
    mismatches: u64,
    end: Result<(), Error>,
}

/// Reads until the end of the stream (or an error) in random chunks of 1..=max,
/// half zero-copy (`wait_readable` + `readable` + `consume`), half through `Read`,
/// checking every byte against the stream `seed`. Stops after `limit` bytes.
fn consume(rx: &mut Consumer, seed: u64, max: usize, limit: u64) -> Received {
    let mut gen = SplitMix64::new(seed);
    let mut chunks = Chunks::new(seed ^ 0xfeed);
    let mut crc = CRC32.digest();
    let mut buf = vec![0u8; max];
    let (mut bytes, mut mismatches) = (0u64, 0u64);
    let end = loop {
        if bytes >= limit {
            break Ok(());
        }
        let n = chunks.next(max);
        let got = if chunks.coin() {
            // Wait for one byte, not n: a consumer waiting for n buffered bytes
            // and a producer waiting for m free ones deadlock when n + m > N.
            match rx.wait_readable(1, None) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            let r = rx.readable().unwrap();
            let k = n.min(r.len());
            mismatches += gen.verify(&r[..k]);
            crc.update(&r[..k]);
            rx.consume(k).unwrap();
            k
        } else {
            match rx.read(&mut buf[..n]) {
                Ok(0) => break Ok(()),
                Ok(k) => {
                    mismatches += gen.verify(&buf[..k]);
                    crc.update(&buf[..k]);
                    k
                }
                Err(e) => {
                    break Err(*e
                        .into_inner()
                        .and_then(|b| b.downcast::<Error>().ok())
                        .expect("a shared ring error"))
                }
            }
        };
        bytes += got as u64;
    };
    Received {
        bytes,
        crc: crc.finalize(),
        mismatches,
        end,
    }
}

/// Child processes of the tests below (does nothing in a normal run).
#[test]
fn child() {
    let Some(role) = role() else { return };
    let seed: u64 = var("SEED").parse().unwrap();
    let ring = match role.as_str() {
        "producer-fd" | "consumer-fd" | "consumer-forever" | "producer-forever" => {
            SpscRing::from_fd(inherited_fd()).unwrap()
        }
        "consumer-scm" => {
            let sock = std::os::unix::net::UnixStream::from(inherited_fd());
            SpscRing::from_fd(recv_fd(&sock).unwrap()).unwrap()
        }
        "consumer-name" | "producer-name" => {
            SpscRing::open_or_create_named(&var("NAME"), &Options::new(64 * 1024)).unwrap()
        }
        "consumer-path" => SpscRing::open_path(var("RING_PATH")).unwrap(),
        other => panic!("unknown role {other}"),
    };
    let total: u64 = std::env::var("TOTAL").map_or(u64::MAX, |t| t.parse().unwrap());
    let max: usize = var("MAX").parse().unwrap();
    if role.starts_with("producer") {
        let mut tx = ring.producer().unwrap();
        let crc = produce(&mut tx, total, seed, max);
        println!("result: crc={crc:08x}");
    } else {
        let mut rx = ring.consumer().unwrap();
        let r = consume(&mut rx, seed, max, u64::MAX);
        println!(
            "result: bytes={} crc={:08x} mismatches={} end={:?}",
            r.bytes, r.crc, r.mismatches, r.end
        );
    }
}

fn envs(seed: u64, total: Option<u64>, max: usize) -> Vec<(&'static str, String)> {
    let mut v = vec![("SEED", seed.to_string()), ("MAX", max.to_string())];
    if let Some(t) = total {
        v.push(("TOTAL", t.to_string()));
    }
    v
}

fn expected_crc(seed: u64, total: u64) -> u32 {
    let mut gen = SplitMix64::new(seed);
    let mut crc = CRC32.digest();
    let mut buf = vec![0u8; 1 << 16];
    let mut left = total;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        gen.fill(&mut buf[..n]);
        crc.update(&buf[..n]);
        left -= n as u64;
    }
    crc.finalize()
}

#[test]
fn a_gibibyte_across_processes_by_inheritance() {
    if role().is_some() {
        return;
    }
    let total = big_bytes();
    // A 64 KiB ring and chunks of up to 64 KiB: each side keeps catching up with
    // the other, so both block on the futex many times.
    let ring = SpscRing::create(64 * 1024).unwrap();
    assert!(ring.is_sealed());
    let fd = ring.dup_inheritable().unwrap();
    let child = spawn(
        "child",
        "producer-fd",
        &envs(SEED, Some(total), 64 * 1024),
        Some(&fd),
    );
    drop(fd);
    let mut rx = ring.consumer().unwrap();
    let t0 = Instant::now();
    let r = consume(&mut rx, SEED, 64 * 1024, u64::MAX);
    let secs = t0.elapsed().as_secs_f64();
    let (status, lines) = finish(child);
    assert!(status.success(), "producer failed: {status}");
    r.end.unwrap();
    assert_eq!(r.bytes, total, "bytes received");
    assert_eq!(r.mismatches, 0, "bytes differing from the stream");
    assert_eq!(
        lines,
        [format!("crc={:08x}", r.crc)],
        "CRC-32 on both sides"
    );
    eprintln!(
        "{} MiB in {secs:.2} s ({:.0} MiB/s), crc32={:08x}",
        total >> 20,
        (total >> 20) as f64 / secs,
        r.crc
    );
}

#[test]
fn shared_over_scm_rights() {
    if role().is_some() {
        return;
    }
    let total = 4 << 20;
    let ring = SpscRing::create(16 * 1024).unwrap();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let theirs = inheritable(OwnedFd::from(theirs));
    let child = spawn(
        "child",
        "consumer-scm",
        &envs(SEED + 1, None, 5000),
        Some(&theirs),
    );
    drop(theirs);
    send_fd(&ours, std::os::fd::AsFd::as_fd(&ring)).unwrap();
    let mut tx = ring.producer().unwrap();
    let crc = produce(&mut tx, total, SEED + 1, 3000);
    drop(tx);
    let (status, lines) = finish(child);
    assert!(status.success());
    assert_eq!(
        lines,
        [format!(
            "bytes={total} crc={crc:08x} mismatches=0 end=Ok(())"
        )]
    );
}

fn inheritable(fd: OwnedFd) -> OwnedFd {
    let dup = rustix::io::fcntl_dupfd_cloexec(&fd, 3).unwrap();
    rustix::io::fcntl_setfd(&dup, rustix::io::FdFlags::empty()).unwrap();
    dup
}

#[test]
fn shared_by_name_either_side_first() {
    if role().is_some() {
        return;
    }
    let total: u64 = 3 << 20;
    for consumer_first in [true, false] {
        let name = unique_name("spsc");
        let mut e = envs(SEED + 2, Some(total), 7000);
        e.push(("NAME", name.clone()));
        let crc = expected_crc(SEED + 2, total);
        if consumer_first {
            let child = spawn("child", "consumer-name", &e, None);
            std::thread::sleep(Duration::from_millis(100));
            let ring = SpscRing::open_or_create_named(&name, &Options::new(64 * 1024)).unwrap();
            let mut tx = ring.producer().unwrap();
            assert_eq!(produce(&mut tx, total, SEED + 2, 7000), crc);
            drop(tx);
            let (status, lines) = finish(child);
            assert!(status.success());
            assert_eq!(
                lines,
                [format!(
                    "bytes={total} crc={crc:08x} mismatches=0 end=Ok(())"
                )]
            );
        } else {
            let child = spawn("child", "producer-name", &e, None);
            std::thread::sleep(Duration::from_millis(100));
            let ring = SpscRing::open_or_create_named(&name, &Options::new(64 * 1024)).unwrap();
            let mut rx = ring.consumer().unwrap();
            let r = consume(&mut rx, SEED + 2, 7000, u64::MAX);
            let (status, lines) = finish(child);
            assert!(status.success());
            r.end.unwrap();
            assert_eq!((r.bytes, r.crc, r.mismatches), (total, crc, 0));
            assert_eq!(lines, [format!("crc={crc:08x}")]);
        }
        SpscRing::unlink_named(&name).unwrap();
    }
}

#[test]
fn memfd_published_by_proc_path() {
    if role().is_some() {
        return;
    }
    let total: u64 = 1 << 20;
    let ring = SpscRing::create(8192).unwrap();
    let mut e = envs(SEED + 3, None, 100);
    e.push(("RING_PATH", ring.proc_path().display().to_string()));
    let child = spawn("child", "consumer-path", &e, None);
    let mut tx = ring.producer().unwrap();
    let crc = produce(&mut tx, total, SEED + 3, 100);
    drop(tx);
    let (status, lines) = finish(child);
    assert!(status.success());
    assert_eq!(
        lines,
        [format!(
            "bytes={total} crc={crc:08x} mismatches=0 end=Ok(())"
        )]
    );
}

#[test]
fn producer_killed_mid_stream() {
    if role().is_some() {
        return;
    }
    let ring = SpscRing::create(64 * 1024).unwrap();
    let fd = ring.dup_inheritable().unwrap();
    let mut child = spawn(
        "child",
        "producer-forever",
        &envs(SEED + 4, None, 4096),
        Some(&fd),
    );
    drop(fd);
    let mut rx = ring.consumer().unwrap();
    let first = consume(&mut rx, SEED + 4, 4096, 4 << 20);
    assert_eq!(first.mismatches, 0);
    // SIGKILL: no chance to close. Not reaped yet: a zombie must count as dead.
    child.kill().unwrap();
    let t0 = Instant::now();
    // The rest of the stream continues where `first` stopped.
    let mut gen = SplitMix64::new(SEED + 4);
    let mut skip = vec![0u8; first.bytes as usize];
    gen.fill(&mut skip);
    let mut drained = 0u64;
    let err = loop {
        match rx.wait_readable(1, Some(Duration::from_secs(10))) {
            Ok(0) => panic!("a killed producer must not look like a clean end"),
            Ok(_) => {
                let r = rx.readable().unwrap();
                assert_eq!(gen.verify(r), 0, "drained bytes differ");
                let n = r.len();
                drained += n as u64;
                rx.consume(n).unwrap();
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, Error::PeerDied { pid, .. } if pid == child.id()),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "death noticed late");
    assert!(drained <= 64 * 1024, "drained at most a ring: {drained}");
    // The error repeats; it does not turn into an end of stream.
    assert!(matches!(
        rx.wait_readable(1, Some(Duration::from_millis(10))),
        Err(Error::PeerDied { .. })
    ));
    child.wait().unwrap();
}

#[test]
fn consumer_killed_mid_stream() {
    if role().is_some() {
        return;
    }
    let ring = SpscRing::create(64 * 1024).unwrap();
    let fd = ring.dup_inheritable().unwrap();
    let mut child = spawn(
        "child",
        "consumer-forever",
        &envs(SEED + 5, None, 4096),
        Some(&fd),
    );
    drop(fd);
    let mut tx = ring.producer().unwrap();
    produce(&mut tx, 4 << 20, SEED + 5, 4096);
    child.kill().unwrap();
    let t0 = Instant::now();
    let chunk = vec![7u8; 4096];
    let err = loop {
        if let Err(e) = tx.push_all(&chunk, Some(Duration::from_secs(10))) {
            break e;
        }
    };
    assert!(
        matches!(err, Error::PeerDied { pid, .. } if pid == child.id()),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "death noticed late");
    // Through io::Write it is a broken pipe.
    let e = tx.write_all(&chunk).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    child.wait().unwrap();
}

#[test]
fn threads_random_chunks_and_clean_end() {
    if role().is_some() {
        return;
    }
    let ring = SpscRing::create(4096).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut rx = ring.consumer().unwrap();
    let total = 8 << 20;
    let t = std::thread::spawn(move || produce(&mut tx, total, SEED + 6, 5000));
    let r = consume(&mut rx, SEED + 6, 3000, u64::MAX);
    let crc = t.join().unwrap();
    r.end.unwrap();
    assert_eq!((r.bytes, r.crc, r.mismatches), (total, crc, 0));
    // After the end: still the end.
    assert_eq!(rx.wait_readable(1, None).unwrap(), 0);
    let mut b = [0u8; 4];
    assert_eq!(rx.read(&mut b).unwrap(), 0);
}

#[test]
fn closed_consumer_is_a_broken_pipe_and_sides_are_used_once() {
    if role().is_some() {
        return;
    }
    let ring = SpscRing::create(4096).unwrap();
    let mut tx = ring.producer().unwrap();
    let rx = ring.consumer().unwrap();
    assert!(matches!(ring.producer(), Err(Error::SideTaken { .. })));
    assert!(matches!(ring.consumer(), Err(Error::SideTaken { .. })));
    assert_eq!(tx.push(b"abc").unwrap(), 3);
    drop(rx);
    assert!(matches!(tx.push(b"d"), Err(Error::Closed(_))));
    assert!(matches!(tx.wait_writable(1, None), Err(Error::Closed(_))));
    assert_eq!(
        tx.write(b"x").unwrap_err().kind(),
        std::io::ErrorKind::BrokenPipe
    );
    drop(tx);
    let again = ring.consumer().unwrap_err();
    assert!(again.to_string().contains("already used"), "{again}");
}

#[test]
fn try_forms_and_timeouts() {
    if role().is_some() {
        return;
    }
    let ring = SpscRing::create(4096).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut rx = ring.consumer().unwrap();
    let mut b = [0u8; 8];
    assert!(matches!(rx.try_pop_exact(&mut b), Err(Error::WouldBlock)));
    assert!(matches!(
        rx.wait_readable(1, Some(Duration::from_millis(20))),
        Err(Error::TimedOut)
    ));
    tx.try_push(&[1; 4000]).unwrap();
    assert!(matches!(tx.try_push(&[2; 100]), Err(Error::WouldBlock)));
    assert!(matches!(
        tx.try_push(&[2; 5000]),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        tx.wait_writable(100, Some(Duration::from_millis(20))),
        Err(Error::TimedOut)
    ));
    assert_eq!(tx.push(&[3; 200]).unwrap(), 96, "what fits");
    assert!(matches!(
        rx.try_pop_exact(&mut [0; 4097]),
        Err(Error::WouldBlock)
    ));
    rx.try_pop_exact(&mut b).unwrap();
    assert_eq!(b, [1; 8]);
    assert_eq!(rx.readable().unwrap().len(), 4088);
    // commit/consume beyond what is there: errors that change nothing.
    assert!(matches!(tx.commit(9), Err(Error::Overflow { .. })));
    assert!(matches!(rx.consume(4089), Err(Error::Underflow { .. })));
    assert_eq!(rx.readable().unwrap().len(), 4088);
    // The free space wraps the end of the data area: still one slice.
    rx.consume(4088).unwrap();
    let w = tx.writable().unwrap();
    assert_eq!(w.len(), 4096);
    w.copy_from_slice(&[9; 4096]);
    tx.commit(4096).unwrap();
    assert_eq!(rx.readable().unwrap(), &[9; 4096][..]);
}
