//! Cross-process benchmarks of the shared ring (`vmcirc::vmcirc::shared`)
//! against a pipe, a Unix `socketpair`, and `rtrb` between two threads.
//!
//! - `stream/<transport>/<chunk>`: one-way throughput. The parent writes
//!   `iters` chunks of 64 B, 4 KiB or 64 KiB (one copy each into the channel)
//!   preceded by the batch length; a child process (a thread for `rtrb`) takes
//!   everything and acknowledges the batch over a second channel. `ring` and
//!   `rtrb` hand the reader the bytes in place (zero copy); `ring-read`, the
//!   pipe and the socketpair copy them into a 64 KiB buffer (`read(2)` style). Rings: 1 MiB shared ring, 1 MiB `rtrb`; the pipe
//!   and the socketpair keep the kernel's default buffers.
//! - `pingpong/<transport>`: round-trip latency: 64 bytes there, the same 64
//!   bytes back (two shared rings, two pipes, one socketpair, two `rtrb`s).
//!
//! Run with `cargo bench --features std --bench ipc` (`make bench`); the ratio
//! table follows criterion's report. The table uses the fastest
//! sample of each case (interference on a shared machine only adds time).
//! The child process is this bench binary again, started with
//! `VMCIRC_IPC_CHILD=<role>` and the descriptors it needs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use vmcirc::vmcirc::shared::SpscRing;

const CHUNKS: [usize; 3] = [64, 4096, 65536];
const TRANSPORTS: [&str; 5] = ["ring", "ring-read", "pipe", "socketpair", "rtrb"];
const RING: usize = 1 << 20;
const MSG: usize = 64;

/// (group, transport, chunk) -> ns per iteration samples.
type Key = (&'static str, &'static str, usize);
static SAMPLES: Mutex<BTreeMap<Key, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(key: Key, iters: u64, d: Duration) {
    let ns = d.as_nanos() as f64 / iters.max(1) as f64;
    SAMPLES.lock().unwrap().entry(key).or_default().push(ns);
}

// ---- the two ends of a byte channel --------------------------------------------

/// Blocking byte channel ends: the shared ring's halves or a descriptor.
enum Tx {
    Ring(vmcirc::vmcirc::shared::Producer),
    Fd(File),
}

enum Rx {
    Ring(vmcirc::vmcirc::shared::Consumer),
    /// The shared ring read in place (zero copy).
    RingInPlace(vmcirc::vmcirc::shared::Consumer),
    Fd(File),
}

impl Tx {
    fn send(&mut self, data: &[u8]) {
        match self {
            Tx::Ring(p) => p.push_all(data, None).expect("ring send"),
            Tx::Fd(f) => f.write_all(data).expect("fd send"),
        }
    }
}

impl Rx {
    /// Reads exactly `buf.len()` bytes; false at the end of the stream.
    fn recv_exact(&mut self, buf: &mut [u8]) -> bool {
        match self {
            Rx::Ring(c) | Rx::RingInPlace(c) => {
                let mut got = 0;
                while got < buf.len() {
                    match c.pop_blocking(&mut buf[got..], None) {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => got += n,
                    }
                }
                true
            }
            Rx::Fd(f) => f.read_exact(buf).is_ok(),
        }
    }

    /// Reads and discards `len` bytes through `buf`.
    fn drain(&mut self, mut len: u64, buf: &mut [u8]) -> bool {
        while len > 0 {
            let want = buf.len().min(len as usize);
            let n = match self {
                Rx::RingInPlace(c) => {
                    // The bytes are used where they are: no copy out.
                    let n = match c.wait_readable(1, None) {
                        Ok(n) if n > 0 => n.min(len as usize),
                        _ => return false,
                    };
                    std::hint::black_box(&c.readable().unwrap()[..n]);
                    c.consume(n).unwrap();
                    len -= n as u64;
                    continue;
                }
                Rx::Ring(c) => c.pop_blocking(&mut buf[..want], None).unwrap_or(0),
                Rx::Fd(f) => f.read(&mut buf[..want]).unwrap_or(0),
            };
            if n == 0 {
                return false;
            }
            std::hint::black_box(&buf[..n]);
            len -= n as u64;
        }
        true
    }
}

// ---- the child process ----------------------------------------------------------

fn fd_from_env(var: &str) -> OwnedFd {
    let n: i32 = std::env::var(var).unwrap().parse().unwrap();
    // SAFETY: the parent passed this open descriptor, without close-on-exec, for
    // this process to own.
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// Runs a child role; returns false when this process is not a child.
fn child() -> bool {
    let Ok(role) = std::env::var("VMCIRC_IPC_CHILD") else {
        return false;
    };
    let (data, back) = (fd_from_env("VMCIRC_FD_IN"), fd_from_env("VMCIRC_FD_OUT"));
    let (mut rx, mut tx) = if role.starts_with("ring") {
        let a = SpscRing::from_fd(data).unwrap();
        let b = SpscRing::from_fd(back).unwrap();
        let c = a.consumer().unwrap();
        let rx = if role.starts_with("ring-read") {
            Rx::Ring(c)
        } else {
            Rx::RingInPlace(c)
        };
        (rx, Tx::Ring(b.producer().unwrap()))
    } else {
        (Rx::Fd(File::from(data)), Tx::Fd(File::from(back)))
    };
    let mut buf = vec![0u8; 64 * 1024];
    if role.ends_with("sink") {
        // Batches: an 8-byte length, the bytes, then a 1-byte acknowledgement.
        let mut len = [0u8; 8];
        while rx.recv_exact(&mut len) {
            if !rx.drain(u64::from_le_bytes(len), &mut buf) {
                break;
            }
            tx.send(&[1]);
        }
    } else {
        let mut msg = [0u8; MSG];
        while rx.recv_exact(&mut msg) {
            tx.send(&msg);
        }
    }
    true
}

fn inheritable(fd: &impl std::os::fd::AsFd) -> OwnedFd {
    let dup = rustix::io::fcntl_dupfd_cloexec(fd, 3).unwrap();
    rustix::io::fcntl_setfd(&dup, rustix::io::FdFlags::empty()).unwrap();
    dup
}

/// A child process in `role` reading `data` and answering on `back`, and our
/// ends of the two channels.
fn spawn(transport: &str, role: &str) -> (Child, Tx, Rx) {
    let (our_tx, their_in, their_out, our_rx): (Tx, OwnedFd, OwnedFd, Rx) = match transport {
        "ring" | "ring-read" => {
            let a = SpscRing::create(RING).unwrap();
            let b = SpscRing::create(RING).unwrap();
            let (ia, ib) = (inheritable(&a), inheritable(&b));
            let p = a.producer().unwrap();
            let c = b.consumer().unwrap();
            (Tx::Ring(p), ia, ib, Rx::Ring(c))
        }
        "pipe" => {
            let (r1, w1) = std::io::pipe().unwrap();
            let (r2, w2) = std::io::pipe().unwrap();
            let (ir, iw) = (inheritable(&r1), inheritable(&w2));
            drop((r1, w2));
            (
                Tx::Fd(File::from(OwnedFd::from(w1))),
                ir,
                iw,
                Rx::Fd(File::from(OwnedFd::from(r2))),
            )
        }
        "socketpair" => {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            let a = inheritable(&theirs);
            let b = inheritable(&theirs);
            drop(theirs);
            let ours = OwnedFd::from(ours);
            let ours2 = ours.try_clone().unwrap();
            (Tx::Fd(File::from(ours)), a, b, Rx::Fd(File::from(ours2)))
        }
        t => panic!("unknown transport {t}"),
    };
    let child = Command::new(std::env::current_exe().unwrap())
        .env("VMCIRC_IPC_CHILD", format!("{transport}-{role}"))
        .env("VMCIRC_FD_IN", their_in.as_raw_fd().to_string())
        .env("VMCIRC_FD_OUT", their_out.as_raw_fd().to_string())
        .spawn()
        .unwrap();
    drop((their_in, their_out));
    (child, our_tx, our_rx)
}

// ---- rtrb between two threads ---------------------------------------------------

/// rtrb has no blocking: poll, and yield the CPU every 64 polls, as the shared
/// ring's waits do before they sleep (pure spinning starves the peer on a
/// loaded machine).
fn backoff(idle: &mut u32) {
    *idle += 1;
    if idle.is_multiple_of(64) {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// One-way stream through `rtrb` to a consumer thread that reads into a 64 KiB
/// buffer; `done` counts the bytes it has read.
struct RtrbStream {
    tx: rtrb::Producer<u8>,
    done: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RtrbStream {
    fn new() -> Self {
        let (tx, mut rx) = rtrb::RingBuffer::<u8>::new(RING);
        let done = Arc::new(AtomicU64::new(0));
        let d = done.clone();
        let thread = std::thread::spawn(move || {
            let mut idle = 0u32;
            loop {
                let n = rx.slots();
                if n > 0 {
                    // In place (zero copy), like the shared ring's consumer.
                    let chunk = rx.read_chunk(n).unwrap();
                    std::hint::black_box(chunk.as_slices());
                    chunk.commit_all();
                    d.fetch_add(n as u64, Ordering::Release);
                    idle = 0;
                } else if rx.is_abandoned() {
                    return;
                } else {
                    backoff(&mut idle);
                }
            }
        });
        RtrbStream {
            tx,
            done,
            thread: Some(thread),
        }
    }

    fn send(&mut self, mut data: &[u8]) {
        let mut idle = 0;
        while !data.is_empty() {
            match self.tx.write(data) {
                Ok(n) if n > 0 => data = &data[n..],
                _ => backoff(&mut idle),
            }
        }
    }

    fn wait(&self, total: u64) {
        let mut idle = 0;
        while self.done.load(Ordering::Acquire) < total {
            backoff(&mut idle);
        }
    }
}

impl Drop for RtrbStream {
    fn drop(&mut self) {
        // Replace the producer so the consumer sees it abandoned.
        let (tx, _) = rtrb::RingBuffer::<u8>::new(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- the benchmarks ----------------------------------------------------------------

fn stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream");
    for &chunk in &CHUNKS {
        g.throughput(Throughput::Bytes(chunk as u64));
        let data = vec![0x5au8; chunk];
        for &t in &TRANSPORTS {
            if t == "rtrb" {
                let mut s = RtrbStream::new();
                let mut total = 0u64;
                g.bench_function(BenchmarkId::new(t, chunk), |b| {
                    b.iter_custom(|iters| {
                        let t0 = Instant::now();
                        for _ in 0..iters {
                            s.send(&data);
                        }
                        total += iters * chunk as u64;
                        s.wait(total);
                        let d = t0.elapsed();
                        record(("stream", "rtrb", chunk), iters, d);
                        d
                    })
                });
                continue;
            }
            let (mut child, mut tx, mut rx) = spawn(t, "sink");
            let mut ack = [0u8; 1];
            g.bench_function(BenchmarkId::new(t, chunk), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    tx.send(&(iters * chunk as u64).to_le_bytes());
                    for _ in 0..iters {
                        tx.send(&data);
                    }
                    assert!(rx.recv_exact(&mut ack), "child gone");
                    let d = t0.elapsed();
                    record(("stream", t, chunk), iters, d);
                    d
                })
            });
            drop((tx, rx));
            child.wait().unwrap();
        }
    }
    g.finish();
}

fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong");
    let msg = [0xa5u8; MSG];
    for &t in &TRANSPORTS {
        if t == "ring-read" {
            continue;
        }
        if t == "rtrb" {
            let (mut a_tx, mut a_rx) = rtrb::RingBuffer::<u8>::new(4096);
            let (mut b_tx, mut b_rx) = rtrb::RingBuffer::<u8>::new(4096);
            let echo = std::thread::spawn(move || {
                let mut m = [0u8; MSG];
                let mut idle = 0u32;
                loop {
                    if let Ok(chunk) = a_rx.read_chunk(MSG) {
                        let (x, y) = chunk.as_slices();
                        m[..x.len()].copy_from_slice(x);
                        m[x.len()..].copy_from_slice(y);
                        chunk.commit_all();
                        let mut w = 0;
                        while b_tx.write(&m).map_or(true, |n| n != MSG) {
                            backoff(&mut w);
                        }
                        idle = 0;
                    } else if a_rx.is_abandoned() {
                        return;
                    } else {
                        backoff(&mut idle);
                    }
                }
            });
            let mut m = [0u8; MSG];
            g.bench_function(t, |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        let mut idle = 0;
                        while a_tx.write(&msg).map_or(true, |n| n != MSG) {
                            backoff(&mut idle);
                        }
                        loop {
                            if let Ok(chunk) = b_rx.read_chunk(MSG) {
                                let (x, y) = chunk.as_slices();
                                m[..x.len()].copy_from_slice(x);
                                m[x.len()..].copy_from_slice(y);
                                chunk.commit_all();
                                break;
                            }
                            backoff(&mut idle);
                        }
                    }
                    let d = t0.elapsed();
                    record(("pingpong", "rtrb", MSG), iters, d);
                    d
                })
            });
            drop(a_tx);
            echo.join().unwrap();
            continue;
        }
        let (mut child, mut tx, mut rx) = spawn(t, "echo");
        let mut m = [0u8; MSG];
        g.bench_function(t, |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    tx.send(&msg);
                    assert!(rx.recv_exact(&mut m), "child gone");
                }
                let d = t0.elapsed();
                record(("pingpong", t, MSG), iters, d);
                d
            })
        });
        drop((tx, rx));
        child.wait().unwrap();
    }
    g.finish();
}

// ---- the ratio table ----------------------------------------------------------------

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn table() {
    let s = SAMPLES.lock().unwrap();
    let get = |k: Key| s.get(&k).map(|v| best(v));
    println!();
    println!(
        "Ratio table (time of X / time of the shared ring; > 1.00: the shared ring is faster)."
    );
    println!();
    println!("| case | shared ring | vs shared ring, read(2)-style copy out | vs pipe | vs socketpair | vs rtrb (threads) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let cell = |m: f64, x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.2}", x / m));
    for &chunk in &CHUNKS {
        let Some(m) = get(("stream", "ring", chunk)) else {
            continue;
        };
        println!(
            "| stream, {} B chunks | {:.2} GB/s | {} | {} | {} | {} |",
            chunk,
            chunk as f64 / m,
            cell(m, get(("stream", "ring-read", chunk))),
            cell(m, get(("stream", "pipe", chunk))),
            cell(m, get(("stream", "socketpair", chunk))),
            cell(m, get(("stream", "rtrb", chunk))),
        );
    }
    if let Some(m) = get(("pingpong", "ring", MSG)) {
        println!(
            "| ping-pong, {MSG} B | {:.2} us round trip | - | {} | {} | {} |",
            m / 1000.0,
            cell(m, get(("pingpong", "pipe", MSG))),
            cell(m, get(("pingpong", "socketpair", MSG))),
            cell(m, get(("pingpong", "rtrb", MSG))),
        );
    }
}

fn main() {
    if child() {
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
        .configure_from_args();
    stream(&mut c);
    pingpong(&mut c);
    c.final_summary();
    table();
}
