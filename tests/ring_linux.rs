//! The Linux backend end to end: no descriptor or mapping leaks over 10,000
//! rings, clear errors for bad sizes and refused memory files, huge pages when
//! the system has them (and the reason when it has none), a forked child calling
//! every method of an inherited ring (no crash, a ring of capacity 0), and 1 GiB
//! of PRNG data through `fill_from`/`drain_to` checked by CRC-32 on both sides.
//!
//! The copy test moves 1 GiB in release builds (`cargo test --release --features
//! std --test ring_linux`) and 16 MiB in debug builds; `VMCIRC_COPY_BYTES`
//! overrides the size.
#![cfg(all(target_os = "linux", feature = "std"))]

use std::io::{self, Read, Write};
use std::sync::Mutex;
use vmcirc::prng::SplitMix64;

use vmcirc::{Backend, ByteRing, MemfdMirror, Mirror, MirrorOptions, MirrorRing};

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
    r.pop(n - 2);
    r.push(b"across");
    assert_eq!(r.peek(), b"\x01across");
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

/// `(Hugepagesize in bytes, HugePages_Free)` from /proc/meminfo, if present.
fn huge_page_info() -> (Option<usize>, usize) {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
    };
    (
        field("Hugepagesize:").map(|kb| kb * 1024),
        field("HugePages_Free:").unwrap_or(0),
    )
}

#[test]
fn huge_pages_work_or_say_why() {
    let _g = lock();
    let (size, free) = huge_page_info();
    match MemfdMirror::with_options(1, true) {
        Ok(m) => {
            assert!(m.is_huge());
            let size = size.expect("huge pages worked without a Hugepagesize");
            // One byte asked for: exactly one huge page.
            assert_eq!(m.capacity(), size, "huge page capacity");
            let mut r = vmcirc::Ring::new(m);
            let n = r.capacity();
            r.push(&vec![3; n - 1]);
            r.pop(n - 2);
            r.push(b"hp"); // across the end of the store
            assert_eq!(r.peek(), b"\x03hp");
        }
        Err(e) => {
            eprintln!("no huge pages here ({free} free): {e}");
            // Only acceptable when the system has no huge page to give ...
            assert!(
                size.is_none() || free == 0,
                "{free} huge pages of {size:?} bytes are free, yet: {e}"
            );
            // ... and then the error says so, in the documented form.
            assert!(
                e.to_string()
                    .starts_with("vmcirc: huge pages unavailable: "),
                "{e}"
            );
        }
    }
}

/// One check of `child_checks`: its exit code and the check.
type Step = (i32, Box<dyn FnMut(&mut MirrorRing) -> bool>);

/// What a forked child checks on the ring it inherited (its window is not
/// mapped in the child: `MADV_DONTFORK`); each failed step is its exit code.
fn child_checks(ring: &mut MirrorRing) -> i32 {
    use vmcirc::heatshrink::{Decoder, Error as HsError};
    let mut buf = [0u8; 16];
    let steps: Vec<Step> = vec![
        // The original crash: `peek` on the inherited ring (SIGSEGV without the
        // fork check).
        (
            1,
            Box::new(|r| r.peek().to_vec().is_empty() && r.readable().is_empty()),
        ),
        (
            2,
            Box::new(|r| r.capacity() == 0 && r.len() == 0 && r.remaining() == 0),
        ),
        (3, Box::new(|r| r.is_empty() && r.is_full())),
        (4, Box::new(|r| r.readable_parts() == (&[][..], &[][..]))),
        (
            5,
            Box::new(|r| r.window().is_empty() && r.store_mut().is_empty()),
        ),
        (6, Box::new(|r| r.push(b"child") == 0)),
        (7, Box::new(|r| r.writable().is_empty())),
        (
            8,
            Box::new(|r| {
                let (a, b) = r.writable_parts();
                a.is_empty() && b.is_empty()
            }),
        ),
        (
            9,
            Box::new(|r| {
                r.commit(1)
                    == Err(vmcirc::RingError::Overflow {
                        requested: 1,
                        available: 0,
                    })
                    && r.commit(0).is_ok()
            }),
        ),
        (
            10,
            Box::new(|r| {
                r.consume(1)
                    == Err(vmcirc::RingError::Underflow {
                        requested: 1,
                        available: 0,
                    })
                    && r.consume(0).is_ok()
            }),
        ),
        (11, Box::new(|r| r.pop(5) == 0)),
        (
            12,
            Box::new(move |r| r.pop_into(&mut buf) == 0 && r.peek_into(&mut buf) == 0),
        ),
        (
            13,
            Box::new(|r| {
                r.clear();
                r.read_offset() == 0 && r.write_offset() == 0
            }),
        ),
        (
            14,
            Box::new(|r| {
                let (b, pos) = r.history_view(100);
                b.is_empty() && pos == 0 && r.history_space(10) == 0
            }),
        ),
        (
            15,
            Box::new(|r| {
                let mut out = Vec::new();
                let mut b = [0u8; 4];
                r.read(&mut b).unwrap() == 0
                    && r.write(b"x").unwrap() == 0
                    && r.write_all(b"x").is_err()
                    && r.fill_from(&mut &b"abc"[..]).unwrap() == 0
                    && r.drain_to(&mut out).unwrap() == 0
                    && io::BufRead::fill_buf(r).unwrap().is_empty()
            }),
        ),
        (
            16,
            Box::new(|r| {
                let mut dec = Decoder::new(8, 4).unwrap();
                matches!(
                    dec.decode(&[0x00, 0x08], r),
                    Err(HsError::WindowTooSmall { capacity: 0, .. })
                )
            }),
        ),
        (17, Box::new(|r| format!("{r:?}").contains("mapped: false"))),
    ];
    for (code, mut check) in steps {
        if !check(ring) {
            return code;
        }
    }
    // Something of the child's own where the inherited window was: dropping the
    // inherited ring must not unmap it.
    let (base, len) = (ring.mirror().base(), 2 * ring.mirror().capacity());
    // SAFETY: a new private mapping at an address nothing in the child uses
    // (MAP_FIXED_NOREPLACE refuses if anything is mapped there).
    let p = unsafe {
        libc::mmap(
            base.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p != base.cast() {
        return 20;
    }
    // SAFETY: our new mapping.
    unsafe { base.add(7).write_volatile(0x77) };
    // A new ring in the child works, and leaves the inherited one detached.
    let Ok(mut fresh) = MirrorRing::with_capacity(4096) else {
        return 21;
    };
    if fresh.push(b"child ring") != 10 || fresh.peek() != b"child ring" {
        return 22;
    }
    if ring.capacity() != 0 || !ring.peek().is_empty() {
        return 23;
    }
    drop(std::mem::replace(ring, fresh));
    // SAFETY: still ours (a SIGSEGV here would mean the drop unmapped it).
    if unsafe { base.add(7).read_volatile() } != 0x77 {
        return 24;
    }
    if ring.peek() != b"child ring" {
        return 25;
    }
    0
}

#[test]
fn forked_child_sees_an_empty_ring_and_does_not_crash() {
    let _g = lock();
    let mut ring = MirrorRing::with_capacity(4096).unwrap();
    let n = ring.capacity();
    ring.push(&vec![b'.'; n - 3]);
    ring.pop(n - 4);
    ring.push(b"parent"); // across the end of the store
                          // SAFETY: the child only runs `child_checks` (no locks that another thread
                          // of this process could have held at the fork: glibc's malloc is fork-safe)
                          // and leaves with `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child_checks(&mut ring)))
                .unwrap_or(99);
        // SAFETY: ends the child at once, without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "the child died: signal {} (status {status:#x})",
        libc::WTERMSIG(status)
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child check step {} failed",
        libc::WEXITSTATUS(status)
    );
    // The parent's ring is untouched.
    assert_eq!(ring.peek(), b".parent");
    assert_eq!(ring.capacity(), n);
    ring.push(b"!");
    assert_eq!(ring.peek(), b".parent!");
}

/// `OnFork::Share`: a child inherits the mappings (for rings whose positions are
/// shared too) and sees, and makes, the same bytes as the parent.
#[test]
fn shared_double_map_is_inherited_by_a_forked_child() {
    use std::os::fd::AsFd;
    use vmcirc::vmcirc::{DoubleMap, OnFork, Probe};
    let _g = lock();
    let page = rustix::param::page_size();
    let fd = rustix::fs::memfd_create("vmcirc-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, page as u64).unwrap();
    let m = DoubleMap::with(fd.as_fd(), 0, page, page, Probe::Ends, OnFork::Share).unwrap();
    let base = m.base();
    // SAFETY: inside the window.
    unsafe { base.add(5).write_volatile(0x11) };
    // SAFETY: the child only touches the inherited window and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: the window is inherited (OnFork::Share).
        let code = unsafe {
            if !m.is_mapped() || base.add(page + 5).read_volatile() != 0x11 {
                1
            } else {
                base.add(page + 6).write_volatile(0x22);
                0
            }
        };
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status:#x}"
    );
    // SAFETY: inside the window; the child's write is in the shared file.
    assert_eq!(unsafe { base.add(6).read_volatile() }, 0x22);
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
