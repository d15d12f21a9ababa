//! loom models of the shared-ring protocols, run on the real protocol code
//! (`spsc.rs`, `mpsc.rs`, `header.rs`) with loom's atomics (`make test-loom`:
//! `RUSTFLAGS="--cfg loom" cargo test --lib loom`, preemption bound 3 unless
//! `LOOM_MAX_PREEMPTIONS` says otherwise).
//!
//! Checked in every interleaving (and every weak-memory outcome loom models):
//! bytes and records arrive complete, in order, exactly once (data cells are
//! loom `UnsafeCell`s or Relaxed words, so a missing Acquire/Release shows up as
//! a causality violation or a stale value), and no wake-up is lost: the model
//! futex below sleeps for ever, so a lost wake-up is a deadlock, which loom
//! reports.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::header::{Header, KIND_MPSC, KIND_SPSC};
use super::mpsc::{MpscConsumerCore, MpscProducerCore, Next, Words};
use super::spsc::{ConsumerCore, ProducerCore};

/// The kernel's futex as a model: FUTEX_WAIT compares the word and queues the
/// caller under the hash-bucket lock, and FUTEX_WAKE takes the same lock, so a
/// wake either finds the sleeper queued or the sleeper sees the changed word.
/// No timeout: a lost wake-up hangs, and loom reports the deadlock.
#[derive(Default)]
struct Futex {
    wakes: Mutex<u64>,
    cv: Condvar,
}

impl Futex {
    fn wait(&self, word: &AtomicU32, expected: u32) {
        let mut g = self.wakes.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        let seen = *g;
        while *g == seen {
            g = self.cv.wait(g).unwrap();
        }
    }

    fn wake(&self) {
        *self.wakes.lock().unwrap() += 1;
        self.cv.notify_all();
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

struct Shared {
    h: Header,
    data: [UnsafeCell<u8>; 2],
    data_fx: Futex,
    space_fx: Futex,
}

// SAFETY (test model): the cells are accessed by the protocol's rules, which is
// exactly what loom checks.
unsafe impl Sync for Shared {}

fn spsc(blocking: bool, n: u8) {
    const CAP: u64 = 2;
    let s = Arc::new(Shared {
        h: Header::zeroed(),
        data: [UnsafeCell::new(0), UnsafeCell::new(0)],
        data_fx: Futex::default(),
        space_fx: Futex::default(),
    });
    s.h.init(KIND_SPSC, CAP, 4096, 0);
    let sp = s.clone();
    let producer = thread::spawn(move || {
        let h = &sp.h;
        let mut p = ProducerCore::new(h, CAP).unwrap();
        for v in 1..=n {
            while p.free_at_least(1).unwrap() == 0 {
                if !blocking {
                    thread::yield_now();
                } else if p.prepare_sleep(1).unwrap() {
                    sp.space_fx.wait(&h.space_wait.0, 1);
                }
            }
            let off = p.write_offset();
            // SAFETY: the free byte at the write position is the producer's.
            sp.data[off].with_mut(|c| unsafe { *c = v });
            p.commit(1).unwrap();
            if blocking && p.consumer_needs_wake() {
                sp.data_fx.wake();
            }
        }
        h.producer.0.close();
        if blocking && p.consumer_needs_wake() {
            sp.data_fx.wake();
        }
    });
    let h = &s.h;
    let mut c = ConsumerCore::new(h, CAP).unwrap();
    let mut got = 0u8;
    loop {
        if c.available_at_least(1).unwrap() >= 1 {
            // SAFETY: the committed byte at the read position is the consumer's.
            let v = s.data[c.read_offset()].with(|c| unsafe { *c });
            got += 1;
            assert_eq!(v, got, "bytes in order");
            c.consume(1).unwrap();
            if blocking && c.producer_needs_wake() {
                s.space_fx.wake();
            }
            continue;
        }
        if h.producer.0.state() == super::header::STATE_CLOSED {
            if c.refresh().unwrap() == 0 {
                break;
            }
            continue;
        }
        if !blocking {
            thread::yield_now();
        } else if c.prepare_sleep(1).unwrap() {
            if h.producer.0.state() == super::header::STATE_CLOSED {
                c.cancel_sleep();
                continue;
            }
            s.data_fx.wait(&h.data_wait.0, 1);
        }
    }
    assert_eq!(got, n, "every byte exactly once");
    producer.join().unwrap();
}

/// SPSC with blocking on both sides: 3 bytes through a 2-byte ring, so the
/// producer waits for space and the consumer for data, and the end of the
/// stream arrives through the close.
#[test]
fn spsc_blocking_no_lost_wakeup() {
    model(|| spsc(true, 3));
}

/// The kernel's use: an interrupt handler producing, the shell consuming, no
/// waits (polling).
#[test]
fn spsc_polling() {
    model(|| spsc(false, 3));
}

/// Words of a 32-byte data area, mirrored by taking offsets modulo the size.
#[derive(Clone)]
struct LoomWords(Arc<[AtomicU64; 4]>);

impl Words for LoomWords {
    fn word(&self, offset: usize) -> &AtomicU64 {
        &self.0[(offset / 8) % 4]
    }
    fn zero(&self, offset: usize, len: usize) {
        for o in (offset..offset + len).step_by(8) {
            self.word(o).store(0, Ordering::Relaxed);
        }
    }
}

struct MpscShared {
    h: Header,
    data_fx: Futex,
    space_fx: Futex,
}

/// MPSC: two producers, one 8-byte record each, in a 32-byte ring that holds
/// one 24-byte record at a time (so producers wait for space, the second record
/// wraps the end of the area, and the consumer waits for commits).
#[test]
fn mpsc_two_producers_no_lost_wakeup() {
    model(|| {
        const CAP: u64 = 32;
        let s = Arc::new(MpscShared {
            h: Header::zeroed(),
            data_fx: Futex::default(),
            space_fx: Futex::default(),
        });
        s.h.init(KIND_MPSC, CAP, 4096, 0);
        let words = LoomWords(Arc::new(core::array::from_fn(|_| AtomicU64::new(0))));
        let mut producers = std::vec::Vec::new();
        for id in 0..2u64 {
            let (s, words) = (s.clone(), words.clone());
            producers.push(thread::spawn(move || {
                let h = &s.h;
                let mut p = MpscProducerCore::new(h, words.clone(), CAP, id as usize, id + 1);
                let claim = loop {
                    if let Some(c) = p.try_reserve(8).unwrap() {
                        break c;
                    }
                    if p.prepare_sleep(8).unwrap() {
                        s.space_fx.wait(&h.space_wait.0, 1);
                    }
                };
                let off = claim.payload_offset(CAP);
                words.word(off).store(100 + id, Ordering::Relaxed);
                p.commit(&claim);
                if p.consumer_needs_wake() {
                    s.data_fx.wake();
                }
            }));
        }
        let h = &s.h;
        let mut c = MpscConsumerCore::new(h, words.clone(), CAP).unwrap();
        let mut got = std::vec::Vec::new();
        while got.len() < 2 {
            match c.peek().unwrap() {
                Next::Ready { offset, len, size } => {
                    assert_eq!(len, 8);
                    got.push(words.word(offset).load(Ordering::Relaxed));
                    c.release(size);
                    if c.producers_need_wake() {
                        s.space_fx.wake();
                    }
                }
                Next::Aborted { size } => c.release(size),
                Next::Empty | Next::Pending => {
                    if c.prepare_sleep().unwrap() {
                        s.data_fx.wait(&h.data_wait.0, 1);
                    }
                }
            }
        }
        got.sort_unstable();
        assert_eq!(got, [100, 101], "each record exactly once, fully written");
        for p in producers {
            p.join().unwrap();
        }
    });
}
