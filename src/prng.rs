//! The project's one deterministic pseudo-random byte stream: splitmix64, each
//! 64-bit output written as 8 little-endian bytes (the generator the heatshrink
//! test data README describes). The shell's `stress` and `fill rand`, the host
//! tool's `sendgen` and the tests all use it, so any side can check another.

/// splitmix64 as a byte stream: each step's 64-bit output as 8 little-endian bytes.
#[derive(Clone)]
pub struct SplitMix64 {
    state: u64,
    buf: [u8; 8],
    used: usize,
}

impl SplitMix64 {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 {
            state: seed,
            buf: [0; 8],
            used: 8,
        }
    }

    /// The next 64-bit value.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `1..=max`.
    pub fn below_inclusive(&mut self, max: u64) -> u64 {
        // Multiply-shift instead of `%`: a 64-bit division is a long library
        // call on ARMv6. Exact for max < 2^32 (all the shell allows).
        let max = max.clamp(1, u64::from(u32::MAX));
        1 + (((self.next_u64() >> 32) * max) >> 32)
    }

    /// Fills `out` with the next bytes of the stream.
    #[inline]
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() && self.used < 8 {
            out[i] = self.buf[self.used];
            self.used += 1;
            i += 1;
        }
        let mut words = out[i..].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.buf = self.next_u64().to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&self.buf[..n]);
            self.used = n;
        }
    }

    /// Compares `data` with the next bytes of the stream; returns mismatches.
    #[inline]
    pub fn verify(&mut self, data: &[u8]) -> u64 {
        fn diff(a: &[u8], b: &[u8]) -> u64 {
            a.iter().zip(b).filter(|(x, y)| x != y).count() as u64
        }
        let mut bad = 0;
        // Bytes left over from the last word, then whole words, then a tail.
        let head = (8 - self.used).min(data.len());
        bad += diff(&data[..head], &self.buf[self.used..self.used + head]);
        self.used += head;
        let mut words = data[head..].chunks_exact(8);
        for w in &mut words {
            let want = self.next_u64().to_le_bytes();
            if w != want {
                bad += diff(w, &want);
            }
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            self.buf = self.next_u64().to_le_bytes();
            bad += diff(rest, &self.buf[..rest.len()]);
            self.used = rest.len();
        }
        bad
    }
}
