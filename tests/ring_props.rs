//! Property tests: the mirrored ring (memfd backend, 1, 2 and 16 pages) and the
//! modular ring (small odd capacities and a page) against a `VecDeque` model, for
//! random sequences of every operation, with chunk sizes chosen around the
//! boundaries (0, 1, len, remaining, capacity, +-1, and random up to 2N).
#![cfg(all(unix, feature = "std"))]

use std::collections::VecDeque;

use proptest::prelude::*;
use vmcirc::vmcirc::{ByteRing, MirrorRing, ModularRing, RingError};

#[derive(Debug, Clone)]
enum Op {
    Push(u32, u64),
    Pop(u32),
    PopInto(u32),
    WriteCommit(u32, u32, u64),
    ReadConsume(u32),
    CopyBack(u32, u32),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u32>(), any::<u64>()).prop_map(|(s, d)| Op::Push(s, d)),
        2 => any::<u32>().prop_map(Op::Pop),
        2 => any::<u32>().prop_map(Op::PopInto),
        2 => (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(a, b, d)| Op::WriteCommit(a, b, d)),
        2 => any::<u32>().prop_map(Op::ReadConsume),
        3 => (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Op::CopyBack(a, b)),
        1 => Just(Op::Clear),
    ]
}

/// A size "near" something interesting, chosen by `sel`.
fn size(sel: u32, cap: usize, rel: usize) -> usize {
    let r = (sel >> 4) as usize;
    match sel % 12 {
        0 => rel,
        1 => rel + 1,
        2 => rel.saturating_sub(1),
        3 => cap,
        4 => cap + 1,
        5 => 1,
        6 => 0,
        7 => cap.saturating_sub(1),
        8 => r % 8,
        _ => r % (2 * cap + 2),
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// The model: every byte ever appended (`stream`), and how many were consumed.
struct Model {
    cap: usize,
    stream: Vec<u8>,
    read: usize,
}

impl Model {
    fn len(&self) -> usize {
        self.stream.len() - self.read
    }
    fn buffered(&self) -> VecDeque<u8> {
        self.stream[self.read..].iter().copied().collect()
    }
    fn hist(&self, back: usize) -> u8 {
        // byte `back` positions behind the end of the stream; 0 before the start
        self.stream
            .len()
            .checked_sub(back)
            .map_or(0, |p| self.stream[p])
    }
}

fn check<R: ByteRing>(r: &mut R, m: &Model, mirrored: bool) -> Result<(), TestCaseError> {
    let cap = m.cap;
    prop_assert_eq!(r.capacity(), cap);
    prop_assert_eq!(r.len(), m.len());
    prop_assert_eq!(r.remaining(), cap - m.len());
    prop_assert_eq!(r.is_empty(), m.len() == 0);
    prop_assert_eq!(r.is_full(), m.len() == cap);
    let (a, b) = r.readable_parts();
    let mut got = a.to_vec();
    got.extend_from_slice(b);
    prop_assert!(got.iter().copied().eq(m.buffered()));
    let mut peeked = vec![0u8; m.len() / 2 + 1];
    let n = r.peek_into(&mut peeked);
    prop_assert_eq!(n, peeked.len().min(m.len()));
    prop_assert_eq!(&peeked[..n], &got[..n]);
    let (ro, wo) = (r.read_offset(), r.write_offset());
    prop_assert_eq!(ro, m.read % cap);
    prop_assert_eq!(wo % cap, m.stream.len() % cap);
    if mirrored {
        prop_assert!(b.is_empty());
        prop_assert!(ro < cap && wo >= ro && wo - ro == m.len());
        prop_assert_eq!(r.writable().len(), cap - m.len());
    } else {
        prop_assert!(wo < cap);
        prop_assert_eq!(r.writable().len(), (cap - m.len()).min(cap - wo));
    }
    for reserve in [0, 1, m.len(), cap, cap + 1] {
        prop_assert_eq!(
            r.history_space(reserve),
            cap - m.len().max(reserve.min(cap))
        );
    }
    Ok(())
}

fn run<R: ByteRing>(r: &mut R, ops: &[Op], mirrored: bool) -> Result<(), TestCaseError> {
    let cap = r.capacity();
    let mut m = Model {
        cap,
        stream: Vec::new(),
        read: 0,
    };
    check(r, &m, mirrored)?;
    for op in ops {
        match *op {
            Op::Push(sel, seed) => {
                let data = bytes(size(sel, cap, cap - m.len()), seed);
                let n = r.push(&data);
                prop_assert_eq!(n, data.len().min(cap - m.len()));
                m.stream.extend_from_slice(&data[..n]);
            }
            Op::Pop(sel) => {
                let want = size(sel, cap, m.len());
                let n = r.pop(want);
                prop_assert_eq!(n, want.min(m.len()));
                m.read += n;
            }
            Op::PopInto(sel) => {
                let mut buf = vec![0xEEu8; size(sel, cap, m.len())];
                let n = r.pop_into(&mut buf);
                prop_assert_eq!(n, buf.len().min(m.len()));
                prop_assert_eq!(&buf[..n], &m.stream[m.read..m.read + n]);
                m.read += n;
            }
            Op::WriteCommit(a, b, seed) => {
                let w = r.writable();
                let k = size(a, cap, w.len()).min(w.len());
                let data = bytes(k, seed);
                w[..k].copy_from_slice(&data);
                // A commit beyond the free space is refused and changes nothing.
                let too = cap - m.len() + 1 + (b as usize % 3);
                prop_assert_eq!(
                    r.commit(too),
                    Err(RingError::Overflow {
                        requested: too,
                        available: cap - m.len()
                    })
                );
                r.commit(k).unwrap();
                m.stream.extend_from_slice(&data);
            }
            Op::ReadConsume(sel) => {
                let want = size(sel, cap, m.len());
                if want > m.len() {
                    prop_assert_eq!(
                        r.consume(want),
                        Err(RingError::Underflow {
                            requested: want,
                            available: m.len()
                        })
                    );
                } else {
                    let (a, b) = r.readable_parts();
                    let first = want.min(a.len());
                    prop_assert_eq!(&a[..first], &m.stream[m.read..m.read + first]);
                    prop_assert_eq!(&b[..want - first], &m.stream[m.read + first..m.read + want]);
                    r.consume(want).unwrap();
                    m.read += want;
                }
            }
            Op::CopyBack(ds, cs) => {
                let distance = match ds % 6 {
                    0 => 0,
                    1 => cap,
                    2 => cap + 1,
                    3 => 1 + (ds as usize >> 3) % 4,
                    _ => 1 + (ds as usize >> 3) % cap,
                };
                let count = size(cs, cap, cap - m.len());
                let res = r.copy_back(distance, count);
                if distance == 0 || distance > cap {
                    prop_assert_eq!(
                        res,
                        Err(RingError::BadDistance {
                            distance,
                            capacity: cap
                        })
                    );
                } else if count > cap - m.len() {
                    prop_assert_eq!(
                        res,
                        Err(RingError::Overflow {
                            requested: count,
                            available: cap - m.len()
                        })
                    );
                } else {
                    prop_assert_eq!(res, Ok(()));
                    for _ in 0..count {
                        let b = m.hist(distance);
                        m.stream.push(b);
                    }
                }
            }
            Op::Clear => {
                r.clear();
                m.read = m.stream.len();
            }
        }
        check(r, &m, mirrored)?;
    }
    // The whole history (last N bytes) is still there: copy it out with copy_back.
    r.clear();
    let before = m.stream.len();
    r.copy_back(cap, cap).unwrap();
    for _ in 0..cap {
        let b = m.hist(cap);
        m.stream.push(b);
    }
    m.read = before;
    check(r, &m, mirrored)
}

fn page() -> usize {
    rustix::param::page_size()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mirrored_one_page(ops in prop::collection::vec(op(), 1..80)) {
        let mut r = MirrorRing::with_capacity(page()).unwrap();
        run(&mut r, &ops, true)?;
    }

    #[test]
    fn mirrored_two_pages(ops in prop::collection::vec(op(), 1..80)) {
        let mut r = MirrorRing::with_capacity(2 * page()).unwrap();
        run(&mut r, &ops, true)?;
    }

    #[test]
    fn modular_odd(cap in prop::sample::select(vec![1usize, 2, 3, 5, 7, 13, 31, 4097]),
                   ops in prop::collection::vec(op(), 1..120)) {
        let mut r = ModularRing::new(vec![0u8; cap]).unwrap();
        run(&mut r, &ops, false)?;
    }

    #[test]
    fn modular_pages(pages in 1usize..3, ops in prop::collection::vec(op(), 1..80)) {
        let mut r = ModularRing::new(vec![0u8; pages * page()]).unwrap();
        run(&mut r, &ops, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn mirrored_sixteen_pages(ops in prop::collection::vec(op(), 1..60)) {
        let mut r = MirrorRing::with_capacity(16 * page()).unwrap();
        run(&mut r, &ops, true)?;
    }

    #[test]
    fn modular_sixteen_pages(ops in prop::collection::vec(op(), 1..60)) {
        let mut r = ModularRing::new(vec![0u8; 16 * page()]).unwrap();
        run(&mut r, &ops, false)?;
    }
}

/// Both rings agree with each other on one long deterministic sequence.
#[test]
fn both_rings_same_sequence() {
    let cap = page();
    let mut a = MirrorRing::with_capacity(cap).unwrap();
    let mut b = ModularRing::new(vec![0u8; cap]).unwrap();
    let mut s = 1u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for i in 0..20_000 {
        let x = next();
        let k = (x % (cap as u64 + 200)) as usize;
        match i % 3 {
            0 => {
                let d = bytes(k, x);
                assert_eq!(ByteRing::push(&mut a, &d), ByteRing::push(&mut b, &d));
            }
            1 => {
                let dist = 1 + (x >> 20) as usize % cap;
                let cnt = k % 300;
                assert_eq!(a.copy_back(dist, cnt), b.copy_back(dist, cnt));
            }
            _ => {
                let mut x1 = vec![0; k];
                let mut x2 = vec![0; k];
                assert_eq!(a.pop_into(&mut x1), b.pop_into(&mut x2));
                assert_eq!(x1, x2);
            }
        }
    }
}
