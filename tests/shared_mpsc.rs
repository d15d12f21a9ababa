//! The shared MPSC record ring across processes: 4 producer processes sending
//! records of (producer id, sequence, random payload, CRC-32) that arrive
//! exactly once, in per-producer order, intact; a producer killed with a record
//! reserved but not committed (the consumer skips it after the stall timeout and
//! reports it); a consumer killed while producers wait for space; aborted
//! records; whole-ring records across the wrap; the producer slot limit.
#![cfg(all(target_os = "linux", feature = "std"))]

mod shared_util;

use std::io::BufRead;
use std::time::{Duration, Instant};

use shared_util::{finish, inherited_fd, role, spawn, var};
use vmcirc::crc32::crc32;
use vmcirc::prng::SplitMix64;
use vmcirc::vmcirc::shared::{Error, MpscConsumer, MpscProducer, MpscRing};

/// Record: id (u32), seq (u64), crc32 of the payload (u32), payload.
fn record(id: u32, seq: u64) -> Vec<u8> {
    let mut g = SplitMix64::new(u64::from(id) << 40 | seq);
    let len = g.below_inclusive(300) as usize - 1;
    let mut payload = vec![0u8; len];
    g.fill(&mut payload);
    let mut r = Vec::with_capacity(16 + len);
    r.extend_from_slice(&id.to_le_bytes());
    r.extend_from_slice(&seq.to_le_bytes());
    r.extend_from_slice(&crc32(&payload).to_le_bytes());
    r.extend_from_slice(&payload);
    r
}

/// Checks a record; returns (id, seq).
fn check(r: &[u8]) -> (u32, u64) {
    assert!(r.len() >= 16, "short record: {} bytes", r.len());
    let id = u32::from_le_bytes(r[0..4].try_into().unwrap());
    let seq = u64::from_le_bytes(r[4..12].try_into().unwrap());
    let crc = u32::from_le_bytes(r[12..16].try_into().unwrap());
    assert_eq!(crc32(&r[16..]), crc, "payload of {id}/{seq} damaged");
    assert_eq!(r, record(id, seq), "record {id}/{seq} differs");
    (id, seq)
}

fn send_all(p: &mut MpscProducer, id: u32, count: u64) {
    for seq in 0..count {
        let rec = record(id, seq);
        if seq % 3 == 0 {
            // Zero-copy: reserve, write in place, commit.
            let mut r = p.reserve(rec.len(), None).unwrap();
            r.copy_from_slice(&rec);
            r.commit();
        } else {
            p.send(&rec, None).unwrap();
        }
    }
}

/// The next `result: ` line a child prints (the test harness prints others).
fn result_line(out: &mut impl BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
        if let Some(r) = line.trim_end().strip_prefix("result: ") {
            return r.to_owned();
        }
    }
}

#[test]
fn child() {
    let Some(role) = role() else { return };
    let ring = MpscRing::from_fd(inherited_fd()).unwrap();
    match role.as_str() {
        "producer" => {
            let id: u32 = var("ID").parse().unwrap();
            let count: u64 = var("COUNT").parse().unwrap();
            let mut p = ring.producer().unwrap();
            send_all(&mut p, id, count);
            println!("result: sent {count}");
        }
        "producer-dies-reserved" => {
            let mut p = ring.producer().unwrap();
            let mut r = p.reserve(100, None).unwrap();
            r[..4].copy_from_slice(b"half");
            println!("result: reserved");
            std::thread::sleep(Duration::from_secs(60));
            r.commit();
        }
        "consumer-idle" => {
            let _c = ring.consumer().unwrap();
            println!("result: attached");
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
}

/// Receives until the end of the stream of `producers` producers; returns the
/// next expected sequence number of each.
fn receive(rx: &mut MpscConsumer, producers: u32) -> Vec<u64> {
    let mut next = vec![0u64; producers as usize];
    loop {
        let got = rx.recv(Some(Duration::from_secs(60))).map(|r| check(&r));
        match got {
            Ok((id, seq)) => {
                assert!(id < producers, "unknown producer {id}");
                assert_eq!(
                    seq, next[id as usize],
                    "producer {id}: out of order or duplicate"
                );
                next[id as usize] += 1;
            }
            // An early end: a producer finished before the others attached.
            Err(Error::Closed(_)) if rx.producers_seen() < producers => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Error::Closed(_)) => return next,
            Err(e) => panic!("recv: {e}"),
        }
    }
}

#[test]
fn four_producer_processes_exactly_once_in_order() {
    if role().is_some() {
        return;
    }
    let count: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let ring = MpscRing::create(64 * 1024).unwrap();
    let fd = ring.dup_inheritable().unwrap();
    let children: Vec<_> = (0..4u32)
        .map(|id| {
            spawn(
                "child",
                "producer",
                &[("ID", id.to_string()), ("COUNT", count.to_string())],
                Some(&fd),
            )
        })
        .collect();
    drop(fd);
    let mut rx = ring.consumer().unwrap();
    let next = receive(&mut rx, 4);
    for c in children {
        let (status, lines) = finish(c);
        assert!(status.success());
        assert_eq!(lines, [format!("sent {count}")]);
    }
    assert_eq!(next, [count; 4], "every record of every producer");
    assert_eq!(rx.lost(), (0, 0));
}

#[test]
fn killed_producer_with_a_reserved_record_is_skipped_and_reported() {
    if role().is_some() {
        return;
    }
    let ring = MpscRing::create(16 * 1024).unwrap();
    let fd = ring.dup_inheritable().unwrap();
    let mut child = spawn("child", "producer-dies-reserved", &[], Some(&fd));
    drop(fd);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    assert_eq!(result_line(&mut out), "reserved");
    // A live producer sends behind the stuck record.
    let mut p = ring.producer().unwrap();
    send_all(&mut p, 0, 10);
    let mut rx = ring.consumer().unwrap();
    rx.set_stall_timeout(Duration::from_millis(50));
    // While the owner lives, the record is waited for, never skipped.
    assert!(matches!(
        rx.recv(Some(Duration::from_millis(200))),
        Err(Error::TimedOut)
    ));
    child.kill().unwrap();
    let t0 = Instant::now();
    let e = rx.recv(Some(Duration::from_secs(10))).err().unwrap();
    assert!(
        matches!(e, Error::Lost { pid, bytes: 120 } if pid == child.id()),
        "{e}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(rx.lost(), (1, 120));
    for seq in 0..10 {
        let r = rx.recv(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(check(&r), (0, seq));
    }
    drop(p);
    assert!(matches!(
        rx.recv(Some(Duration::from_secs(1))),
        Err(Error::Closed(_))
    ));
    child.wait().unwrap();
}

#[test]
fn killed_consumer_fails_a_waiting_producer() {
    if role().is_some() {
        return;
    }
    let ring = MpscRing::create(4096).unwrap();
    let fd = ring.dup_inheritable().unwrap();
    let mut child = spawn("child", "consumer-idle", &[], Some(&fd));
    drop(fd);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    assert_eq!(result_line(&mut out), "attached");
    let mut p = ring.producer().unwrap();
    while p.try_send(&[1; 100]).is_ok() {}
    assert!(matches!(p.try_send(&[1; 100]), Err(Error::WouldBlock)));
    child.kill().unwrap();
    let t0 = Instant::now();
    let e = p
        .send(&[2; 100], Some(Duration::from_secs(10)))
        .unwrap_err();
    assert!(
        matches!(e, Error::PeerDied { pid, .. } if pid == child.id()),
        "{e}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    child.wait().unwrap();
}

#[test]
fn threads_aborts_and_whole_ring_records() {
    if role().is_some() {
        return;
    }
    let ring = MpscRing::create(4096).unwrap();
    assert_eq!(ring.max_record(), 4096 - 16);
    let mut rx = ring.consumer().unwrap();
    let mut p = ring.producer().unwrap();
    // A record as large as the ring, placed across the end of the data area.
    p.send(&[0; 100], None).unwrap();
    drop(rx.recv(None).unwrap());
    let big: Vec<u8> = (0..4080u32).map(|i| i as u8).collect();
    p.send(&big, None).unwrap();
    assert!(matches!(p.try_send(b"x"), Err(Error::WouldBlock)));
    assert_eq!(&*rx.recv(None).unwrap(), &big[..]);
    assert!(matches!(
        p.try_send(&[0; 4081]),
        Err(Error::TooLarge { .. })
    ));
    // An aborted reservation is skipped silently.
    drop(p.reserve(10, None).unwrap());
    p.send(b"after", None).unwrap();
    assert_eq!(&*rx.recv(None).unwrap(), b"after");
    assert_eq!(rx.lost(), (0, 0));
    assert!(matches!(rx.try_recv(), Err(Error::WouldBlock)));
    drop(p);
    // Three producer threads, small ring: everyone blocks, all arrive in order.
    let count = if cfg!(debug_assertions) {
        5_000
    } else {
        50_000
    };
    let threads: Vec<_> = (0..3u32)
        .map(|id| {
            let mut p = ring.producer().unwrap();
            std::thread::spawn(move || send_all(&mut p, id, count))
        })
        .collect();
    let next = receive(&mut rx, 3);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(next, [count; 3]);
}

#[test]
fn sixteen_producer_slots_reused_after_close() {
    if role().is_some() {
        return;
    }
    let ring = MpscRing::create(4096).unwrap();
    let mut ps: Vec<_> = (0..16).map(|_| ring.producer().unwrap()).collect();
    assert!(matches!(ring.producer(), Err(Error::NoProducerSlot)));
    let freed = ps.remove(5).slot();
    assert_eq!(ring.producer().unwrap().slot(), freed);
    let _c = ring.consumer().unwrap();
    assert!(matches!(ring.consumer(), Err(Error::SideTaken { .. })));
}
