//! Leapfrog benchmarks (criterion): the leapfrogging ring against the mirrored
//! ring of the same capacity, and what its page moves cost.
//!
//! - `leapfrog/<ring KiB>/<chunk>`: push one chunk, pop it into a buffer, with a
//!   standing backlog of about half the ring (as `benches/ring.rs` does); chunks
//!   of 64 B to 64 KiB; rings of one page (4 KiB: the leapfrog ring's "one
//!   page of memory" case), 64 KiB and 1 MiB. Rows: `mirrored`, `leapfrog`
//!   (the defaults: look-ahead 0, pages prefaulted as they are mapped),
//!   `leapfrog+la16` (16 pages mapped ahead, so pages are returned in runs:
//!   fewer `mmap` calls) and `leapfrog-lazy` (no prefaulting: one page fault
//!   per page moved).
//!
//! - `leapfrog-huge/<chunk>`: a ring of one huge page (2 MiB on x86-64) of
//!   each kind, where the system has huge pages free (`/proc/sys/vm/nr_hugepages`;
//!   the bench says so and skips them otherwise): one remap per 2 MiB.
//!
//! Run with `cargo bench --features std --bench leapfrog` (part of `make
//! bench`). After criterion's report the bench prints one table from the same
//! run: throughput of each ring (the fastest sample, the estimate least
//! disturbed by other load), the leapfrog/mirrored time ratio, the leapfrog
//! ring's remaps per second and the time per remap (all of the leapfrog ring's
//! extra time, divided by the pages it moved).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use vmcirc::vmcirc::{LeapfrogOptions, LeapfrogRing};
use vmcirc::{ByteRing, MirrorOptions, MirrorRing};

const CHUNKS: [usize; 6] = [64, 256, 1024, 4096, 16384, 65536];
const RINGS: [usize; 3] = [4 << 10, 64 << 10, 1 << 20];
const IMPLS: [&str; 4] = ["mirrored", "leapfrog", "leapfrog+la16", "leapfrog-lazy"];
/// The `cap` key of the huge-page rows (their capacity is one huge page).
const HUGE: usize = 0;

/// (ring, chunk, impl) -> samples of (ns per iteration, remaps per iteration,
/// iterations).
type Key = (usize, usize, &'static str);
type Sample = (f64, f64, u64);
static SAMPLES: Mutex<BTreeMap<Key, Vec<Sample>>> = Mutex::new(BTreeMap::new());

/// Samples shorter than this many bytes are left out of the table: a sample
/// must move many pages, or the fastest one is one that happened to move none.
const MIN_SAMPLE_BYTES: u64 = 4 << 20;

enum Under {
    Mirrored(MirrorRing),
    Leap(LeapfrogRing),
}

impl Under {
    fn new(name: &str, cap: usize) -> Self {
        match name {
            "mirrored-huge" => Under::Mirrored(
                MirrorRing::with_options(cap, &MirrorOptions::new().huge_pages(true)).unwrap(),
            ),
            "leapfrog-huge" => Under::Leap(
                LeapfrogRing::with_options(cap, &LeapfrogOptions::new().huge_pages(true)).unwrap(),
            ),
            "mirrored" => Under::Mirrored(MirrorRing::with_capacity(cap).unwrap()),
            "leapfrog" => Under::Leap(LeapfrogRing::with_capacity(cap).unwrap()),
            "leapfrog-lazy" => Under::Leap(
                LeapfrogRing::with_options(cap, &LeapfrogOptions::new().lazy_faults(true)).unwrap(),
            ),
            _ => Under::Leap(
                LeapfrogRing::with_options(cap, &LeapfrogOptions::new().lookahead(16)).unwrap(),
            ),
        }
    }
    fn remaps(&self) -> u64 {
        match self {
            Under::Mirrored(_) => 0,
            Under::Leap(r) => r.stats().remaps,
        }
    }
    fn push(&mut self, src: &[u8]) -> usize {
        match self {
            Under::Mirrored(r) => r.push(src),
            Under::Leap(r) => r.push(src),
        }
    }
    #[inline]
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        match self {
            Under::Mirrored(r) => {
                let n = r.push(src);
                r.pop_into(&mut dst[..n])
            }
            Under::Leap(r) => {
                let n = r.push(src);
                r.pop_into(&mut dst[..n])
            }
        }
    }
}

/// One group: every chunk that fits, each of `impls` on a ring of `cap` bytes;
/// samples are filed under `key` (the ring size, or [`HUGE`]).
fn group(c: &mut Criterion, title: &str, key: usize, cap: usize, impls: &[&'static str]) {
    let mut g = c.benchmark_group(title);
    for &chunk in &CHUNKS {
        if chunk > cap {
            continue;
        }
        g.throughput(Throughput::Bytes(chunk as u64));
        let backlog = (cap - chunk) / 2 / chunk * chunk;
        let src: Vec<u8> = (0..chunk).map(|i| (i * 31 + 7) as u8).collect();
        let mut dst = vec![0u8; chunk];
        for &name in impls {
            let mut ring = Under::new(name, cap);
            for _ in 0..backlog / chunk {
                assert_eq!(ring.push(&src), chunk);
            }
            assert_eq!(ring.push_pop(&src, &mut dst), chunk);
            assert_eq!(dst, src, "{name} lost bytes");
            g.bench_with_input(BenchmarkId::new(name, chunk), &chunk, |b, _| {
                b.iter_custom(|iters| {
                    let r0 = ring.remaps();
                    let t = Instant::now();
                    for _ in 0..iters {
                        black_box(ring.push_pop(black_box(&src), black_box(&mut dst)));
                    }
                    let e = t.elapsed();
                    let remaps = (ring.remaps() - r0) as f64 / iters as f64;
                    SAMPLES
                        .lock()
                        .unwrap()
                        .entry((key, chunk, name))
                        .or_default()
                        .push((e.as_nanos() as f64 / iters as f64, remaps, iters));
                    e
                })
            });
        }
    }
    g.finish();
}

fn leapfrog(c: &mut Criterion) {
    for &cap in &RINGS {
        group(c, &format!("leapfrog/{}KiB", cap >> 10), cap, cap, &IMPLS);
    }
    let huge = LeapfrogOptions::new().huge_pages(true);
    match LeapfrogRing::with_options(1, &huge) {
        Ok(r) => {
            let cap = r.capacity();
            drop(r);
            let impls = ["mirrored-huge", "leapfrog-huge"];
            group(c, "leapfrog-huge", HUGE, cap, &impls);
        }
        Err(e) => println!("leapfrog-huge: skipped ({e})"),
    }
}

/// The fastest sample of at least [`MIN_SAMPLE_BYTES`] (32 times that for huge pages) (interference only ever
/// adds time), with its remaps per iteration.
fn best(v: &[Sample], key: usize, chunk: usize) -> Option<(f64, f64)> {
    // A huge page moves once per 2 MiB: longer samples.
    let least = if key == HUGE {
        32 * MIN_SAMPLE_BYTES
    } else {
        MIN_SAMPLE_BYTES
    };
    v.iter()
        .filter(|s| s.2 * chunk as u64 >= least)
        .map(|s| (s.0, s.1))
        .fold(None, |a: Option<(f64, f64)>, b| match a {
            Some(a) if a.0 <= b.0 => Some(a),
            _ => Some(b),
        })
}

fn table() {
    let s = SAMPLES.lock().unwrap();
    let get = |k: Key| s.get(&k).and_then(|v| best(v, k.0, k.1));
    println!();
    println!(
        "Leapfrog vs mirrored (same capacity; push one chunk, pop one chunk, half-full ring)."
    );
    println!("ratio = leapfrog time / mirrored time; us/remap = (leapfrog - mirrored time) per page moved.");
    println!();
    println!(
        "| ring | chunk | mirrored GB/s | leapfrog GB/s | ratio | remaps/s | us/remap | +la16 GB/s | remaps/s | -lazy GB/s | remaps/s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rows = RINGS
        .iter()
        .map(|&cap| (cap, "mirrored", "leapfrog"))
        .chain([(HUGE, "mirrored-huge", "leapfrog-huge")]);
    for (cap, mirrored, leap) in rows {
        for &chunk in &CHUNKS {
            let (Some((mt, _)), Some((lt, lr))) =
                (get((cap, chunk, mirrored)), get((cap, chunk, leap)))
            else {
                continue;
            };
            let per_s = |t: f64, r: f64| r / t * 1e9;
            let other = |name| {
                let x = get((cap, chunk, name));
                (
                    x.map_or("-".into(), |(t, _)| format!("{:.2}", chunk as f64 / t)),
                    x.map_or("-".into(), |(t, r)| format!("{:.0}", per_s(t, r))),
                )
            };
            let (la, la_r) = other("leapfrog+la16");
            let (lz, lz_r) = other("leapfrog-lazy");
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.1} | {:.0} | {} | {la} | {la_r} | {lz} | {lz_r} |",
                if cap == HUGE {
                    "huge page".to_string()
                } else {
                    format!("{} KiB", cap >> 10)
                },
                chunk,
                chunk as f64 / mt,
                chunk as f64 / lt,
                lt / mt,
                per_s(lt, lr),
                if lr > 0.0 && lt > mt {
                    format!("{:.2}", (lt - mt) / lr / 1e3)
                } else {
                    // No remap, or the difference is below the noise.
                    "~0".to_string()
                },
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(30)
        .configure_from_args();
    leapfrog(&mut c);
    c.final_summary();
    table();
}
