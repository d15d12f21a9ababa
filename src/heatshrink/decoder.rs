//! The streaming decoder: a bit accumulator, a token state machine and a fast path.
//!
//! State between calls ([`Decoder`], 24 bytes): up to 63 unread bits of input, a
//! back-reference whose copy did not fit (distance, bytes left), how much has been
//! produced (saturating at `2^W`, for references before the start of the stream) and
//! the strict flag. Input is read in place, never buffered beyond those bits.
//!
//! Strict mode ([`Decoder::strict`]) rejects a back-reference reaching before the
//! start of the stream with [`Error::BeforeStart`] instead of reading zeros. Until
//! `2^W` bytes have been produced it decodes every token through the byte-at-a-time
//! path, which checks each distance; after that no reference can reach that far, so
//! it runs the same hot loop as the default mode (the flag is only looked at outside
//! it).
//!
//! The hot loop ([`Decoder::fast`]) runs while at least 8 input bytes and some
//! output room are left: it refills a 64-bit accumulator with one unaligned
//! big-endian load per token (no per-bit work), decodes a whole token with shifts,
//! and copies back-references in 16- or 8-byte chunks whenever the distance allows
//! (the chunks may write up to 15 bytes past the copy, inside the free space, which
//! later tokens overwrite). Near the end of the input or of the room, tokens go
//! through the byte-at-a-time path, which keeps partial tokens and partial copies.
//!
//! The same code runs over both kinds of [`View`]; only the output cursor differs,
//! so the mirrored and the modular ring are compared with one decoder.

use core::hint::select_unpredictable;

use super::window::{View, Window};
use super::{Error, Params};

/// What a decode call stopped on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// All input was consumed (a partly read token is kept): give more input, or
    /// call `finish` at the end of the stream. The reference's `HSDR_POLL_EMPTY`.
    NeedInput,
    /// No room left to write: read and consume the window (or drain the output
    /// buffer), then call again. The reference's `HSDR_POLL_MORE` / `FINISH_MORE`.
    OutputFull,
    /// `finish` only: the stream is completely decoded. The reference's
    /// `HSDR_FINISH_DONE`.
    Done,
}

/// Bytes a chunked copy may write past its end.
const SLACK: usize = 16;

/// Why the decode loop stopped (one byte, so the slow path returns it in a
/// register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// [`Status::NeedInput`].
    NeedInput,
    /// [`Status::OutputFull`].
    OutputFull,
    /// Strict mode: the token at the top of the accumulator is a back-reference
    /// before the stream start ([`Error::BeforeStart`]).
    BeforeStart,
}

/// The streaming decoder state. It owns no memory: each call is given the input and
/// the [`Window`] to decode into (always the same window for one stream).
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Unread bits, MSB first (bits below the first `nbits` are zero).
    acc: u64,
    nbits: u8,
    wbits: u8,
    lbits: u8,
    /// Distance of the back-reference being copied.
    copy_dist: u16,
    /// Bytes of it still to copy.
    copy_left: u16,
    /// Bytes produced so far, saturating at `2^W`.
    produced: u32,
    /// Reject back-references before the start of the stream.
    strict: bool,
}

impl Decoder {
    /// A decoder for window `2^window_bits` and back-references of up to
    /// `2^lookahead_bits` bytes. Errors unless `4 <= W <= 15` and `3 <= L < W`.
    pub fn new(window_bits: u8, lookahead_bits: u8) -> Result<Self, Error> {
        Ok(Self::with_params(Params::new(window_bits, lookahead_bits)?))
    }

    /// A decoder for validated parameters.
    pub const fn with_params(params: Params) -> Self {
        Decoder {
            acc: 0,
            nbits: 0,
            wbits: params.window_bits(),
            lbits: params.lookahead_bits(),
            copy_dist: 0,
            copy_left: 0,
            produced: 0,
            strict: false,
        }
    }

    /// Strict mode on or off (off by default): when on, a back-reference reaching
    /// before the start of the stream is the error [`Error::BeforeStart`] instead of
    /// reading the zero history.
    ///
    /// The format allows such references: the history starts as `2^W` zero bytes,
    /// and both the reference encoder and [`super::Encoder`] emit them when zero bytes
    /// appear near the start of the input (for example `00 00` at W=8, L=4 is the
    /// single token d=1, n=2). Their streams of inputs with zero bytes in the first
    /// `2^W` are therefore often rejected in strict mode; use it only for streams
    /// from an encoder that never references the zero history.
    ///
    /// Strict mode decodes the first `2^W` output bytes through the byte-at-a-time
    /// path (slower), then at full speed. [`Decoder::reset`] keeps the setting.
    #[must_use]
    pub const fn strict(mut self, on: bool) -> Self {
        self.strict = on;
        self
    }

    /// True in strict mode ([`Decoder::strict`]).
    pub const fn is_strict(&self) -> bool {
        self.strict
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        Params {
            window_bits: self.wbits,
            lookahead_bits: self.lbits,
        }
    }

    /// Forgets the current stream (the next byte starts a new one); keeps the
    /// parameters and the strict setting.
    pub fn reset(&mut self) {
        *self = Self::with_params(self.params()).strict(self.strict);
    }

    /// True when a whole token or part of a copy is waiting that needs no more
    /// input (only room in the window).
    pub fn has_pending_output(&self) -> bool {
        if self.copy_left > 0 {
            return true;
        }
        let need = if self.acc >> 63 != 0 {
            9
        } else {
            1 + self.wbits + self.lbits
        };
        self.nbits > 0 && self.nbits >= need
    }

    /// Checks that `window` can hold the history plus at least one byte.
    fn check_window<W: Window + ?Sized>(&self, window: &W) -> Result<(), Error> {
        let needed = (1usize << self.wbits) + 1;
        let capacity = window.capacity();
        if capacity < needed {
            return Err(Error::WindowTooSmall { needed, capacity });
        }
        Ok(())
    }

    /// Decodes as much of `input` as fits into `window`.
    ///
    /// Returns the number of input bytes consumed (their bits are either decoded or
    /// kept in the decoder) and why it stopped: [`Status::NeedInput`] when all
    /// input is consumed, [`Status::OutputFull`] when the window has no room left
    /// (read and consume it, then call again with the rest of the input). The
    /// decoded bytes are published to the window as they are written, so with a
    /// mirrored [`crate::vmcirc::Ring`] the caller reads them as one slice with
    /// `readable()` and releases them with `consume()`.
    ///
    /// Errors when the window is smaller than `2^W + 1` bytes and, in strict mode
    /// only, with [`Error::BeforeStart`] on a back-reference reaching before the
    /// start of the stream. In that case the bytes decoded before it are published
    /// to the window (read them as usual) and the bad token is kept unconsumed, so
    /// every later `decode` or `finish` returns the same error until
    /// [`Decoder::reset`] (the input up to that token is held in the decoder, none
    /// after it is read). Otherwise malformed input cannot make it fail, and nothing
    /// ever goes out of bounds: every bit string is some sequence of tokens.
    pub fn decode<W: Window + ?Sized>(
        &mut self,
        input: &[u8],
        window: &mut W,
    ) -> Result<(usize, Status), Error> {
        self.check_window(window)?;
        let history = 1usize << self.wbits;
        let (consumed, written, status) = match window.view(history) {
            View::Linear { buf, pos } => {
                assert!(pos >= history && pos <= buf.len(), "bad linear view");
                let mut out = Linear {
                    buf,
                    p: pos,
                    p0: pos,
                };
                let (c, s) = self.run(input, &mut out);
                (c, out.p - pos, s)
            }
            View::Modular { buf, pos, room } => {
                assert!(
                    pos < buf.len() && room <= buf.len() - history.min(buf.len()),
                    "bad modular view"
                );
                let mut out = Modular {
                    buf,
                    w: pos,
                    written: 0,
                    room,
                };
                let (c, s) = self.run(input, &mut out);
                (c, out.written, s)
            }
        };
        // `written` is at most the view's room; a bad count would be refused.
        let done = window.commit(written);
        debug_assert!(done.is_ok());
        match status {
            Stop::NeedInput => Ok((consumed, Status::NeedInput)),
            Stop::OutputFull => Ok((consumed, Status::OutputFull)),
            Stop::BeforeStart => Err(self.before_start()),
        }
    }

    /// The error for the back-reference at the top of the accumulator, which
    /// `slow_token` left there unconsumed.
    #[cold]
    fn before_start(&self) -> Error {
        let w = u32::from(self.wbits);
        Error::BeforeStart {
            distance: (((self.acc << 1) >> (64 - w)) + 1) as u16,
            // Exact: fewer than the distance, so below the `2^W` saturation.
            produced: self.produced,
        }
    }

    /// Ends the stream: completes a pending copy if there is room, then checks what
    /// is left. [`Status::OutputFull`]: read and consume the window, then call
    /// again. [`Status::Done`]: everything is decoded (up to 7 bits of padding were
    /// ignored). [`Error::Truncated`]: the input stopped inside a token.
    /// [`Error::BeforeStart`] (strict mode): as for [`Decoder::decode`].
    ///
    /// Like the reference it cannot tell a stream cut at a token boundary from a
    /// complete one. Call [`Decoder::reset`] before the next stream.
    pub fn finish<W: Window + ?Sized>(&mut self, window: &mut W) -> Result<Status, Error> {
        let (_, status) = self.decode(&[], window)?;
        if status == Status::OutputFull {
            return Ok(Status::OutputFull);
        }
        if self.nbits >= 8 {
            return Err(Error::Truncated { bits: self.nbits });
        }
        Ok(Status::Done)
    }

    /// The decode loop over one output cursor.
    #[inline(always)]
    fn run<O: Cursor>(&mut self, input: &[u8], out: &mut O) -> (usize, Stop) {
        let produced0 = self.produced as usize;
        let wsize = 1usize << self.wbits;
        let mut ip = 0;
        let status = loop {
            if self.copy_left > 0 && !self.pending_copy(out, produced0) {
                break Stop::OutputFull;
            }
            if input.len() - ip >= 8 && out.room() > SLACK {
                if produced0 + out.written() >= wsize {
                    ip += self.fast::<O, true>(&input[ip..], out, produced0);
                } else if !self.strict {
                    ip += self.fast::<O, false>(&input[ip..], out, produced0);
                }
                // Strict and not warm yet: every token goes through `slow_token`,
                // which checks the distance.
            }
            if let Some(status) = self.slow_token(input, &mut ip, out, produced0) {
                break status;
            }
        };
        let total = produced0 + out.written();
        self.produced = total.min(wsize) as u32;
        (ip, status)
    }

    /// Continues the pending copy as far as the room allows; false if it is still
    /// not complete.
    #[inline]
    fn pending_copy<O: Cursor>(&mut self, out: &mut O, produced0: usize) -> bool {
        let d = usize::from(self.copy_dist);
        let mut k = usize::from(self.copy_left).min(out.room());
        self.copy_left -= k as u16;
        let total = produced0 + out.written();
        if d > total {
            // Bytes before the start of the stream are zero.
            let z = (d - total).min(k);
            out.zeros(z);
            k -= z;
        }
        out.copy_exact(d, k);
        self.copy_left == 0
    }

    /// Moves one input byte into the accumulator; false at the end of the input.
    #[inline]
    fn pull(&mut self, input: &[u8], ip: &mut usize) -> bool {
        match input.get(*ip) {
            Some(&b) => {
                // nbits < 30 here (only called when a token is incomplete).
                self.acc |= u64::from(b) << (56 - u32::from(self.nbits));
                self.nbits += 8;
                *ip += 1;
                true
            }
            None => false,
        }
    }

    /// Decodes one token byte by byte; `Some` when it has to stop. A back-reference
    /// becomes the pending copy; in strict mode one reaching before the start of the
    /// stream is an error and stays unconsumed.
    #[inline(never)]
    fn slow_token<O: Cursor>(
        &mut self,
        input: &[u8],
        ip: &mut usize,
        out: &mut O,
        produced0: usize,
    ) -> Option<Stop> {
        if self.nbits == 0 && !self.pull(input, ip) {
            return Some(Stop::NeedInput);
        }
        let literal = self.acc >> 63 != 0;
        let need = if literal {
            9
        } else {
            1 + self.wbits + self.lbits
        };
        while self.nbits < need {
            if !self.pull(input, ip) {
                return Some(Stop::NeedInput);
            }
        }
        if literal {
            if out.room() == 0 {
                return Some(Stop::OutputFull);
            }
            out.lit((self.acc >> 55) as u8);
        } else {
            let (w, l) = (u32::from(self.wbits), u32::from(self.lbits));
            let dist = (((self.acc << 1) >> (64 - w)) + 1) as u16;
            if self.strict && usize::from(dist) > produced0 + out.written() {
                // Leave the token in the accumulator: `decode` reports it, and
                // every later call stops on it again.
                return Some(Stop::BeforeStart);
            }
            self.copy_dist = dist;
            self.copy_left = (((self.acc << (1 + w)) >> (64 - l)) + 1) as u16;
        }
        self.acc <<= need;
        self.nbits -= need;
        None
    }

    /// The hot loop: whole tokens from a 64-bit accumulator while at least 8 input
    /// bytes are left and the next token fits with [`SLACK`] to spare. Returns the
    /// input bytes consumed; stops *before* a token that does not fit. The `WARM`
    /// variant runs once `2^W` bytes have been produced (no reference can reach
    /// before the stream start any more); the other one stops when that happens.
    #[inline(always)]
    fn fast<O: Cursor, const WARM: bool>(
        &mut self,
        input: &[u8],
        out: &mut O,
        produced0: usize,
    ) -> usize {
        let w = u32::from(self.wbits);
        let l = u32::from(self.lbits);
        let wsize = 1usize << w;
        let two = 2 * (1 + w + l) <= 56;
        let mut acc = self.acc;
        let mut nbits = u32::from(self.nbits);
        let mut ip = 0;
        while ip + 8 <= input.len() {
            if !WARM && produced0 + out.written() >= wsize {
                break;
            }
            // Refill to 56..=63 bits: the bits past `nbits` that come in with the
            // load are the true next bits, so OR-ing them in again later is harmless.
            // SAFETY: ip + 8 <= input.len(), so the 8 bytes are inside `input`.
            let v = unsafe { core::ptr::read_unaligned(input.as_ptr().add(ip).cast::<[u8; 8]>()) };
            acc |= u64::from_be_bytes(v) >> nbits;
            debug_assert!(nbits < 64);
            // At most 7 bytes: `ip` never passes `input.len() - 1`.
            ip += (((63 - nbits) >> 3) & 7) as usize;
            nbits |= 56;
            // Two tokens per refill when two of the longest fit in 56 bits (L <= 12
            // for W = 15; up to 30 bits a token otherwise).
            if !token::<O, WARM>(&mut acc, &mut nbits, out, w, l, produced0)
                || (two && !token::<O, WARM>(&mut acc, &mut nbits, out, w, l, produced0))
            {
                break;
            }
        }
        // Keep only the counted bits (the rest belong to unconsumed input).
        self.acc = acc & !(u64::MAX >> nbits);
        self.nbits = nbits as u8;
        ip
    }
}

/// Decodes and writes one token from the top of `acc` (which holds at least
/// `1 + W + L` bits); false, consuming nothing, if it does not fit in the room.
///
/// Literals and short non-overlapping copies (the bulk of every stream) take one
/// branch-free path: a 16-byte load from the history (from the far start of the
/// view for a literal), a 16-byte store, the literal byte stored over the first
/// one when it is a literal, and the position moves by 1 or `n`. Whether a token is
/// a literal is data, not control flow (`select_unpredictable`), so the mix of
/// literals and references costs no mispredicted branches. Only long, overlapping
/// and pre-stream copies branch off.
#[inline(always)]
fn token<O: Cursor, const WARM: bool>(
    acc: &mut u64,
    nbits: &mut u32,
    out: &mut O,
    w: u32,
    l: u32,
    produced0: usize,
) -> bool {
    let a = *acc;
    let is_lit = (a as i64) < 0;
    let d = ((a << 1) >> (64 - w)) as usize + 1;
    let n = ((a << (1 + w)) >> (64 - l)) as usize + 1;
    let len = select_unpredictable(is_lit, 1, n);
    let width = select_unpredictable(is_lit, 9, 1 + w + l);
    if !out.fits(len) {
        return false;
    }
    if !WARM && !is_lit && d > produced0 + out.written() {
        cold_copy(out, d, n, produced0);
    } else if len <= d.min(16) {
        // `len <= d`: the copied bytes are all behind the write position, so one
        // load-then-store is exact (a literal has len 1 and d >= 1).
        out.put16(is_lit, (a >> 55) as u8, d, len);
    } else {
        out.copy_long(d, n);
    }
    *acc = a << width;
    *nbits -= width;
    true
}

/// A back-reference reaching before the start of the stream: zeros, then the rest.
#[cold]
#[inline(never)]
fn cold_copy<O: Cursor>(out: &mut O, d: usize, n: usize, produced0: usize) {
    let total = produced0 + out.written();
    let z = (d - total).min(n);
    out.zeros(z);
    out.copy_exact(d, n - z);
}

/// An output cursor over one kind of view. The decoder checks the room (`fits`,
/// `room`) before writing; distances are at most `2^W`.
trait Cursor {
    /// Bytes that may still be written.
    fn room(&self) -> usize;
    /// `len + SLACK <= room`.
    fn fits(&self, len: usize) -> bool;
    /// Bytes written so far in this call.
    fn written(&self) -> usize;
    /// Writes one byte (`room >= 1`).
    fn lit(&mut self, b: u8);
    /// Writes `n` zero bytes (`room >= n`).
    fn zeros(&mut self, n: usize);
    /// Appends `n` bytes from `d` behind (`room >= n`), exactly.
    fn copy_exact(&mut self, d: usize, n: usize);
    /// Writes the literal `lit` (`is_lit`, `len == 1`) or copies `len <= min(d,
    /// 16)` bytes from `d` behind, as one 16-byte store (after `fits(len)`).
    fn put16(&mut self, is_lit: bool, lit: u8, d: usize, len: usize);
    /// Any other copy (after `fits(n)`); may write up to 15 bytes past its end.
    fn copy_long(&mut self, d: usize, n: usize);
}

/// Loads 16 bytes at `src` and stores them at `dst`, then stores `lit` at `dst`
/// when `is_lit`. Whatever the overlap, the loads happen before the stores. (Only
/// the first `len` bytes matter; `len <= 16`, and `len <= dst - src` for a copy.)
///
/// # Safety
///
/// `[src, src + 16)` and `[dst, dst + 16)` must be inside `buf`.
#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
#[inline(always)]
unsafe fn put16_raw(buf: &mut [u8], src: usize, dst: usize, is_lit: bool, lit: u8, len: usize) {
    debug_assert!(src + 16 <= buf.len() && dst + 16 <= buf.len() && len <= 16);
    let _ = len;
    let base = buf.as_mut_ptr();
    // SAFETY: both ranges are inside `buf` (caller), which we borrow mutably.
    unsafe {
        let v = core::ptr::read_unaligned(base.add(src).cast::<u128>());
        let first = *base.add(src);
        core::ptr::write_unaligned(base.add(dst).cast::<u128>(), v);
        *base.add(dst) = select_unpredictable(is_lit, lit, first);
    }
}

/// [`put16_raw`] for CPUs without cheap unaligned 16-byte accesses (ARMv6 splits
/// them into bytes): the literal, or the `len` bytes one at a time.
///
/// # Safety
///
/// As for the wide version.
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
#[inline(always)]
unsafe fn put16_raw(buf: &mut [u8], src: usize, dst: usize, is_lit: bool, lit: u8, len: usize) {
    debug_assert!(src + 16 <= buf.len() && dst + 16 <= buf.len() && len <= 16);
    let base = buf.as_mut_ptr();
    // SAFETY: both ranges are inside `buf` (caller) and `len <= 16`.
    unsafe {
        if is_lit {
            *base.add(dst) = lit;
        } else {
            for i in 0..len {
                *base.add(dst + i) = *base.add(src + i);
            }
        }
    }
}

/// Copies `n` bytes from `src` to `dst` within `buf` as LZ77 requires (byte order),
/// in chunks where the distance allows; may write up to 15 bytes past `dst + n`
/// (the caller guarantees they are in `buf`, free, and not part of the source).
#[inline(always)]
fn chunk_copy(buf: &mut [u8], src: usize, dst: usize, n: usize) {
    // A source after the destination is never overtaken by the writes.
    let d = dst.wrapping_sub(src);
    if d >= 16 {
        // Chunk k reads bytes that are final before chunk k writes: either they lie
        // before the copy (d >= n) or at least 16 bytes behind what is written.
        let mut i = 0;
        while i < n {
            let mut c = [0u8; 16];
            c.copy_from_slice(&buf[src + i..src + i + 16]);
            buf[dst + i..dst + i + 16].copy_from_slice(&c);
            i += 16;
        }
    } else if d >= 8 {
        let mut i = 0;
        while i < n {
            let mut c = [0u8; 8];
            c.copy_from_slice(&buf[src + i..src + i + 8]);
            buf[dst + i..dst + i + 8].copy_from_slice(&c);
            i += 8;
        }
    } else if d == 1 {
        let b = buf[src];
        buf[dst..dst + n].fill(b);
    } else {
        for i in 0..n {
            buf[dst + i] = buf[src + i];
        }
    }
}

/// Exact LZ77 copy within one run of `buf` (no wrap).
#[inline(always)]
fn exact_copy(buf: &mut [u8], src: usize, dst: usize, n: usize) {
    if dst - src >= n {
        buf.copy_within(src..src + n, dst);
    } else {
        for i in 0..n {
            buf[dst + i] = buf[src + i];
        }
    }
}

/// The mirrored (contiguous) window: history and free space are one slice.
struct Linear<'a> {
    buf: &'a mut [u8],
    /// Write position; `p >= 2^W >= d` always.
    p: usize,
    /// Where this call started writing.
    p0: usize,
}

/// [`Cursor::copy_long`] for [`Linear`], out of line; returns the new position.
#[inline(never)]
fn linear_long(buf: &mut [u8], p: usize, d: usize, n: usize) -> usize {
    chunk_copy(buf, p - d, p, n);
    p + n
}

impl Cursor for Linear<'_> {
    #[inline(always)]
    fn room(&self) -> usize {
        self.buf.len() - self.p
    }
    #[inline(always)]
    fn fits(&self, len: usize) -> bool {
        self.p + len + SLACK <= self.buf.len()
    }
    #[inline(always)]
    fn written(&self) -> usize {
        self.p - self.p0
    }
    #[inline(always)]
    fn lit(&mut self, b: u8) {
        self.buf[self.p] = b;
        self.p += 1;
    }
    #[inline(always)]
    fn zeros(&mut self, n: usize) {
        self.buf[self.p..self.p + n].fill(0);
        self.p += n;
    }
    #[inline(always)]
    fn copy_exact(&mut self, d: usize, n: usize) {
        exact_copy(self.buf, self.p - d, self.p, n);
        self.p += n;
    }
    #[inline(always)]
    fn put16(&mut self, is_lit: bool, lit: u8, d: usize, len: usize) {
        let p = self.p;
        // A literal loads from the far start of the view instead of from
        // wherever its bits point (nearby loads would wait on recent stores).
        let src = select_unpredictable(is_lit, 0, p - d);
        // SAFETY: `p >= 2^W >= d` (the view starts `2^W` bytes in, checked in
        // `decode`, and `p` only grows), so `src + 16 <= p + 16`, and `fits`
        // gave `p + len + 16 <= buf.len()`.
        unsafe { put16_raw(self.buf, src, p, is_lit, lit, len) };
        self.p = p + len;
    }
    #[inline(always)]
    fn copy_long(&mut self, d: usize, n: usize) {
        self.p = linear_long(self.buf, self.p, d, n);
    }
}

/// The modular window: positions wrap at the end of the store.
struct Modular<'a> {
    buf: &'a mut [u8],
    w: usize,
    written: usize,
    room: usize,
}

/// Where a copy `d` behind `w` starts in a store of `cap` bytes (`d <= cap`).
#[inline(always)]
fn wrap_back(w: usize, d: usize, cap: usize) -> usize {
    if w >= d {
        w - d
    } else {
        w + cap - d
    }
}

/// [`Cursor::copy_long`] for [`Modular`], out of line: chunked when neither run
/// crosses the end of the store, byte by byte with wrapping otherwise. Returns the
/// new write position.
#[inline(never)]
fn modular_long(buf: &mut [u8], w: usize, d: usize, n: usize) -> usize {
    let cap = buf.len();
    let mut s = wrap_back(w, d, cap);
    // A source after the destination (it wrapped) is at least `cap - 2^W >= room`
    // ahead, past everything this copy writes.
    if s.max(w) + n + SLACK <= cap {
        chunk_copy(buf, s, w, n);
    } else {
        let mut t = w;
        for _ in 0..n {
            buf[t] = buf[s];
            s += 1;
            if s == cap {
                s = 0;
            }
            t += 1;
            if t == cap {
                t = 0;
            }
        }
    }
    let t = w + n;
    if t >= cap {
        t - cap
    } else {
        t
    }
}

impl Modular<'_> {
    #[inline(always)]
    fn advance(&mut self, n: usize) {
        self.w += n;
        if self.w >= self.buf.len() {
            self.w -= self.buf.len();
        }
        self.written += n;
    }
}

impl Cursor for Modular<'_> {
    #[inline(always)]
    fn room(&self) -> usize {
        self.room - self.written
    }
    #[inline(always)]
    fn fits(&self, len: usize) -> bool {
        self.written + len + SLACK <= self.room
    }
    #[inline(always)]
    fn written(&self) -> usize {
        self.written
    }
    #[inline(always)]
    fn lit(&mut self, b: u8) {
        self.buf[self.w] = b;
        self.advance(1);
    }
    #[inline(always)]
    fn zeros(&mut self, n: usize) {
        let cap = self.buf.len();
        let first = n.min(cap - self.w);
        self.buf[self.w..self.w + first].fill(0);
        self.buf[..n - first].fill(0);
        self.advance(n);
    }
    #[inline(always)]
    fn copy_exact(&mut self, d: usize, n: usize) {
        let s = wrap_back(self.w, d, self.buf.len());
        if s < self.w && self.w + n <= self.buf.len() {
            exact_copy(self.buf, s, self.w, n);
            self.advance(n);
        } else {
            // Wrapping: byte by byte (exact, no overcopy).
            let cap = self.buf.len();
            let (mut s, mut t) = (s, self.w);
            for _ in 0..n {
                self.buf[t] = self.buf[s];
                s = if s + 1 == cap { 0 } else { s + 1 };
                t = if t + 1 == cap { 0 } else { t + 1 };
            }
            self.advance(n);
        }
    }
    #[inline(always)]
    fn put16(&mut self, is_lit: bool, lit: u8, d: usize, len: usize) {
        let w = self.w;
        let cap = self.buf.len();
        let s = select_unpredictable(is_lit, 0, wrap_back(w, d, cap));
        // Both 16-byte runs must end before the end of the store.
        if s.max(w) + SLACK <= cap {
            // SAFETY: just checked that both runs are inside the store.
            unsafe { put16_raw(self.buf, s, w, is_lit, lit, len) };
            self.advance(len);
        } else if is_lit {
            self.lit(lit);
        } else {
            self.copy_long(d, len);
        }
    }
    #[inline(always)]
    fn copy_long(&mut self, d: usize, n: usize) {
        self.w = modular_long(self.buf, self.w, d, n);
        self.written += n;
    }
}

/// A [`Decoder`] bundled with its [`Window`]: the zero-copy API (decode into the
/// window, read it in place) and the reference decoder's copy-out API
/// ([`StreamDecoder::decode_into`], [`StreamDecoder::finish_into`]).
#[derive(Debug)]
pub struct StreamDecoder<W> {
    decoder: Decoder,
    window: W,
}

impl<W: Window> StreamDecoder<W> {
    /// A decoder for (W, L) over `window`, which must hold more than `2^W` bytes.
    pub fn new(window_bits: u8, lookahead_bits: u8, window: W) -> Result<Self, Error> {
        let decoder = Decoder::new(window_bits, lookahead_bits)?;
        decoder.check_window(&window)?;
        Ok(StreamDecoder { decoder, window })
    }

    /// Strict mode on or off ([`Decoder::strict`]): a back-reference reaching before
    /// the start of the stream is [`Error::BeforeStart`].
    #[must_use]
    pub fn strict(mut self, on: bool) -> Self {
        self.decoder = self.decoder.strict(on);
        self
    }

    /// True in strict mode.
    pub fn is_strict(&self) -> bool {
        self.decoder.is_strict()
    }

    /// The window (read decoded bytes from it).
    pub fn window(&self) -> &W {
        &self.window
    }

    /// The window, mutably (consume decoded bytes).
    pub fn window_mut(&mut self) -> &mut W {
        &mut self.window
    }

    /// The decoder state.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Splits into the decoder state and the window.
    pub fn into_parts(self) -> (Decoder, W) {
        (self.decoder, self.window)
    }

    /// Starts a new stream (unread bytes in the window stay readable).
    pub fn reset(&mut self) {
        self.decoder.reset();
    }

    /// Zero copy: [`Decoder::decode`] into the window.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status), Error> {
        self.decoder.decode(input, &mut self.window)
    }

    /// Zero copy: [`Decoder::finish`] into the window.
    pub fn finish(&mut self) -> Result<Status, Error> {
        self.decoder.finish(&mut self.window)
    }

    /// Copy out: decodes `input` into `output` as far as both go. Returns (input
    /// bytes consumed, output bytes written, status): [`Status::OutputFull`] when
    /// `output` is full and more output is ready (call again with the rest of the
    /// input), [`Status::NeedInput`] when all input is consumed and all its output
    /// delivered. Any piece sizes work, down to one byte each.
    ///
    /// An error ([`Error::BeforeStart`] in strict mode) is returned only once every
    /// byte decoded before it has been delivered: a call that delivered some returns
    /// them with [`Status::OutputFull`] even if `output` is not full, and the next
    /// call returns the error.
    pub fn decode_into(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize, Status), Error> {
        let mut ip = 0;
        let mut op = 0;
        loop {
            op += self.window.pop_into(&mut output[op..]);
            if op == output.len() {
                let more =
                    self.window.len() > 0 || ip < input.len() || self.decoder.has_pending_output();
                let status = if more {
                    Status::OutputFull
                } else {
                    Status::NeedInput
                };
                return Ok((ip, op, status));
            }
            let (used, status) = match self.decoder.decode(&input[ip..], &mut self.window) {
                Ok(r) => r,
                Err(e) => {
                    // The decoder keeps the error; deliver what came before it first.
                    op += self.window.pop_into(&mut output[op..]);
                    return if op > 0 {
                        Ok((ip, op, Status::OutputFull))
                    } else {
                        Err(e)
                    };
                }
            };
            ip += used;
            if status == Status::NeedInput && self.window.len() == 0 {
                return Ok((ip, op, Status::NeedInput));
            }
        }
    }

    /// Copy out: ends the stream into `output`. Returns (bytes written, status):
    /// [`Status::OutputFull`] means call again with more output space,
    /// [`Status::Done`] that everything was delivered. Errors are returned as in
    /// [`StreamDecoder::decode_into`], after the bytes decoded before them.
    pub fn finish_into(&mut self, output: &mut [u8]) -> Result<(usize, Status), Error> {
        let mut op = 0;
        loop {
            op += self.window.pop_into(&mut output[op..]);
            let status = match self.decoder.finish(&mut self.window) {
                Ok(s) => s,
                Err(e) => {
                    op += self.window.pop_into(&mut output[op..]);
                    return if op > 0 {
                        Ok((op, Status::OutputFull))
                    } else {
                        Err(e)
                    };
                }
            };
            if status == Status::Done && self.window.len() == 0 {
                return Ok((op, Status::Done));
            }
            if op == output.len() {
                return Ok((op, Status::OutputFull));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmcirc::ByteRing;

    #[test]
    fn state_is_small() {
        assert_eq!(core::mem::size_of::<Decoder>(), 24);
    }

    /// MSB-first bit writer for hand-made streams.
    #[derive(Default)]
    struct Bits {
        bytes: std::vec::Vec<u8>,
        nbits: usize,
    }

    impl Bits {
        fn put(&mut self, v: u32, width: u32) {
            for k in (0..width).rev() {
                if self.nbits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = (v >> k) & 1;
                *self.bytes.last_mut().unwrap() |= (bit as u8) << (7 - self.nbits % 8);
                self.nbits += 1;
            }
        }
        fn lit(&mut self, b: u8) -> &mut Self {
            self.put(0x100 | u32::from(b), 9);
            self
        }
        fn bref(&mut self, w: u32, l: u32, d: u32, n: u32) -> &mut Self {
            self.put(0, 1);
            self.put(d - 1, w);
            self.put(n - 1, l);
            self
        }
    }

    /// Decodes all of `stream` in one call (plus finish) into a fresh modular ring.
    fn decode_once(dec: &mut Decoder, stream: &[u8]) -> Result<std::vec::Vec<u8>, Error> {
        let mut win = crate::vmcirc::ModularRing::new(std::vec![0x5Au8; 70_000]).unwrap();
        let r = dec
            .decode(stream, &mut win)
            .and_then(|_| dec.finish(&mut win));
        let (a, b) = win.peek();
        let out = [a, b].concat();
        r.map(|s| {
            assert_eq!(s, Status::Done);
            out
        })
    }

    #[test]
    fn strict_rejects_the_zero_history_example() {
        // `00 08` at W=8, L=4: d=1, n=2 at the stream start (docs/heatshrink-format.md).
        let mut dec = Decoder::new(8, 4).unwrap();
        assert!(!dec.is_strict());
        assert_eq!(decode_once(&mut dec, &[0x00, 0x08]), Ok(std::vec![0, 0]));

        let mut dec = Decoder::new(8, 4).unwrap().strict(true);
        assert!(dec.is_strict());
        let want = Error::BeforeStart {
            distance: 1,
            produced: 0,
        };
        assert_eq!(decode_once(&mut dec, &[0x00, 0x08]), Err(want));
        assert_eq!(
            std::format!("{want}"),
            "heatshrink back-reference 1 bytes back, but only 0 bytes decoded so far"
        );
        // `reset` keeps the setting, `strict(false)` turns it off.
        dec.reset();
        assert!(dec.is_strict());
        let mut dec = dec.strict(false);
        dec.reset();
        assert_eq!(decode_once(&mut dec, &[0x00, 0x08]), Ok(std::vec![0, 0]));
    }

    #[test]
    fn strict_error_keeps_earlier_output_and_repeats() {
        // 20 literals (so the hot loop would run), then a reference 21 back, then
        // more tokens that must never be decoded.
        let (w, l) = (8, 4);
        let mut s = Bits::default();
        for i in 0..20u8 {
            s.lit(b'a' + i);
        }
        s.bref(w, l, 21, 3).lit(b'z').bref(w, l, 1, 16).lit(b'y');
        let stream = s.bytes.clone();
        let text: std::vec::Vec<u8> = (0..20u8).map(|i| b'a' + i).collect();

        let mut win = crate::vmcirc::ModularRing::new(std::vec![0u8; 300]).unwrap();
        let mut dec = Decoder::new(w as u8, l as u8).unwrap().strict(true);
        let bad = Error::BeforeStart {
            distance: 21,
            produced: 20,
        };
        let want = Err(bad);
        assert_eq!(dec.decode(&stream, &mut win), want);
        // The 20 literals are published; nothing else was written.
        assert_eq!(win.peek(), (&text[..], &[][..]));
        // The bad token stays: again, with or without input, and from finish.
        let (acc, nbits) = (dec.acc, dec.nbits);
        assert_eq!(dec.decode(&stream[20..], &mut win), want);
        assert_eq!(dec.decode(&[], &mut win), want);
        assert_eq!(dec.finish(&mut win), Err(bad));
        assert_eq!((dec.acc, dec.nbits), (acc, nbits));
        assert_eq!(win.peek(), (&text[..], &[][..]));

        // The default mode reads zeros there and goes on.
        let mut dec = Decoder::new(w as u8, l as u8).unwrap();
        let mut want = text.clone();
        want.extend_from_slice(&[0, b'a', b'b', b'z']);
        want.extend(std::iter::repeat_n(b'z', 16));
        want.push(b'y');
        assert_eq!(decode_once(&mut dec, &stream), Ok(want));
    }

    #[test]
    fn strict_error_after_a_pending_copy_in_one_byte_pieces() {
        // A literal, a valid reference longer than the room (it becomes a pending
        // copy over several calls), then a bad reference: the copy completes and
        // is published, then the error comes, and stays.
        let (w, l) = (8, 4);
        let mut s = Bits::default();
        s.lit(7).bref(w, l, 1, 8).bref(w, l, 20, 2).lit(1);
        let mut store = std::vec![0u8; 256 + 3];
        let mut win = crate::vmcirc::ModularRing::new(&mut store[..]).unwrap();
        let mut dec = Decoder::new(w as u8, l as u8).unwrap().strict(true);
        let mut out = std::vec::Vec::new();
        let mut drain = |win: &mut crate::vmcirc::ModularRing<&mut [u8]>| {
            let mut buf = [0u8; 2];
            let n = win.pop_into(&mut buf);
            out.extend_from_slice(&buf[..n]);
        };
        let mut err = None;
        'outer: for b in &s.bytes {
            let mut input = core::slice::from_ref(b);
            loop {
                let r = dec.decode(input, &mut win);
                drain(&mut win);
                match r {
                    Ok((used, st)) => {
                        input = &input[used..];
                        if st == Status::NeedInput {
                            break;
                        }
                    }
                    Err(e) => {
                        err = Some(e);
                        break 'outer;
                    }
                }
            }
        }
        let want = Error::BeforeStart {
            distance: 20,
            produced: 9,
        };
        assert_eq!(err, Some(want));
        while win.len() > 0 {
            drain(&mut win);
        }
        assert_eq!(dec.finish(&mut win), Err(want));
        assert_eq!(win.len(), 0);
        assert_eq!(out, [7u8; 9]);
    }

    #[test]
    fn strict_switches_to_the_hot_loop_once_warm() {
        // W = 4: the first 16 bytes go byte by byte, the rest through `fast`, with
        // long streams of in-range references; both modes agree.
        let (w, l) = (4, 3);
        let mut s = Bits::default();
        for i in 0..16u8 {
            s.lit(i + 1);
        }
        for i in 0..3000u32 {
            s.bref(w, l, 1 + i % 16, 1 + i % 8).lit(i as u8);
        }
        let default = decode_once(&mut Decoder::new(4, 3).unwrap(), &s.bytes).unwrap();
        let strict = decode_once(&mut Decoder::new(4, 3).unwrap().strict(true), &s.bytes);
        assert_eq!(strict, Ok(default));
    }

    #[test]
    fn long_tokens_one_per_refill() {
        // W = 15, L = 14: 30-bit back-references, two do not fit in one refill.
        // Eight references d = 1, n = 2^14 after one literal 'x'.
        let mut bits: u128 = 0;
        let mut nbits = 0;
        let mut put = |v: u128, w: u32| {
            bits = bits << w | v;
            nbits += w;
        };
        put(0x100 | u128::from(b'x'), 9);
        for _ in 0..3 {
            put((1 << 14) - 1, 30); // tag 0, d - 1 = 0, n - 1 = 2^14 - 1
        }
        let pad = (8 - nbits % 8) % 8;
        let total = nbits + pad;
        let v = bits << pad;
        let stream: std::vec::Vec<u8> = (0..total / 8)
            .map(|i| (v >> (total - 8 - 8 * i)) as u8)
            .collect();
        let mut dec = Decoder::new(15, 14).unwrap();
        let mut win = crate::vmcirc::ModularRing::new(std::vec![0u8; 200_000]).unwrap();
        assert_eq!(
            dec.decode(&stream, &mut win),
            Ok((stream.len(), Status::NeedInput))
        );
        assert_eq!(dec.finish(&mut win), Ok(Status::Done));
        assert_eq!(win.len(), 1 + 3 * (1 << 14));
        let (a, b) = win.peek();
        assert!(a.iter().chain(b).all(|&c| c == b'x'));
    }
}
