//! Ring benchmarks (criterion): the mirrored ring against the modular ring,
//! `VecDeque<u8>`, `ringbuf` (`HeapRb`, slices API), `rtrb` (chunk API) and a raw
//! `memcpy` ceiling.
//!
//! - `push_pop/<ring KiB>/<chunk>`: push one chunk, pop it into a buffer; chunk
//!   sizes 1, 7, 64, 1500, 4096, 65536 bytes; rings of 64 KiB and 1 MiB. The
//!   `memcpy` row copies the same bytes in and out of a buffer of the ring's size
//!   at the same moving offset.
//! - `records/<ring KiB>`: a contiguous consumer: length-prefixed records of random
//!   size 1..=4096 bytes streamed through the ring; the parser needs each record
//!   whole. The mirrored ring parses in place; the others parse in place when a
//!   record does not wrap and copy it into a scratch buffer when it does.
//!
//! Run with `cargo bench --features std --bench ring`; after criterion's report
//! the bench prints one ratio table (each peer vs the mirrored ring, and the
//! mirrored ring vs `memcpy`) from the same run. Timings for the table come from
//! the same `iter_custom` loops criterion measures (the fastest sample's ns per
//! iteration, the estimate least disturbed by other load on the machine).
//!
//! `VMCIRC_BENCH_PASSES=N` measures everything N times (fresh rings and buffers
//! each pass, so every implementation also gets N draws of buffer addresses,
//! which matter for copies through the 4K-aliasing stall) and the table takes
//! the fastest sample over all passes. The README's table is such a run.

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use ringbuf::traits::{Consumer as _, Producer as _};
use ringbuf::HeapRb;
use vmcirc::{ByteRing, MirrorRing, ModularRing};

const CHUNKS: [usize; 6] = [1, 7, 64, 1500, 4096, 65536];
const RINGS: [usize; 2] = [64 << 10, 1 << 20];
const IMPLS: [&str; 6] = [
    "mirrored", "modular", "vecdeque", "ringbuf", "rtrb", "memcpy",
];

/// (group, ring, chunk, impl) -> ns per iteration samples.
type Key = (&'static str, usize, usize, &'static str);
static SAMPLES: Mutex<BTreeMap<Key, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn timed<F: FnMut()>(key: Key, iters: u64, mut f: F) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    let e = t.elapsed();
    SAMPLES
        .lock()
        .unwrap()
        .entry(key)
        .or_default()
        .push(e.as_nanos() as f64 / iters as f64);
    e
}

// ---- the rings under one small interface --------------------------------------

trait PushPop {
    /// Push `src` (what fits), then pop as many bytes into `dst`.
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize;
    /// Push only (to build a standing backlog).
    fn push(&mut self, src: &[u8]) -> usize;
}

struct Mirrored(MirrorRing);
impl PushPop for Mirrored {
    fn push(&mut self, src: &[u8]) -> usize {
        self.0.push(src)
    }
    #[inline]
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        let n = self.0.push(src);
        self.0.pop_into(&mut dst[..n])
    }
}

struct Modular(ModularRing<Vec<u8>>);
impl PushPop for Modular {
    fn push(&mut self, src: &[u8]) -> usize {
        self.0.push(src)
    }
    #[inline]
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        let n = self.0.push(src);
        self.0.pop_into(&mut dst[..n])
    }
}

struct Deque(VecDeque<u8>, usize);
impl PushPop for Deque {
    fn push(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.1 - self.0.len());
        self.0.extend(&src[..n]);
        n
    }
    #[inline]
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        let n = src.len().min(self.1 - self.0.len());
        self.0.extend(&src[..n]);
        let (a, b) = self.0.as_slices();
        let k = a.len().min(n);
        dst[..k].copy_from_slice(&a[..k]);
        dst[k..n].copy_from_slice(&b[..n - k]);
        self.0.drain(..n);
        n
    }
}

struct RingBuf(HeapRb<u8>);
impl PushPop for RingBuf {
    fn push(&mut self, src: &[u8]) -> usize {
        self.0.push_slice(src)
    }
    #[inline]
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        let n = self.0.push_slice(src);
        self.0.pop_slice(&mut dst[..n])
    }
}

struct Rtrb(rtrb::Producer<u8>, rtrb::Consumer<u8>);
impl Rtrb {
    fn new(cap: usize) -> Self {
        let (p, c) = rtrb::RingBuffer::new(cap);
        Rtrb(p, c)
    }
    #[inline]
    fn push(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.0.slots());
        let Ok(mut chunk) = self.0.write_chunk_uninit(n) else {
            return 0;
        };
        let (a, b) = chunk.as_mut_slices();
        copy_to_uninit(&src[..a.len()], a);
        copy_to_uninit(&src[a.len()..n], b);
        // SAFETY: all n slots were written just above.
        unsafe { chunk.commit_all() };
        n
    }
}
impl PushPop for Rtrb {
    fn push(&mut self, src: &[u8]) -> usize {
        Rtrb::push(self, src)
    }
    #[inline]
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        let n = self.push(src);
        let Ok(chunk) = self.1.read_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        dst[..a.len()].copy_from_slice(a);
        dst[a.len()..n].copy_from_slice(b);
        chunk.commit_all();
        n
    }
}

#[inline]
fn copy_to_uninit(src: &[u8], dst: &mut [MaybeUninit<u8>]) {
    assert_eq!(src.len(), dst.len());
    // SAFETY: same length; MaybeUninit<u8> has u8's layout; distinct borrows.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), src.len()) };
}

/// The ceiling: the same bytes copied in and out of a ring-sized buffer.
struct Memcpy(Vec<u8>, usize);
impl PushPop for Memcpy {
    fn push(&mut self, src: &[u8]) -> usize {
        src.len()
    }
    #[inline]
    fn push_pop(&mut self, src: &[u8], dst: &mut [u8]) -> usize {
        let n = src.len();
        if self.1 + n > self.0.len() {
            self.1 = 0;
        }
        let at = self.1;
        self.0[at..at + n].copy_from_slice(src);
        dst.copy_from_slice(&self.0[at..at + n]);
        self.1 += n;
        n
    }
}

/// Benchmarks one implementation: after pushing `backlog` bytes (whole chunks),
/// each iteration pushes one chunk and pops one chunk.
#[allow(clippy::too_many_arguments)]
fn bench_pp<P: PushPop>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    group: &'static str,
    name: &'static str,
    mut ring: P,
    cap: usize,
    chunk: usize,
    backlog: usize,
) {
    let src: Vec<u8> = (0..chunk).map(|i| (i * 31 + 7) as u8).collect();
    let mut dst = vec![0u8; chunk];
    for _ in 0..backlog / chunk {
        assert_eq!(ring.push(&src), chunk);
    }
    assert_eq!(ring.push_pop(&src, &mut dst), chunk);
    assert_eq!(dst, src, "{name} lost bytes");
    g.bench_with_input(BenchmarkId::new(name, chunk), &chunk, |b, _| {
        b.iter_custom(|iters| {
            timed((group, cap, chunk, name), iters, || {
                let n = ring.push_pop(black_box(&src), black_box(&mut dst));
                black_box(n);
            })
        })
    });
}

/// `push_pop`: the ring keeps a standing backlog of about half its capacity, so
/// every implementation wraps as a streaming ring does. `push_pop_empty`: the
/// ring is empty after every pop; `VecDeque` and the vmcirc rings then start
/// over at offset 0 (the FIFO rewind), so they never wrap and stay in one hot
/// chunk of memory, while `ringbuf` and `rtrb` keep walking through theirs.
fn push_pop(c: &mut Criterion) {
    for (group, standing) in [("push_pop", true), ("push_pop_empty", false)] {
        for &cap in &RINGS {
            let mut g = c.benchmark_group(format!("{group}/{}KiB", cap >> 10));
            for &chunk in &CHUNKS {
                if chunk > cap {
                    continue;
                }
                g.throughput(Throughput::Bytes(chunk as u64));
                let backlog = if standing {
                    (cap - chunk) / 2 / chunk * chunk
                } else {
                    0
                };
                let m = MirrorRing::with_capacity(cap).unwrap();
                bench_pp(&mut g, group, "mirrored", Mirrored(m), cap, chunk, backlog);
                let r = Modular(ModularRing::new(vec![0; cap]).unwrap());
                bench_pp(&mut g, group, "modular", r, cap, chunk, backlog);
                let r = Deque(VecDeque::with_capacity(cap), cap);
                bench_pp(&mut g, group, "vecdeque", r, cap, chunk, backlog);
                bench_pp(
                    &mut g,
                    group,
                    "ringbuf",
                    RingBuf(HeapRb::new(cap)),
                    cap,
                    chunk,
                    backlog,
                );
                bench_pp(&mut g, group, "rtrb", Rtrb::new(cap), cap, chunk, backlog);
                bench_pp(
                    &mut g,
                    group,
                    "memcpy",
                    Memcpy(vec![0; cap], 0),
                    cap,
                    chunk,
                    backlog,
                );
            }
            g.finish();
        }
    }
}

// ---- contiguous consumer ----------------------------------------------------------

fn record_stream(bytes: usize) -> Vec<u8> {
    let mut s = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(bytes + 4100);
    while out.len() < bytes {
        let len = 1 + (next() % 4096) as usize;
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend((0..len).map(|i| (i as u8) ^ (len as u8)));
    }
    out
}

/// The "parser": needs the whole record (header included) as one slice.
#[inline]
fn parse(rec: &[u8]) -> u64 {
    let mut words = rec.chunks_exact(8);
    let mut h = rec.len() as u64;
    for w in &mut words {
        h = h.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()));
    }
    for &b in words.remainder() {
        h = h.wrapping_add(b as u64);
    }
    h
}

/// Parses every complete record in the two-part view `(a, b)`, copying records
/// that straddle the parts into `scratch`. Returns (bytes consumed, hash).
#[inline]
fn parse_split(a: &[u8], b: &[u8], scratch: &mut [u8]) -> (usize, u64) {
    let total = a.len() + b.len();
    let at = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
    let (mut off, mut h) = (0, 0u64);
    while off + 2 <= total {
        let len = 2 + u16::from_le_bytes([at(off), at(off + 1)]) as usize;
        if off + len > total {
            break;
        }
        if off + len <= a.len() {
            h = h.wrapping_add(parse(&a[off..off + len]));
        } else if off >= a.len() {
            h = h.wrapping_add(parse(&b[off - a.len()..off - a.len() + len]));
        } else {
            let k = a.len() - off;
            scratch[..k].copy_from_slice(&a[off..]);
            scratch[k..len].copy_from_slice(&b[..len - k]);
            h = h.wrapping_add(parse(&scratch[..len]));
        }
        off += len;
    }
    (off, h)
}

/// The mirrored ring's consumer: one slice, records parsed in place.
#[inline]
fn parse_contiguous(s: &[u8]) -> (usize, u64) {
    let (mut off, mut h) = (0, 0u64);
    while off + 2 <= s.len() {
        let len = 2 + u16::from_le_bytes([s[off], s[off + 1]]) as usize;
        if off + len > s.len() {
            break;
        }
        h = h.wrapping_add(parse(&s[off..off + len]));
        off += len;
    }
    (off, h)
}

/// Streams all of `stream` through a ring; returns the parse hash.
fn records_run(name: &str, ring: &mut RecordRing, stream: &[u8], scratch: &mut [u8]) -> u64 {
    let mut pos = 0;
    let mut h = 0u64;
    loop {
        let pushed = ring.push(&stream[pos..]);
        pos += pushed;
        let (used, hh) = ring.parse(scratch);
        h = h.wrapping_add(hh);
        if pushed == 0 && used == 0 {
            assert_eq!(pos, stream.len(), "{name} stalled");
            return h;
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per benchmark, never moved in the loop
enum RecordRing {
    Mirrored(MirrorRing),
    Modular(ModularRing<Vec<u8>>),
    Deque(VecDeque<u8>, usize),
    RingBuf(HeapRb<u8>),
    Rtrb(Rtrb),
}

impl RecordRing {
    fn new(name: &str, cap: usize) -> Self {
        match name {
            "mirrored" => RecordRing::Mirrored(MirrorRing::with_capacity(cap).unwrap()),
            "modular" => RecordRing::Modular(ModularRing::new(vec![0; cap]).unwrap()),
            "vecdeque" => RecordRing::Deque(VecDeque::with_capacity(cap), cap),
            "ringbuf" => RecordRing::RingBuf(HeapRb::new(cap)),
            "rtrb" => RecordRing::Rtrb(Rtrb::new(cap)),
            _ => unreachable!(),
        }
    }
    #[inline]
    fn push(&mut self, src: &[u8]) -> usize {
        match self {
            RecordRing::Mirrored(r) => r.push(src),
            RecordRing::Modular(r) => r.push(src),
            RecordRing::Deque(d, cap) => {
                let n = src.len().min(*cap - d.len());
                d.extend(&src[..n]);
                n
            }
            RecordRing::RingBuf(r) => r.push_slice(src),
            RecordRing::Rtrb(r) => r.push(src),
        }
    }
    #[inline]
    fn parse(&mut self, scratch: &mut [u8]) -> (usize, u64) {
        match self {
            RecordRing::Mirrored(r) => {
                let (n, h) = parse_contiguous(r.peek());
                r.pop(n);
                (n, h)
            }
            RecordRing::Modular(r) => {
                let (a, b) = r.peek();
                let (n, h) = parse_split(a, b, scratch);
                r.pop(n);
                (n, h)
            }
            RecordRing::Deque(d, _) => {
                let (a, b) = d.as_slices();
                let (n, h) = parse_split(a, b, scratch);
                d.drain(..n);
                (n, h)
            }
            RecordRing::RingBuf(r) => {
                let (a, b) = r.as_slices();
                let (n, h) = parse_split(a, b, scratch);
                r.skip(n);
                (n, h)
            }
            RecordRing::Rtrb(r) => {
                let Ok(chunk) = r.1.read_chunk(r.1.slots()) else {
                    return (0, 0);
                };
                let (a, b) = chunk.as_slices();
                let (n, h) = parse_split(a, b, scratch);
                chunk.commit(n);
                (n, h)
            }
        }
    }
}

fn records(c: &mut Criterion) {
    let stream = record_stream(4 << 20);
    let mut scratch = vec![0u8; 4098];
    for &cap in &RINGS {
        let mut g = c.benchmark_group(format!("records/{}KiB", cap >> 10));
        g.throughput(Throughput::Bytes(stream.len() as u64));
        let mut want = None;
        for &name in &IMPLS[..5] {
            let mut ring = RecordRing::new(name, cap);
            let h = records_run(name, &mut ring, &stream, &mut scratch);
            assert_eq!(*want.get_or_insert(h), h, "{name} parsed differently");
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    timed(("records", cap, 0, name), iters, || {
                        black_box(records_run(
                            name,
                            &mut ring,
                            black_box(&stream),
                            &mut scratch,
                        ));
                    })
                })
            });
        }
        g.finish();
    }
}

// ---- the ratio table ----------------------------------------------------------------

/// The fastest sample: on a shared machine, interference only ever adds time, so
/// the minimum is the most repeatable estimate of what the code itself costs.
fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn table() {
    let s = SAMPLES.lock().unwrap();
    let get = |k: Key| s.get(&k).map(|v| best(v));
    println!();
    println!("Ratio table (time of the mirrored ring / time of X; > 1.00 means the mirrored ring is faster).");
    println!("Last column: memcpy time / mirrored time (share of the memcpy ceiling reached).");
    println!();
    println!(
        "| case | ring | chunk | mirrored GB/s | vs modular | vs VecDeque | vs ringbuf | vs rtrb | of memcpy |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let cell = |m: Option<f64>, x: Option<f64>| match (m, x) {
        (Some(m), Some(x)) => format!("{:.2}", x / m),
        _ => "-".to_string(),
    };
    for group in ["push_pop", "push_pop_empty"] {
        for &cap in &RINGS {
            for &chunk in &CHUNKS {
                let m = get((group, cap, chunk, "mirrored"));
                let Some(mt) = m else { continue };
                let peers: Vec<String> = ["modular", "vecdeque", "ringbuf", "rtrb"]
                    .iter()
                    .map(|p| cell(m, get((group, cap, chunk, p))))
                    .collect();
                let mc = get((group, cap, chunk, "memcpy")).map(|x| x / mt);
                println!(
                    "| {} | {} KiB | {} | {:.2} | {} | {} |",
                    group,
                    cap >> 10,
                    chunk,
                    chunk as f64 / mt,
                    peers.join(" | "),
                    mc.map_or("-".into(), |r| format!("{r:.2}"))
                );
            }
        }
    }
    for &cap in &RINGS {
        let m = get(("records", cap, 0, "mirrored"));
        let Some(mt) = m else { continue };
        let peers: Vec<String> = ["modular", "vecdeque", "ringbuf", "rtrb"]
            .iter()
            .map(|p| cell(m, get(("records", cap, 0, p))))
            .collect();
        let bytes = record_stream(4 << 20).len() as f64;
        println!(
            "| records | {} KiB | 1..4096 | {:.2} | {} | - |",
            cap >> 10,
            bytes / mt,
            peers.join(" | ")
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(30)
        .configure_from_args();
    let passes = std::env::var("VMCIRC_BENCH_PASSES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    for _ in 0..passes {
        push_pop(&mut c);
        records(&mut c);
    }
    c.final_summary();
    table();
}
