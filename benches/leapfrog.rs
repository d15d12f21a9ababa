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
use vmcirc::{ByteRing, MirrorRing};

const CHUNKS: [usize; 6] = [64, 256, 1024, 4096, 16384, 65536];
const RINGS: [usize; 3] = [4 << 10, 64 << 10, 1 << 20];
const IMPLS: [&str; 4] = ["mirrored", "leapfrog", "leapfrog+la16", "leapfrog-lazy"];

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

fn leapfrog(c: &mut Criterion) {
    for &cap in &RINGS {
        let mut g = c.benchmark_group(format!("leapfrog/{}KiB", cap >> 10));
        for &chunk in &CHUNKS {
            if chunk > cap {
                continue;
            }
            g.throughput(Throughput::Bytes(chunk as u64));
            let backlog = (cap - chunk) / 2 / chunk * chunk;
            let src: Vec<u8> = (0..chunk).map(|i| (i * 31 + 7) as u8).collect();
            let mut dst = vec![0u8; chunk];
            for name in IMPLS {
                let mut ring = Under::new(name, cap);
                for _ in 0..backlog / chunk {
                    assert_eq!(ring.push(&src), chunk);
                }
                assert_eq!(ring.push_pop(&src, &mut dst), chunk);
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
                            .entry((cap, chunk, name))
                            .or_default()
                            .push((e.as_nanos() as f64 / iters as f64, remaps, iters));
                        e
                    })
                });
            }
        }
        g.finish();
    }
}

/// The fastest sample of at least [`MIN_SAMPLE_BYTES`] (interference only ever
/// adds time), with its remaps per iteration.
fn best(v: &[Sample], chunk: usize) -> Option<(f64, f64)> {
    v.iter()
        .filter(|s| s.2 * chunk as u64 >= MIN_SAMPLE_BYTES)
        .map(|s| (s.0, s.1))
        .fold(None, |a: Option<(f64, f64)>, b| match a {
            Some(a) if a.0 <= b.0 => Some(a),
            _ => Some(b),
        })
}

fn table() {
    let s = SAMPLES.lock().unwrap();
    let get = |k: Key| s.get(&k).and_then(|v| best(v, k.1));
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
    for &cap in &RINGS {
        for &chunk in &CHUNKS {
            let (Some((mt, _)), Some((lt, lr))) =
                (get((cap, chunk, "mirrored")), get((cap, chunk, "leapfrog")))
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
                "| {} KiB | {} | {:.2} | {:.2} | {:.1} | {:.0} | {:.2} | {la} | {la_r} | {lz} | {lz_r} |",
                cap >> 10,
                chunk,
                chunk as f64 / mt,
                chunk as f64 / lt,
                lt / mt,
                per_s(lt, lr),
                if lr > 0.0 { (lt - mt) / lr / 1e3 } else { 0.0 },
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
