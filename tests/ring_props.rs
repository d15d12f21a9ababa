//! Property tests: the mirrored ring (memfd backend, 1, 2 and 16 pages) and the
//! modular ring (small odd capacities and a page) against a model of the store
//! (every storage byte, the read position and the length; `VecDeque` semantics for
//! the buffered bytes), for random sequences of every operation, with chunk sizes
//! chosen around the boundaries (0, 1, len, remaining, capacity, +-1, and random
//! up to 2N). The model also holds the FIFO rewind (a write-side call on an empty
//! ring starts over at offset 0) and the LZ77 history a `history_view` shows.
#![cfg(all(unix, feature = "std"))]

use proptest::prelude::*;
use vmcirc::{ByteRing, MirrorRing, ModularRing, RingError};

#[derive(Debug, Clone)]
enum Op {
    Push(u32, u64),
    Pop(u32),
    PopInto(u32),
    WriteCommit(u32, u32, u64),
    ReadConsume(u32),
    HistoryCopy(u32, u32),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u32>(), any::<u64>()).prop_map(|(s, d)| Op::Push(s, d)),
        2 => any::<u32>().prop_map(Op::Pop),
        2 => any::<u32>().prop_map(Op::PopInto),
        2 => (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(a, b, d)| Op::WriteCommit(a, b, d)),
        2 => any::<u32>().prop_map(Op::ReadConsume),
        3 => (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Op::HistoryCopy(a, b)),
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

/// What the tests need beyond [`ByteRing`]: positions, the raw store, and an LZ77
/// copy through the kind's `history_view`.
trait Kind: ByteRing {
    const MIRRORED: bool;
    fn offsets(&self) -> (usize, usize);
    /// The `capacity` storage bytes, in storage order.
    fn storage(&mut self) -> Vec<u8>;
    /// Appends `count` bytes copied one at a time from `distance` behind the
    /// write position; `false` (nothing changed) when the view keeping
    /// `distance` bytes of history has less room than `count`.
    fn lz_copy(&mut self, distance: usize, count: usize) -> bool;
}

impl Kind for MirrorRing {
    const MIRRORED: bool = true;
    fn offsets(&self) -> (usize, usize) {
        (self.read_offset(), self.write_offset())
    }
    fn storage(&mut self) -> Vec<u8> {
        let w = self.window();
        let n = w.len() / 2;
        assert_eq!(&w[..n], &w[n..], "the two copies differ");
        self.store_mut().to_vec()
    }
    fn lz_copy(&mut self, distance: usize, count: usize) -> bool {
        let (buf, pos) = self.history_view(distance);
        assert_eq!(pos, distance);
        if buf.len() - pos < count {
            return false;
        }
        for i in 0..count {
            buf[pos + i] = buf[pos + i - distance];
        }
        self.commit(count).unwrap();
        true
    }
}

impl Kind for ModularRing<Vec<u8>> {
    const MIRRORED: bool = false;
    fn offsets(&self) -> (usize, usize) {
        (self.read_offset(), self.write_offset())
    }
    fn storage(&mut self) -> Vec<u8> {
        self.store().clone()
    }
    fn lz_copy(&mut self, distance: usize, count: usize) -> bool {
        let (store, w, room) = self.history_view(distance);
        let cap = store.len();
        if room < count {
            return false;
        }
        for i in 0..count {
            store[(w + i) % cap] = store[(w + i + cap - distance) % cap];
        }
        self.commit(count).unwrap();
        true
    }
}

/// The model: every storage byte, the read position and the length.
struct Model {
    cap: usize,
    store: Vec<u8>,
    rpos: usize,
    len: usize,
}

impl Model {
    fn new(cap: usize) -> Self {
        Model {
            cap,
            store: vec![0; cap],
            rpos: 0,
            len: 0,
        }
    }
    fn wpos(&self) -> usize {
        (self.rpos + self.len) % self.cap
    }
    fn buffered(&self) -> Vec<u8> {
        (0..self.len)
            .map(|i| self.store[(self.rpos + i) % self.cap])
            .collect()
    }
    /// A write-side call: an empty ring starts over at 0.
    fn write_side(&mut self) {
        if self.len == 0 {
            self.rpos = 0;
        }
    }
    fn append(&mut self, data: &[u8]) {
        for &b in data {
            let w = self.wpos();
            self.store[w] = b;
            self.len += 1;
        }
    }
    fn consume(&mut self, n: usize) {
        self.rpos = (self.rpos + n) % self.cap;
        self.len -= n;
    }
}

fn check<R: Kind>(r: &mut R, m: &Model) -> Result<(), TestCaseError> {
    let cap = m.cap;
    prop_assert_eq!(r.capacity(), cap);
    prop_assert_eq!(r.len(), m.len);
    prop_assert_eq!(r.remaining(), cap - m.len);
    prop_assert_eq!(r.is_empty(), m.len == 0);
    prop_assert_eq!(r.is_full(), m.len == cap);
    let (a, b) = r.readable_parts();
    let mut got = a.to_vec();
    got.extend_from_slice(b);
    prop_assert_eq!(&got, &m.buffered());
    if R::MIRRORED {
        prop_assert!(b.is_empty());
    }
    let mut peeked = vec![0u8; m.len / 2 + 1];
    let n = r.peek_into(&mut peeked);
    prop_assert_eq!(n, peeked.len().min(m.len));
    prop_assert_eq!(&peeked[..n], &got[..n]);
    let (ro, wo) = r.offsets();
    prop_assert_eq!(ro, m.rpos);
    if R::MIRRORED {
        prop_assert_eq!(wo, m.rpos + m.len);
    } else {
        prop_assert_eq!(wo, m.wpos());
    }
    prop_assert_eq!(&r.storage(), &m.store);
    for reserve in [0, 1, m.len, cap, cap + 1] {
        prop_assert_eq!(r.history_space(reserve), cap - m.len.max(reserve.min(cap)));
    }
    Ok(())
}

fn run<R: Kind>(r: &mut R, ops: &[Op]) -> Result<(), TestCaseError> {
    let cap = r.capacity();
    let mut m = Model::new(cap);
    check(r, &m)?;
    for op in ops {
        match *op {
            Op::Push(sel, seed) => {
                let data = bytes(size(sel, cap, cap - m.len), seed);
                let was_empty = m.len == 0;
                let n = r.push(&data);
                prop_assert_eq!(n, data.len().min(cap - m.len));
                m.write_side();
                if was_empty && R::MIRRORED {
                    // The mirrored push may start anywhere in the first page (at
                    // the source's page offset); the model follows it.
                    let start = r.offsets().0;
                    prop_assert!(start < cap.min(4096));
                    m.rpos = start;
                }
                m.append(&data[..n]);
            }
            Op::Pop(sel) => {
                let want = size(sel, cap, m.len);
                let n = r.pop(want);
                prop_assert_eq!(n, want.min(m.len));
                m.consume(n);
            }
            Op::PopInto(sel) => {
                let mut buf = vec![0xEEu8; size(sel, cap, m.len)];
                let n = r.pop_into(&mut buf);
                prop_assert_eq!(n, buf.len().min(m.len));
                prop_assert_eq!(&buf[..n], &m.buffered()[..n]);
                m.consume(n);
            }
            Op::WriteCommit(a, b, seed) => {
                m.write_side();
                let (first, second) = r.writable_parts();
                let free = cap - m.len;
                prop_assert_eq!(first.len() + second.len(), free);
                if R::MIRRORED {
                    prop_assert!(second.is_empty());
                } else {
                    prop_assert_eq!(first.len(), free.min(cap - m.wpos()));
                }
                let k = size(a, cap, first.len()).min(first.len());
                let data = bytes(k, seed);
                first[..k].copy_from_slice(&data);
                // A commit beyond the free space is refused and changes nothing.
                let too = free + 1 + (b as usize % 3);
                prop_assert_eq!(
                    r.commit(too),
                    Err(RingError::Overflow {
                        requested: too,
                        available: free
                    })
                );
                r.commit(k).unwrap();
                m.append(&data);
            }
            Op::ReadConsume(sel) => {
                let want = size(sel, cap, m.len);
                if want > m.len {
                    prop_assert_eq!(
                        r.consume(want),
                        Err(RingError::Underflow {
                            requested: want,
                            available: m.len
                        })
                    );
                } else {
                    let (a, b) = r.readable_parts();
                    let first = want.min(a.len());
                    let model = m.buffered();
                    prop_assert_eq!(&a[..first], &model[..first]);
                    prop_assert_eq!(&b[..want - first], &model[first..want]);
                    r.consume(want).unwrap();
                    m.consume(want);
                }
            }
            Op::HistoryCopy(ds, cs) => {
                let distance = match ds % 4 {
                    0 => cap,
                    1 => 1 + (ds as usize >> 3) % 4,
                    _ => 1 + (ds as usize >> 3) % cap,
                }
                .min(cap);
                let count = size(cs, cap, cap - m.len.max(distance));
                let room = cap - m.len.max(distance);
                let done = r.lz_copy(distance, count);
                prop_assert_eq!(done, count <= room);
                if done {
                    for _ in 0..count {
                        let w = m.wpos();
                        let b = m.store[(w + cap - distance) % cap];
                        m.append(&[b]);
                    }
                }
            }
            Op::Clear => {
                r.clear();
                m.consume(m.len);
            }
        }
        check(r, &m)?;
    }
    Ok(())
}

fn page() -> usize {
    rustix::param::page_size()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mirrored_one_page(ops in prop::collection::vec(op(), 1..80)) {
        let mut r = MirrorRing::with_capacity(page()).unwrap();
        run(&mut r, &ops)?;
    }

    #[test]
    fn mirrored_two_pages(ops in prop::collection::vec(op(), 1..80)) {
        let mut r = MirrorRing::with_capacity(2 * page()).unwrap();
        run(&mut r, &ops)?;
    }

    #[test]
    fn modular_odd(cap in prop::sample::select(vec![1usize, 2, 3, 5, 7, 13, 31, 4097]),
                   ops in prop::collection::vec(op(), 1..120)) {
        let mut r = ModularRing::new(vec![0u8; cap]).unwrap();
        run(&mut r, &ops)?;
    }

    #[test]
    fn modular_pages(pages in 1usize..3, ops in prop::collection::vec(op(), 1..80)) {
        let mut r = ModularRing::new(vec![0u8; pages * page()]).unwrap();
        run(&mut r, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn mirrored_sixteen_pages(ops in prop::collection::vec(op(), 1..60)) {
        let mut r = MirrorRing::with_capacity(16 * page()).unwrap();
        run(&mut r, &ops)?;
    }

    #[test]
    fn modular_sixteen_pages(ops in prop::collection::vec(op(), 1..60)) {
        let mut r = ModularRing::new(vec![0u8; 16 * page()]).unwrap();
        run(&mut r, &ops)?;
    }
}

/// Appends what fits of `data` through `writable_parts` + `commit`.
fn put<R: ByteRing>(r: &mut R, data: &[u8]) -> usize {
    let (a, b) = r.writable_parts();
    let na = data.len().min(a.len());
    a[..na].copy_from_slice(&data[..na]);
    let nb = (data.len() - na).min(b.len());
    b[..nb].copy_from_slice(&data[na..na + nb]);
    r.commit(na + nb).unwrap();
    na + nb
}

/// Both rings agree with each other (data, positions and history) on one long
/// deterministic sequence.
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
                // Through the write side of both: the same rewind (to 0), so the
                // positions and the stores stay equal too.
                let d = bytes(k, x);
                assert_eq!(put(&mut a, &d), put(&mut b, &d));
            }
            1 => {
                let dist = 1 + (x >> 20) as usize % cap;
                let cnt = k % 300;
                assert_eq!(a.lz_copy(dist, cnt), b.lz_copy(dist, cnt));
            }
            _ => {
                let mut x1 = vec![0; k];
                let mut x2 = vec![0; k];
                assert_eq!(a.pop_into(&mut x1), b.pop_into(&mut x2));
                assert_eq!(x1, x2);
            }
        }
        assert_eq!(a.read_offset(), b.read_offset());
    }
    assert_eq!(a.storage(), b.storage());
}
