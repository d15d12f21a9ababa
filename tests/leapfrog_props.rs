//! Property tests: the Linux leapfrog ring against `VecDeque<u8>` and two stream
//! counters, for random sequences of every operation (`push`, `pop`,
//! `pop_into`, `writable` + `commit`, `readable` + `consume`, `peek_into`,
//! `clear`, `fill_from`, `drain_to`), with chunk sizes around the boundaries
//! (0, 1, a page, `len`, `remaining`, the capacity, +-1) and beyond a page and
//! the capacity. Geometries from one page in the smallest window that works
//! (`V = 2 * (K + 1)`: a re-base every few pages) to 16 pages with a look-ahead,
//! so long runs force many re-bases. After every step: the contents, `len`,
//! both stream positions, the free space offered (all of it), the layout's
//! invariant and the ring's entries in `/proc/self/maps` (pages behind the
//! reader merge back into the reservation).
#![cfg(all(target_os = "linux", feature = "std"))]

use std::collections::VecDeque;

use proptest::prelude::*;
use vmcirc::vmcirc::{LeapfrogOptions, LeapfrogRing};
use vmcirc::{ByteRing, RingError};

#[derive(Debug, Clone)]
enum Op {
    Push(u32, u64),
    Pop(u32),
    PopInto(u32),
    WriteCommit(u32, u64),
    ReadConsume(u32),
    PeekInto(u32),
    FillFrom(u32, u64),
    DrainTo(u32),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u32>(), any::<u64>()).prop_map(|(s, d)| Op::Push(s, d)),
        2 => any::<u32>().prop_map(Op::Pop),
        2 => any::<u32>().prop_map(Op::PopInto),
        3 => (any::<u32>(), any::<u64>()).prop_map(|(s, d)| Op::WriteCommit(s, d)),
        2 => any::<u32>().prop_map(Op::ReadConsume),
        1 => any::<u32>().prop_map(Op::PeekInto),
        2 => (any::<u32>(), any::<u64>()).prop_map(|(s, d)| Op::FillFrom(s, d)),
        2 => any::<u32>().prop_map(Op::DrainTo),
        1 => Just(Op::Clear),
    ]
}

fn page() -> usize {
    rustix::param::page_size()
}

/// A size "near" something interesting, chosen by `sel`.
fn size(sel: u32, cap: usize, rel: usize) -> usize {
    let r = (sel >> 4) as usize;
    match sel % 13 {
        0 => rel,
        1 => rel + 1,
        2 => rel.saturating_sub(1),
        3 => cap,
        4 => cap + 1,
        5 => 1,
        6 => 0,
        7 => page(),
        8 => page() + 1 + r % 7,
        9 => r % 8,
        _ => r % (2 * cap + 2),
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// The ring's entries in `/proc/self/maps` (inside its window), with offsets
/// from the window's start. The kernel produces the file a page of text at a
/// time; when another thread (a parallel test) changes its mappings in
/// between, an entry can be listed twice, so repeats are dropped.
fn maps_entries(ring: &LeapfrogRing) -> Vec<String> {
    let l = ring.layout();
    let (base, end) = (l.base, l.base + l.window_len);
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (a, b) = words.next().unwrap().split_once('-').unwrap();
            let a = usize::from_str_radix(a, 16).unwrap();
            let b = usize::from_str_radix(b, 16).unwrap();
            let perms = words.next().unwrap_or("");
            let offset = words.next().unwrap_or("");
            (a < end && b > base).then(|| {
                format!(
                    "{:#x}-{:#x} {perms} {offset}",
                    a.max(base) - base,
                    b.min(end) - base
                )
            })
        })
        .fold(Vec::new(), |mut v: Vec<String>, e| {
            if v.last() != Some(&e) {
                v.push(e);
            }
            v
        })
}

struct Model {
    data: VecDeque<u8>,
    consumed: u64,
}

fn check(r: &mut LeapfrogRing, m: &Model, cap: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.capacity(), cap);
    prop_assert_eq!(r.len(), m.data.len());
    prop_assert_eq!(r.remaining(), cap - m.data.len());
    prop_assert_eq!(r.is_empty(), m.data.is_empty());
    prop_assert_eq!(r.is_full(), m.data.len() == cap);
    prop_assert!(r.peek().iter().eq(m.data.iter()), "contents differ");
    let (a, b) = r.readable_parts();
    prop_assert!(b.is_empty());
    prop_assert_eq!(a.len(), m.data.len());
    prop_assert_eq!(r.read_position(), m.consumed);
    prop_assert_eq!(r.write_position(), m.consumed + m.data.len() as u64);
    let p = page();
    let l = r.layout();
    prop_assert!(l.mapped_start <= l.read - l.read % p);
    prop_assert!(l.read <= l.write && l.write <= l.mapped_end && l.mapped_end <= l.window_len);
    prop_assert_eq!(r.stats().failures, 0);
    // Mapped pages: up to K + 1 + look-ahead ahead of the reader, and those
    // behind it not returned yet (at most as many again). Runs of consecutive
    // physical pages are one entry each (a one-page ring maps each page
    // alone); everything returned is one reservation entry before and one
    // after.
    let k = r.pages();
    let mapped = (l.mapped_end - l.mapped_start) / p;
    prop_assert!(
        mapped <= 2 * (k + 1 + r.lookahead()),
        "{} pages mapped",
        mapped
    );
    let runs = if k == 1 {
        mapped
    } else {
        mapped.div_ceil(k) + 1
    };
    let entries = maps_entries(r);
    prop_assert!(
        entries.len() <= runs + 2,
        "{} maps entries for {} mapped pages: {:?} {:?}",
        entries.len(),
        mapped,
        entries,
        l
    );
    Ok(())
}

fn run(r: &mut LeapfrogRing, ops: &[Op]) -> Result<(), TestCaseError> {
    let cap = r.capacity();
    let mut m = Model {
        data: VecDeque::new(),
        consumed: 0,
    };
    check(r, &m, cap)?;
    for op in ops {
        let len = m.data.len();
        match *op {
            Op::Push(sel, seed) => {
                let data = bytes(size(sel, cap, cap - len), seed);
                let n = r.push(&data);
                prop_assert_eq!(n, data.len().min(cap - len));
                m.data.extend(&data[..n]);
            }
            Op::Pop(sel) => {
                let want = size(sel, cap, len);
                let n = r.pop(want);
                prop_assert_eq!(n, want.min(len));
                m.data.drain(..n);
                m.consumed += n as u64;
            }
            Op::PopInto(sel) => {
                let mut buf = vec![0xEEu8; size(sel, cap, len)];
                let n = r.pop_into(&mut buf);
                prop_assert_eq!(n, buf.len().min(len));
                prop_assert!(buf[..n]
                    .iter()
                    .eq(m.data.drain(..n).collect::<Vec<_>>().iter()));
                m.consumed += n as u64;
            }
            Op::WriteCommit(sel, seed) => {
                let free = cap - len;
                let w = r.writable();
                prop_assert_eq!(w.len(), free);
                let k = size(sel, cap, free).min(free);
                let data = bytes(k, seed);
                w[..k].copy_from_slice(&data);
                // A commit beyond the free space is refused and changes nothing.
                prop_assert_eq!(
                    r.commit(free + 1),
                    Err(RingError::Overflow {
                        requested: free + 1,
                        available: free
                    })
                );
                r.commit(k).unwrap();
                m.data.extend(&data);
            }
            Op::ReadConsume(sel) => {
                let want = size(sel, cap, len);
                if want > len {
                    prop_assert_eq!(
                        r.consume(want),
                        Err(RingError::Underflow {
                            requested: want,
                            available: len
                        })
                    );
                } else {
                    prop_assert!(r.readable()[..want].iter().eq(m.data.range(..want)));
                    r.consume(want).unwrap();
                    m.data.drain(..want);
                    m.consumed += want as u64;
                }
            }
            Op::PeekInto(sel) => {
                let mut buf = vec![0u8; size(sel, cap, len)];
                let n = r.peek_into(&mut buf);
                prop_assert_eq!(n, buf.len().min(len));
                prop_assert!(buf[..n].iter().eq(m.data.range(..n)));
            }
            Op::FillFrom(sel, seed) => {
                let data = bytes(size(sel, cap, cap - len), seed);
                let n = r.fill_from(&mut &data[..]).unwrap();
                prop_assert_eq!(n, data.len().min(cap - len));
                m.data.extend(&data[..n]);
            }
            Op::DrainTo(sel) => {
                let limit = size(sel, cap, len);
                let mut sink = Vec::new();
                let n = r
                    .drain_to(&mut LimitedWriter(&mut sink, limit))
                    .unwrap_or(0);
                prop_assert_eq!(n, limit.min(len));
                prop_assert!(sink.iter().eq(m.data.drain(..n).collect::<Vec<_>>().iter()));
                m.consumed += n as u64;
            }
            Op::Clear => {
                r.clear();
                m.consumed += len as u64;
                m.data.clear();
            }
        }
        check(r, &m, cap)?;
    }
    Ok(())
}

/// Takes at most `limit` bytes per write (0 is `WriteZero` for `drain_to`).
struct LimitedWriter<'a>(&'a mut Vec<u8>, usize);

impl std::io::Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A ring of `pages` pages in a window of `vpages` pages (0: the default).
fn ring(pages: usize, vpages: usize, lookahead: usize) -> LeapfrogRing {
    let mut o = LeapfrogOptions::new().lookahead(lookahead);
    if vpages > 0 {
        o = o.reserve(vpages * page());
    }
    let r = LeapfrogRing::with_options(pages * page(), &o).unwrap();
    assert_eq!(r.capacity(), pages * page());
    r
}

/// `release` cases in release builds (`make test`), a quarter in debug builds.
fn cases(release: u32) -> u32 {
    if cfg!(debug_assertions) {
        release / 4
    } else {
        release
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn one_page_default_window(ops in prop::collection::vec(op(), 1..100)) {
        run(&mut ring(1, 0, 0), &ops)?;
    }

    #[test]
    fn one_page_smallest_window(ops in prop::collection::vec(op(), 1..200)) {
        let mut r = ring(1, 4, 0);
        run(&mut r, &ops)?;
    }

    #[test]
    fn small_rings_small_windows(pages in 1usize..4, extra in 0usize..4, ahead in 0usize..3,
                                 ops in prop::collection::vec(op(), 1..200)) {
        let v = 2 * (pages + 1 + ahead) + extra;
        let mut r = ring(pages, v, ahead);
        prop_assert_eq!(r.lookahead(), ahead);
        run(&mut r, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(24), ..ProptestConfig::default() })]

    #[test]
    fn sixteen_pages_with_lookahead(ahead in 0usize..6, ops in prop::collection::vec(op(), 1..300)) {
        let mut r = ring(16, 2 * (17 + ahead) + 3, ahead);
        run(&mut r, &ops)?;
    }
}

/// A long deterministic run through the smallest window: hundreds to
/// thousands of re-bases, chunks up to three pages, checked against the model throughout.
#[test]
fn many_rebases() {
    let p = page();
    for (pages, ahead) in [(1, 0), (2, 1), (5, 2)] {
        let mut r = ring(pages, 2 * (pages + 1 + ahead), ahead);
        let cap = r.capacity();
        let mut model = VecDeque::new();
        let mut consumed = 0u64;
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut out = vec![0u8; 3 * p];
        let steps = if cfg!(debug_assertions) {
            4_000
        } else {
            20_000
        };
        for _ in 0..steps {
            let x = next();
            let data = bytes((x % (3 * p as u64)) as usize, x);
            let n = r.push(&data);
            assert_eq!(n, data.len().min(cap - model.len()));
            model.extend(&data[..n]);
            let want = (next() % (3 * p as u64)) as usize;
            let got = r.pop_into(&mut out[..want]);
            assert_eq!(got, want.min(model.len()));
            assert!(out[..got]
                .iter()
                .eq(model.drain(..got).collect::<Vec<_>>().iter()));
            consumed += got as u64;
            assert!(r.peek().iter().eq(model.iter()));
            assert_eq!(r.read_position(), consumed);
        }
        let st = r.stats();
        assert_eq!(st.failures, 0, "{:?} {:?}", r.last_error(), r.layout());
        assert!(st.rebases > steps / 20, "{pages} pages: {st:?}");
    }
}
