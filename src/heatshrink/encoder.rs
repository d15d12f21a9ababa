//! The streaming encoder: hash chains and lazy matching in constant memory.
//!
//! The input is copied into a buffer of `2 * 2^W + 2^L + 2` bytes
//! ([`EncoderBuffers`], sized for W = 15): `2^W` bytes of history, then the bytes
//! being matched and their lookahead. When the buffer is full it slides down by
//! `2^W` and every stored position moves with it, so positions never grow with the
//! input (the reference encoder's 16-bit index overflows at W = 15 on inputs of
//! 32 KiB or more; this one has no such limit).
//!
//! Matches are found through hash chains over the first `min_match` bytes of each
//! position (`head`: the latest position per hash; `prev`: the distance back to the
//! previous one), walking at most [`Encoder::set_max_chain`] candidates, and the
//! parse is lazy: a match is held back one position in case the next position
//! starts a longer one. Like the reference, the history starts as `2^W` zero bytes,
//! so leading zeros become back-references.

use core::borrow::BorrowMut;

use super::{Error, Params, Status, MAX_WINDOW_SIZE};

/// Largest lookahead `2^L` (L <= 14 for W = 15).
const MAX_MATCH: usize = MAX_WINDOW_SIZE / 2;
/// Largest input buffer: two windows plus the longest match plus 2.
const MAX_BUF: usize = 2 * MAX_WINDOW_SIZE + MAX_MATCH + 2;
/// Largest hash table.
const MAX_HASH_BITS: u32 = 16;
/// Default number of chain candidates examined per position.
const DEFAULT_MAX_CHAIN: usize = 256;

/// The encoder's memory (about 500 KiB, enough for every W and L): allocate it
/// once, e.g. with [`EncoderBuffers::new_boxed`] on the host or in a `static` on
/// the board.
pub struct EncoderBuffers {
    /// History, current bytes and lookahead (plus 8 bytes so hashing may read past
    /// the filled part).
    win: [u8; MAX_BUF + 8],
    /// Per position: distance back to the previous position with the same hash
    /// (0: none within the window).
    prev: [u16; MAX_BUF],
    /// Per hash: the latest position plus one (0: none).
    head: [u32; 1 << MAX_HASH_BITS],
}

impl EncoderBuffers {
    /// Zeroed buffers (a large value: prefer [`EncoderBuffers::new_boxed`] or a
    /// `static` over a stack variable).
    pub const fn new() -> Self {
        EncoderBuffers {
            win: [0; MAX_BUF + 8],
            prev: [0; MAX_BUF],
            head: [0; 1 << MAX_HASH_BITS],
        }
    }

    /// Zeroed buffers on the heap, without a stack copy.
    #[cfg(any(feature = "std", test))]
    pub fn new_boxed() -> std::boxed::Box<Self> {
        let b = std::boxed::Box::<Self>::new_zeroed();
        // SAFETY: `EncoderBuffers` is only arrays of integers, for which all-zero
        // bytes are a valid value.
        unsafe { b.assume_init() }
    }
}

impl Default for EncoderBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// A streaming heatshrink encoder over borrowed or owned [`EncoderBuffers`].
///
/// ```
/// # #[cfg(feature = "std")] {
/// use vmcirc::heatshrink::{Encoder, EncoderBuffers, Status};
/// let mut enc = Encoder::new(EncoderBuffers::new_boxed(), 8, 4).unwrap();
/// let mut out = [0u8; 16];
/// let (used, n) = enc.encode(&[0, 0], &mut out);
/// assert_eq!(used, 2);
/// let (m, status) = enc.finish(&mut out[n..]);
/// assert_eq!(status, Status::Done);
/// assert_eq!(&out[..n + m], &[0x00, 0x08]); // one back-reference into the zero history
/// # }
/// ```
pub struct Encoder<B: BorrowMut<EncoderBuffers>> {
    bufs: B,
    params: Params,
    /// `2^W`.
    ws: usize,
    /// `2^L`.
    max_match: usize,
    /// Shortest useful match.
    min_match: usize,
    /// Bytes of `win` in use: `2 * ws + max_match + 2`.
    buf_len: usize,
    hash_bits: u32,
    /// Mask for the first `min_match` bytes of a little-endian u32.
    hash_mask: u32,
    max_chain: usize,
    /// Next position to encode.
    pos: usize,
    /// End of the input in `win`.
    fill: usize,
    /// Positions below `ins` are in the hash chains.
    ins: usize,
    /// A literal at `pos - 1` is waiting for the lazy decision.
    prev_avail: bool,
    /// Best match at `pos - 1` (length, distance).
    prev_len: usize,
    prev_dist: usize,
    /// Output bits not yet written (the low `nbits`).
    bits: u64,
    nbits: u32,
}

impl<B: BorrowMut<EncoderBuffers>> Encoder<B> {
    /// An encoder for window `2^window_bits` and lookahead `2^lookahead_bits`
    /// (`4 <= W <= 15`, `3 <= L < W`).
    pub fn new(bufs: B, window_bits: u8, lookahead_bits: u8) -> Result<Self, Error> {
        let params = Params::new(window_bits, lookahead_bits)?;
        let ws = params.window_size();
        let max_match = params.max_count();
        let min_match = params.min_match();
        let hash_bits = (u32::from(window_bits) + 1).clamp(8, MAX_HASH_BITS);
        let mut enc = Encoder {
            bufs,
            params,
            ws,
            max_match,
            min_match,
            buf_len: 2 * ws + max_match + 2,
            hash_bits,
            hash_mask: if min_match >= 4 {
                u32::MAX
            } else {
                (1u32 << (8 * min_match)) - 1
            },
            max_chain: DEFAULT_MAX_CHAIN,
            pos: 0,
            fill: 0,
            ins: 0,
            prev_avail: false,
            prev_len: 0,
            prev_dist: 0,
            bits: 0,
            nbits: 0,
        };
        enc.reset();
        Ok(enc)
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Sets how many earlier positions are tried per position (default 256;
    /// smaller is faster and compresses a little worse). At least 1.
    pub fn set_max_chain(&mut self, n: usize) {
        self.max_chain = n.max(1);
    }

    /// Starts a new stream.
    pub fn reset(&mut self) {
        let ws = self.ws;
        let b = self.bufs.borrow_mut();
        b.win[..ws].fill(0);
        b.head[..1 << self.hash_bits].fill(0);
        self.pos = ws;
        self.fill = ws;
        // The zero history: positions further back than the longest match would
        // only repeat what these give.
        self.ins = ws.saturating_sub(self.max_match);
        self.prev_avail = false;
        self.prev_len = 0;
        self.prev_dist = 0;
        self.bits = 0;
        self.nbits = 0;
    }

    /// Encodes `input` into `output` as far as both go; returns (input bytes
    /// consumed, output bytes written). All input is consumed unless `output`
    /// fills up; some of it stays buffered (as lookahead) until more input or
    /// [`Encoder::finish`].
    pub fn encode(&mut self, input: &[u8], output: &mut [u8]) -> (usize, usize) {
        let mut ip = 0;
        let mut op = 0;
        loop {
            op += self.flush_bits(&mut output[op..]);
            if self.nbits >= 8 {
                return (ip, op);
            }
            if self.fill - self.pos < self.max_match {
                if ip == input.len() {
                    return (ip, op);
                }
                if self.fill == self.buf_len {
                    self.slide();
                }
                let k = (input.len() - ip).min(self.buf_len - self.fill);
                let fill = self.fill;
                self.bufs.borrow_mut().win[fill..fill + k].copy_from_slice(&input[ip..ip + k]);
                self.fill += k;
                ip += k;
                continue;
            }
            self.step();
        }
    }

    /// Ends the stream (after [`Encoder::encode`] has consumed all input): encodes
    /// the buffered bytes and pads the last byte with zero bits. Returns (bytes
    /// written, status): [`Status::OutputFull`] means call again with more room,
    /// [`Status::Done`] that the stream is complete.
    pub fn finish(&mut self, output: &mut [u8]) -> (usize, Status) {
        let mut op = 0;
        loop {
            op += self.flush_bits(&mut output[op..]);
            if self.nbits >= 8 {
                return (op, Status::OutputFull);
            }
            if self.pos < self.fill || self.prev_avail {
                self.step();
                continue;
            }
            if self.nbits > 0 {
                self.bits <<= 8 - self.nbits;
                self.nbits = 8;
                continue;
            }
            return (op, Status::Done);
        }
    }

    /// Writes whole output bytes; returns the count.
    #[inline]
    fn flush_bits(&mut self, output: &mut [u8]) -> usize {
        let mut n = 0;
        while self.nbits >= 8 && n < output.len() {
            self.nbits -= 8;
            output[n] = (self.bits >> self.nbits) as u8;
            n += 1;
        }
        self.bits &= (1u64 << self.nbits) - 1;
        n
    }

    #[inline]
    fn put(&mut self, value: u32, width: u32) {
        self.bits = (self.bits << width) | u64::from(value);
        self.nbits += width;
    }

    fn emit_literal(&mut self, b: u8) {
        self.put(0x100 | u32::from(b), 9);
    }

    fn emit_match(&mut self, dist: usize, len: usize) {
        let w = u32::from(self.params.window_bits());
        let l = u32::from(self.params.lookahead_bits());
        self.put(((dist as u32 - 1) << l) | (len as u32 - 1), 1 + w + l);
    }

    /// Moves everything down by one window.
    fn slide(&mut self) {
        let ws = self.ws;
        let fill = self.fill;
        let hash_len = 1usize << self.hash_bits;
        let b = self.bufs.borrow_mut();
        b.win.copy_within(ws..fill, 0);
        b.prev.copy_within(ws..fill, 0);
        for h in &mut b.head[..hash_len] {
            *h = h.saturating_sub(ws as u32);
        }
        self.pos -= ws;
        self.fill -= ws;
        self.ins -= ws;
    }

    #[inline(always)]
    fn hash(&self, win: &[u8], p: usize) -> usize {
        let v = u32::from_le_bytes([win[p], win[p + 1], win[p + 2], win[p + 3]]) & self.hash_mask;
        (v.wrapping_mul(0x9E37_79B1) >> (32 - self.hash_bits)) as usize
    }

    /// Adds every position below `upto` to the hash chains.
    #[inline]
    fn insert_upto(&mut self, upto: usize) {
        let ws = self.ws;
        while self.ins < upto {
            let p = self.ins;
            let h = self.hash(&self.bufs.borrow().win, p);
            let b = self.bufs.borrow_mut();
            let last = b.head[h] as usize;
            b.prev[p] = if last != 0 && p - (last - 1) <= ws {
                (p - (last - 1)) as u16
            } else {
                0
            };
            b.head[h] = p as u32 + 1;
            self.ins += 1;
        }
    }

    /// The longest match for `pos` of at most `max_len` bytes that beats `min_len`:
    /// (length, distance), length 0 if none.
    #[inline]
    fn longest_match(&self, max_len: usize, min_len: usize) -> (usize, usize) {
        let pos = self.pos;
        let b = self.bufs.borrow();
        let win = &b.win[..];
        let h = self.hash(win, pos);
        let mut cand = b.head[h] as usize;
        let mut best_len = min_len;
        let mut best_dist = 0;
        if cand == 0 {
            return (0, 0);
        }
        cand -= 1;
        let needle = &win[pos..pos + max_len];
        let mut chain = self.max_chain;
        while pos - cand <= self.ws {
            let hay = &win[cand..cand + max_len];
            if best_len < max_len && hay[best_len] == needle[best_len] {
                let len = common_prefix(hay, needle);
                if len > best_len {
                    best_len = len;
                    best_dist = pos - cand;
                    if len == max_len {
                        break;
                    }
                }
            }
            chain -= 1;
            let step = b.prev[cand] as usize;
            if chain == 0 || step == 0 || step > cand {
                break;
            }
            cand -= step;
        }
        if best_dist == 0 {
            (0, 0)
        } else {
            (best_len, best_dist)
        }
    }

    /// One lazy-matching step; emits at most one token.
    fn step(&mut self) {
        let avail = self.fill - self.pos;
        if avail == 0 {
            // End of input: settle the waiting position.
            if self.prev_avail {
                if self.prev_len >= self.min_match {
                    self.emit_match(self.prev_dist, self.prev_len);
                } else {
                    let c = self.bufs.borrow().win[self.pos - 1];
                    self.emit_literal(c);
                }
                self.prev_avail = false;
                self.prev_len = 0;
            }
            return;
        }
        let (mut len, mut dist) = (0, 0);
        if avail >= self.min_match && self.prev_len < self.max_match {
            self.insert_upto(self.pos);
            let max_len = avail.min(self.max_match);
            // Only a longer match than the waiting one matters.
            let floor = self.prev_len.max(self.min_match - 1);
            if floor < max_len {
                (len, dist) = self.longest_match(max_len, floor);
            }
        }
        if self.prev_avail && self.prev_len >= self.min_match && len <= self.prev_len {
            // The match at pos - 1 wins.
            self.emit_match(self.prev_dist, self.prev_len);
            self.pos = self.pos - 1 + self.prev_len;
            self.prev_avail = false;
            self.prev_len = 0;
        } else {
            if self.prev_avail {
                let c = self.bufs.borrow().win[self.pos - 1];
                self.emit_literal(c);
            }
            self.prev_avail = true;
            self.prev_len = len;
            self.prev_dist = dist;
            self.pos += 1;
        }
    }
}

/// Length of the common prefix of two slices of equal length.
#[inline(always)]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]))
            ^ u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}
