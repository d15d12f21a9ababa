//! The Linux leapfrog ring end to end: a long PRNG stream through a one-page
//! ring (re-basing a few times on the way), checksummed on both sides, with the ring's entries in
//! `/proc/self/maps` counted along the way (they must not grow: returned pages
//! merge back into the reservation); the same with huge pages where the system
//! has them; re-bases over a small reservation; a forked child; no leaks.
//!
//! The stream is 16 GiB in release builds (`make test` runs `cargo test
//! --release`) and 64 MiB in debug builds; `VMCIRC_LEAP_BYTES` overrides it.
#![cfg(all(target_os = "linux", feature = "std"))]

use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::time::Instant;

use vmcirc::prng::SplitMix64;
use vmcirc::vmcirc::{LeapfrogOptions, LeapfrogRing};
use vmcirc::ByteRing;

/// The tests count process-wide descriptors and mappings: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn page() -> usize {
    rustix::param::page_size()
}

/// `(entries of the whole process, entries inside [base, base + len))` in
/// `/proc/self/maps`. The kernel produces the file a page of text at a time;
/// when another thread changes its mappings in between, an entry can be listed
/// twice, so repeats are dropped.
fn maps_entries(base: usize, len: usize) -> (usize, usize) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut inside = 0;
    let mut all = 0;
    let mut last = "";
    for line in maps.lines() {
        if line == last {
            continue;
        }
        last = line;
        all += 1;
        let range = line.split_whitespace().next().unwrap();
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            usize::from_str_radix(a, 16).unwrap(),
            usize::from_str_radix(b, 16).unwrap(),
        );
        if a < base + len && b > base {
            inside += 1;
        }
    }
    (all, inside)
}

/// Maps entries the test harness may add meanwhile (other tests' threads, each
/// a stack and a guard page, started while they wait for [`SERIAL`]).
const SLACK: usize = 8;

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Slice-by-16 tables: the checksum must not be the bottleneck.
const CRC: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// Hands out `left` PRNG bytes, a varying amount per read (so the positions go
/// everywhere in a page), and checksums them.
struct Source {
    prng: SplitMix64,
    left: u64,
    calls: u64,
    crc: crc::Digest<'static, u32, crc::Table<16>>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let max = [65_536usize, 1_021, 4_093, 1_500, 7][(self.calls % 5) as usize];
        let n = (buf.len().min(max) as u64).min(self.left) as usize;
        self.prng.fill(&mut buf[..n]);
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Takes a varying amount per write and checksums it.
struct Sink {
    total: u64,
    calls: u64,
    crc: crc::Digest<'static, u32, crc::Table<16>>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        let max = [1 << 20, 2_039usize, 3, 100_000, 4_096][(self.calls % 5) as usize];
        let n = buf.len().min(max);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams `total` bytes through `ring` (alternating `fill_from`/`push` on the
/// write side and `drain_to`/`pop_into` on the read side), checks both
/// checksums and the stream positions, and samples the ring's maps entries
/// every 64 MiB: returns (the largest count, seconds).
fn stream(ring: &mut LeapfrogRing, total: u64) -> (usize, f64) {
    let (base, len) = (ring.layout().base, ring.layout().window_len);
    let mut src = Source {
        prng: SplitMix64::new(0x1eaf_f706),
        left: total,
        calls: 0,
        crc: CRC.digest(),
    };
    let mut sink = Sink {
        total: 0,
        calls: 0,
        crc: CRC.digest(),
    };
    let start_pos = ring.read_position();
    let mut chunk = vec![0u8; 3000];
    let mut out = vec![0u8; 2500];
    let (all0, mine0) = maps_entries(base, len);
    let mut most = mine0;
    let mut next_sample = 64u64 << 20;
    let mut step = 0u64;
    let t = Instant::now();
    while sink.total < total {
        step += 1;
        if step.is_multiple_of(3) && src.left > 0 {
            // Only what fits: the source cannot take bytes back.
            let n = (chunk.len().min(ring.remaining()) as u64).min(src.left) as usize;
            let n = src.read(&mut chunk[..n]).unwrap();
            assert_eq!(ring.push(&chunk[..n]), n);
        } else {
            ring.fill_from(&mut src).unwrap();
        }
        if step.is_multiple_of(4) {
            let n = ring.pop_into(&mut out);
            sink.write_all(&out[..n]).unwrap();
        } else {
            while ring.drain_to(&mut sink).unwrap() > 0 && step.is_multiple_of(2) {}
        }
        assert_eq!(
            ring.write_position() - ring.read_position(),
            ring.len() as u64
        );
        if sink.total >= next_sample {
            next_sample += 64 << 20;
            let (all, mine) = maps_entries(base, len);
            most = most.max(mine);
            assert!(
                mine <= mine0.max(4),
                "the ring's maps entries grew: {mine0} -> {mine} after {} bytes",
                sink.total
            );
            // The harness starts and ends test threads meanwhile (a stack and a
            // guard page each): a little slack, far below one entry per page.
            assert!(
                all <= all0 + SLACK,
                "process maps entries grew: {all0} -> {all} after {} bytes",
                sink.total
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(sink.total, total);
    assert_eq!(src.crc.finalize(), sink.crc.finalize(), "checksums differ");
    assert_eq!(ring.read_position() - start_pos, total);
    assert!(ring.is_empty());
    (most, secs)
}

fn stream_bytes(debug: u64, release: u64) -> u64 {
    std::env::var("VMCIRC_LEAP_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            debug
        } else {
            release
        })
}

#[test]
fn sixteen_gib_through_one_page() {
    let _g = lock();
    let total = stream_bytes(64 << 20, 16 << 30);
    // A quarter of the stream's worth of address space (4 GiB for 16 GiB): the
    // run re-bases a few times too.
    let reserve = (total / 4).clamp(1 << 20, 4 << 30) as usize;
    let o = LeapfrogOptions::new().reserve(reserve);
    let mut ring = LeapfrogRing::with_options(1, &o).unwrap();
    assert_eq!(ring.capacity(), page());
    let (most, secs) = stream(&mut ring, total);
    let s = ring.stats();
    eprintln!(
        "one-page leapfrog: {total} bytes in {secs:.1} s ({:.2} GB/s), {} remaps ({:.0}/s), {} re-bases, at most {most} maps entries",
        total as f64 / secs / 1e9,
        s.remaps,
        s.remaps as f64 / secs,
        s.rebases
    );
    // Every page of the stream was mapped once, plus the first pages, plus the
    // (at most K + 1 = 2) live pages each re-base moved.
    let pages = total / page() as u64;
    assert!(
        s.remaps >= pages && s.remaps <= pages + 3 + 2 * s.rebases,
        "{s:?}"
    );
    assert_eq!(s.failures, 0);
    assert!(s.rebases >= total / reserve as u64 - 1, "{s:?}");
    assert!(most <= 4, "{most}");
}

#[test]
fn rebases_over_a_small_reservation() {
    let _g = lock();
    let total = stream_bytes(32 << 20, 1 << 30);
    let p = page();
    for (pages, vpages) in [(1, 4), (3, 8), (16, 40)] {
        let o = LeapfrogOptions::new().reserve(vpages * p);
        let mut ring = LeapfrogRing::with_options(pages * p, &o).unwrap();
        let (most, _) = stream(&mut ring, total / 4);
        let s = ring.stats();
        // Each re-base moves the window by at least V - (K + 1) pages.
        let min_rebases = total / 4 / ((vpages * p) as u64) - 1;
        assert!(s.rebases >= min_rebases, "{pages}/{vpages}: {s:?}");
        assert_eq!(s.failures, 0);
        assert!(most <= 5, "{most}");
    }
}

#[test]
fn huge_pages_work_or_say_why() {
    let _g = lock();
    let o = LeapfrogOptions::new().huge_pages(true);
    match LeapfrogRing::with_options(1, &o) {
        Ok(mut ring) => {
            let p = ring.capacity();
            assert!(ring.window().is_huge());
            assert!(p >= 1 << 20, "huge page of {p} bytes");
            let (most, _) = stream(&mut ring, 8 * p as u64 + 12345);
            assert!(most <= 4);
        }
        Err(e) => {
            eprintln!("no huge pages here: {e}");
            assert!(
                e.to_string()
                    .starts_with("vmcirc: huge pages unavailable: "),
                "{e}"
            );
        }
    }
}

#[test]
fn a_thousand_rings_leak_nothing() {
    let _g = lock();
    for _ in 0..5 {
        drop(LeapfrogRing::with_capacity(1).unwrap());
    }
    let (fds, maps) = (fd_count(), maps_entries(0, 0).0);
    for i in 0..1000usize {
        let mut r = LeapfrogRing::with_capacity(page() * (1 + i % 3)).unwrap();
        let cap = r.capacity();
        r.push(&vec![7; cap]);
        r.pop(cap - 1);
        assert_eq!(r.push(b"xy"), 2);
        assert_eq!(r.peek(), b"\x07xy");
    }
    // While alive, a ring holds one descriptor (it maps pages all the time).
    let rings: Vec<_> = (0..10)
        .map(|_| LeapfrogRing::with_capacity(1).unwrap())
        .collect();
    assert_eq!(fd_count(), fds + 10);
    drop(rings);
    assert_eq!(fd_count(), fds, "file descriptors leaked");
    let now = maps_entries(0, 0).0;
    assert!(now <= maps + SLACK, "mappings leaked: {maps} -> {now}");
}

#[test]
fn forked_child_sees_an_empty_ring() {
    let _g = lock();
    let mut ring = LeapfrogRing::with_capacity(1).unwrap();
    let p = ring.capacity();
    ring.push(&vec![b'.'; p - 3]);
    ring.pop(p - 4);
    ring.push(b"parent"); // across a page boundary
    let before = ring.read_position();
    // SAFETY: the child only runs the checks below (no locks another thread of
    // this process could hold) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let r = &mut ring;
            let checks = [
                r.peek().is_empty(),
                r.capacity() == 0 && r.len() == 0 && r.is_empty(),
                r.push(b"child") == 0,
                r.writable().is_empty(),
                r.commit(1).is_err() && r.consume(1).is_err(),
                r.pop(3) == 0,
                r.write_position() == r.read_position(),
                r.read(&mut [0u8; 4]).unwrap() == 0,
                r.write(b"x").unwrap() == 0,
                format!("{r:?}").contains("mapped: false"),
            ];
            checks.iter().position(|ok| !ok).map_or(0, |i| i as i32 + 1)
        }))
        .unwrap_or(99);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child died: {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child check failed");
    assert_eq!(ring.peek(), b".parent");
    assert_eq!(ring.read_position(), before);
    ring.push(b"!");
    assert_eq!(ring.peek(), b".parent!");
}
