//! The Linux backend end to end: no descriptor or mapping leaks over 10,000
//! rings, clear errors for bad sizes and refused memory files, huge pages when
//! the system has them, and 1 GiB of PRNG data through `fill_from`/`drain_to`
//! checked by CRC-32 on both sides.
//!
//! The copy test moves 1 GiB in release builds (`cargo test --release --features
//! std --test ring_linux`) and 16 MiB in debug builds; `VMCIRC_COPY_BYTES`
//! overrides the size.
#![cfg(all(target_os = "linux", feature = "std"))]

use std::io::{self, Read, Write};
use std::sync::Mutex;
use vmcirc::prng::SplitMix64;

use vmcirc::vmcirc::{Backend, MemfdMirror, MirrorOptions, MirrorRing};

/// The tests count process-wide descriptors and mappings: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn maps_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn ten_thousand_rings_leak_nothing() {
    let _g = lock();
    // Warm up (first-use allocations of the test harness, std, rustix).
    for _ in 0..10 {
        drop(MirrorRing::with_capacity(4096).unwrap());
    }
    let (fds, maps) = (fd_count(), maps_count());
    for i in 0..10_000usize {
        let mut r = MirrorRing::with_capacity(4096 * (1 + i % 3)).unwrap();
        r.push(b"x");
        assert_eq!(r.peek(), b"x");
    }
    assert_eq!(fd_count(), fds, "file descriptors leaked");
    let now = maps_count();
    assert!(now <= maps + 2, "mappings leaked: {maps} -> {now}");
    // While alive, a ring holds no descriptor (the file lives in its mappings).
    let rings: Vec<_> = (0..100)
        .map(|_| MirrorRing::with_capacity(4096).unwrap())
        .collect();
    assert_eq!(fd_count(), fds);
    drop(rings);
}

#[test]
fn bad_capacities_are_clear_errors() {
    let _g = lock();
    let e = MirrorRing::with_capacity(0).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("at least 1 byte"), "{e}");
    for huge in [usize::MAX, usize::MAX / 2, isize::MAX as usize] {
        let e = MirrorRing::with_capacity(huge).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("beyond the address space"), "{e}");
    }
    // Representable, but more than the address space can hold.
    let e = MirrorRing::with_capacity(1 << 50).unwrap_err();
    assert!(e.to_string().starts_with("vmcirc: "), "{e}");
    eprintln!("capacity 2^50: {e}");
}

#[test]
fn refused_memory_files() {
    let _g = lock();
    // memfd refused: falls back to shm_open, and the ring works.
    let o = MirrorOptions::new().simulate_refusal(true, false);
    let mut r = MirrorRing::with_options(5000, &o).unwrap();
    assert_eq!(r.mirror().backend(), Backend::Shm);
    let n = r.capacity();
    r.push(&vec![1; n - 1]);
    r.pop(n - 1);
    r.push(b"across");
    assert_eq!(r.peek(), b"across");
    // memfd only, refused: an error naming it.
    let o = MirrorOptions::new()
        .backend(Backend::Memfd)
        .simulate_refusal(true, false);
    let e = MirrorRing::with_options(5000, &o).unwrap_err();
    assert!(e.to_string().contains("memfd_create refused"), "{e}");
    // Both refused: the error names both.
    let o = MirrorOptions::new().simulate_refusal(true, true);
    let e = MirrorRing::with_options(5000, &o).unwrap_err();
    let s = e.to_string();
    assert!(s.contains("memfd_create") && s.contains("shm_open"), "{s}");
    eprintln!("both refused: {s}");
    // Huge pages without memfd: refused up front.
    let o = MirrorOptions::new().huge_pages(true).backend(Backend::Shm);
    assert!(MirrorRing::with_options(1, &o).is_err());
}

#[test]
fn huge_pages_work_or_say_why() {
    let _g = lock();
    match MemfdMirror::with_options(1, true) {
        Ok(m) => {
            assert!(m.is_huge());
            let mut r = vmcirc::vmcirc::Ring::new(m);
            let n = r.capacity();
            assert!(n >= 2 << 20 || n >= 1 << 16, "huge page capacity {n}");
            r.push(&vec![3; n - 1]);
            r.pop(n - 1);
            r.push(b"hp");
            assert_eq!(r.peek(), b"hp");
        }
        Err(e) => {
            eprintln!("no huge pages here: {e}");
            assert!(e.to_string().contains("huge page"), "{e}");
        }
    }
}

/// Slice-by-16 tables: the checksum must not be the bottleneck of the copy.
const CRC: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// Produces `left` PRNG bytes, at most `max` per read (varying, so the ring's
/// positions go everywhere), and checksums what it hands out.
struct Source {
    prng: SplitMix64,
    left: u64,
    calls: u64,
    crc: crc::Digest<'static, u32, crc::Table<16>>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let max = [65_536usize, 4_093, 1_500, 1 << 20, 7][(self.calls % 5) as usize];
        let n = (buf.len().min(max) as u64).min(self.left) as usize;
        self.prng.fill(&mut buf[..n]);
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Accepts a varying amount per write and checksums it.
struct Sink {
    total: u64,
    calls: u64,
    crc: crc::Digest<'static, u32, crc::Table<16>>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        let max = [1 << 20, 65_521usize, 3, 100_000][(self.calls % 4) as usize];
        let n = buf.len().min(max);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn copy_prng_stream_through_ring() {
    let _g = lock();
    let default: u64 = if cfg!(debug_assertions) {
        16 << 20
    } else {
        1 << 30
    };
    let total = std::env::var("VMCIRC_COPY_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let mut ring = MirrorRing::with_capacity(1 << 20).unwrap();
    let mut src = Source {
        prng: SplitMix64::new(0x5EED),
        left: total,
        calls: 0,
        crc: CRC.digest(),
    };
    let mut dst = Sink {
        total: 0,
        calls: 0,
        crc: CRC.digest(),
    };
    let t = std::time::Instant::now();
    loop {
        let got = ring.fill_from(&mut src).unwrap();
        let put = ring.drain_to(&mut dst).unwrap();
        if got == 0 && put == 0 && ring.is_empty() {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(dst.total, total);
    let (a, b) = (src.crc.finalize(), dst.crc.finalize());
    assert_eq!(a, b, "checksum mismatch");
    eprintln!(
        "copied {total} bytes in {secs:.3} s ({:.0} MB/s), crc32 {a:#010x}",
        total as f64 / secs / 1e6
    );
}
