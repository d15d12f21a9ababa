//! heatshrink: a streaming LZSS decoder whose window is a ring, and a matching encoder.
//!
//! [heatshrink](https://github.com/atomicobject/heatshrink) is a small LZSS format for
//! embedded systems: a window of `2^W` bytes, back-references of up to `2^L` bytes,
//! and no header (W and L travel out of band). `docs/heatshrink-format.md` in the
//! repository describes the bit stream; in short, MSB first, a token is either
//! `1` + 8 bits (a literal) or `0` + W bits (`distance - 1`) + L bits (`count - 1`),
//! the history starts as `2^W` zero bytes and the last byte is padded with 0..7 bits.
//!
//! # Layout
//!
//! - [`Params`]: a validated (W, L) pair.
//! - [`Decoder`]: the streaming decoder state (a bit accumulator, a pending copy and
//!   the strict flag, 24 bytes). It writes into any [`Window`]; it owns no memory and
//!   never allocates.
//! - [`Window`]: where decoded bytes land and the history lives. Implemented for the
//!   mirrored [`crate::vmcirc::Ring`] (a back-reference is one contiguous copy, and
//!   the caller reads the output as one slice straight from the ring: zero copy) and
//!   for the plain [`crate::vmcirc::ModularRing`] (the same decoder over its store,
//!   wrapping at the end: for comparisons and for targets without a mirror).
//! - [`StreamDecoder`]: a decoder bundled with its window, with the copy-out API
//!   ([`StreamDecoder::decode_into`]) the reference decoder offers.
//! - [`Encoder`]: a streaming, constant-memory encoder (hash chains with lazy
//!   matching) for every W up to 15 and inputs of any length.
//!
//! # Zero-copy decoding with a mirrored ring
//!
//! ```
//! # #[cfg(all(unix, feature = "std"))] {
//! use vmcirc::heatshrink::{Decoder, Status};
//! use vmcirc::{ByteRing, MirrorRing};
//!
//! // `00 08` at W=8, L=4 is one back-reference (d=1, n=2) into the zero history.
//! let stream = [0x00u8, 0x08];
//! let mut dec = Decoder::new(8, 4).unwrap();
//! let mut ring = MirrorRing::with_capacity(4096).unwrap(); // >= 2^W + working space
//! let mut out = Vec::new();
//! let mut input = &stream[..];
//! loop {
//!     let (used, status) = dec.decode(input, &mut ring).unwrap();
//!     input = &input[used..];
//!     out.extend_from_slice(ring.readable()); // one slice, straight from the window
//!     let n = ring.len();
//!     ring.consume(n).unwrap();
//!     if status == Status::NeedInput && input.is_empty() {
//!         break;
//!     }
//! }
//! while dec.finish(&mut ring).unwrap() != Status::Done {
//!     out.extend_from_slice(ring.readable());
//!     let n = ring.len();
//!     ring.consume(n).unwrap();
//! }
//! out.extend_from_slice(ring.readable());
//! assert_eq!(out, [0, 0]);
//! # }
//! ```
//!
//! # Strict mode
//!
//! By default a back-reference reaching before the start of the stream reads zeros,
//! as in the reference decoder: the format starts the history as `2^W` zero bytes,
//! and the reference encoder and [`Encoder`] both emit such references when the
//! input has zero bytes near its start (the stream above is one). [`Decoder::strict`]
//! (and [`StreamDecoder::strict`], `vmcirc hs decompress --strict`) turns them into
//! [`Error::BeforeStart`] instead, for streams from encoders that never use the zero
//! history; streams of the reference encoder and of [`Encoder`] whose input has zero
//! bytes among its first `2^W` may then be rejected. The bytes decoded before the
//! bad token stay published and the error repeats on every later call.
//!
//! ```
//! use vmcirc::heatshrink::{Decoder, Error};
//! use vmcirc::ModularRing;
//!
//! let mut win = ModularRing::new([0u8; 300]).unwrap();
//! let mut dec = Decoder::new(8, 4).unwrap().strict(true);
//! assert_eq!(
//!     dec.decode(&[0x00, 0x08], &mut win),
//!     Err(Error::BeforeStart { distance: 1, produced: 0 })
//! );
//! ```
//!
//! # Mapping to the reference C API
//!
//! | reference (`heatshrink_decoder`) | here |
//! |---|---|
//! | `heatshrink_decoder_alloc(ibs, W, L)` | [`Decoder::new`] (no input buffer: input is read in place) plus a [`Window`] of at least `2^W + 1` bytes |
//! | `reset` | [`Decoder::reset`] (a fresh window is not needed: bytes before the stream start read as zero whatever the window holds) |
//! | `sink` + `poll` until `POLL_EMPTY` | one [`Decoder::decode`] (or [`StreamDecoder::decode_into`]) call returning [`Status::NeedInput`]: all input consumed, a partly read token is kept |
//! | `poll` returning `POLL_MORE` | [`Status::OutputFull`]: the window (or output slice) is full; read/consume and call again |
//! | `finish` returning `FINISH_MORE` / `FINISH_DONE` | [`Decoder::finish`] returning [`Status::OutputFull`] / [`Status::Done`]; unlike the reference it reports a stream cut inside a token ([`Error::Truncated`]) |
//! | (none: a reference before the stream start reads zeros) | the same by default; [`Decoder::strict`]`(true)` reports it as [`Error::BeforeStart`] from `decode` / `finish` |

mod decoder;
mod encoder;
mod window;

pub use decoder::{Decoder, Status, StreamDecoder};
pub use encoder::{Encoder, EncoderBuffers};
pub use window::{View, Window};

use core::fmt;

/// Smallest window exponent W.
pub const MIN_WINDOW_BITS: u8 = 4;
/// Largest window exponent W.
pub const MAX_WINDOW_BITS: u8 = 15;
/// Smallest lookahead exponent L.
pub const MIN_LOOKAHEAD_BITS: u8 = 3;
/// Largest window size `2^W` in bytes.
pub const MAX_WINDOW_SIZE: usize = 1 << MAX_WINDOW_BITS;

/// Why a heatshrink operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// W outside 4..=15 or L outside 3..W.
    BadParams {
        /// The window exponent given.
        window_bits: u8,
        /// The lookahead exponent given.
        lookahead_bits: u8,
    },
    /// The window cannot hold `2^W` bytes of history plus at least one new byte.
    WindowTooSmall {
        /// Bytes the window must hold at least.
        needed: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// The input ended inside a token: at least 8 bits are left over, which padding
    /// (at most 7 bits) can never be.
    Truncated {
        /// Bits of the incomplete token.
        bits: u8,
    },
    /// Strict mode only ([`Decoder::strict`]): a back-reference reaches before the
    /// start of the stream (the format reads those bytes as zeros).
    BeforeStart {
        /// Its distance, 1..=`2^W`.
        distance: u16,
        /// Bytes decoded so far (fewer than `distance`).
        produced: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadParams {
                window_bits,
                lookahead_bits,
            } => write!(
                f,
                "bad heatshrink parameters -w {window_bits} -l {lookahead_bits}: need 4 <= W <= 15 and 3 <= L < W"
            ),
            Error::WindowTooSmall { needed, capacity } => write!(
                f,
                "heatshrink window too small: {capacity} bytes, need at least {needed}"
            ),
            Error::Truncated { bits } => {
                write!(f, "heatshrink stream truncated inside a token ({bits} bits left over)")
            }
            Error::BeforeStart { distance, produced } => write!(
                f,
                "heatshrink back-reference {distance} bytes back, but only {produced} bytes decoded so far"
            ),
        }
    }
}

#[cfg(any(feature = "std", test))]
impl std::error::Error for Error {}

/// A validated (W, L) pair: `4 <= W <= 15`, `3 <= L < W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    window_bits: u8,
    lookahead_bits: u8,
}

impl Params {
    /// Checks W and L.
    pub const fn new(window_bits: u8, lookahead_bits: u8) -> Result<Self, Error> {
        if window_bits < MIN_WINDOW_BITS
            || window_bits > MAX_WINDOW_BITS
            || lookahead_bits < MIN_LOOKAHEAD_BITS
            || lookahead_bits >= window_bits
        {
            return Err(Error::BadParams {
                window_bits,
                lookahead_bits,
            });
        }
        Ok(Params {
            window_bits,
            lookahead_bits,
        })
    }

    /// W.
    pub const fn window_bits(self) -> u8 {
        self.window_bits
    }

    /// L.
    pub const fn lookahead_bits(self) -> u8 {
        self.lookahead_bits
    }

    /// `2^W`: the history the decoder needs and the largest distance.
    pub const fn window_size(self) -> usize {
        1 << self.window_bits
    }

    /// `2^L`: the longest back-reference.
    pub const fn max_count(self) -> usize {
        1 << self.lookahead_bits
    }

    /// Bits of a back-reference token, `1 + W + L`.
    pub const fn backref_bits(self) -> u32 {
        1 + self.window_bits as u32 + self.lookahead_bits as u32
    }

    /// The shortest back-reference the encoder emits: `floor((1 + W + L) / 8) + 1`
    /// (shorter ones cost at least as much as literals).
    pub const fn min_match(self) -> usize {
        (self.backref_bits() / 8) as usize + 1
    }
}
