//! Property tests for heatshrink:
//!
//! - fuzz: random bytes decoded with random (W, L), random piece sizes and each
//!   window give exactly what a naive bit-at-a-time decoder gives (so no crash, no
//!   out-of-bounds access, no divergence), and `finish` reports truncation exactly
//!   when 8 or more bits of a token are left over;
//! - round trip: random data (random bytes, runs, repeats) encoded with random
//!   (W, L) and piece sizes decodes back to itself;
//! - long inputs: the encoder keeps working past 32 KiB at W = 15 and across many
//!   window slides.

use proptest::prelude::*;
use vmcirc::heatshrink::{Decoder, Encoder, EncoderBuffers, Error, Status, StreamDecoder, Window};
use vmcirc::vmcirc::ModularRing;

/// The format, one bit at a time: (output, bits left over after the last token).
fn naive_decode(stream: &[u8], w: u32, l: u32) -> (Vec<u8>, usize) {
    let total = stream.len() * 8;
    let bit = |i: usize| (stream[i / 8] >> (7 - i % 8)) & 1;
    let field = |at: usize, width: u32| {
        (0..width as usize).fold(0usize, |v, k| v << 1 | bit(at + k) as usize)
    };
    let mut out: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        if pos >= total {
            return (out, 0);
        }
        if bit(pos) == 1 {
            if pos + 9 > total {
                return (out, total - pos);
            }
            out.push(field(pos + 1, 8) as u8);
            pos += 9;
        } else {
            let need = 1 + (w + l) as usize;
            if pos + need > total {
                return (out, total - pos);
            }
            let d = field(pos + 1, w) + 1;
            let n = field(pos + 1 + w as usize, l) + 1;
            for _ in 0..n {
                let b = if out.len() >= d {
                    out[out.len() - d]
                } else {
                    0
                };
                out.push(b);
            }
            pos += need;
        }
    }
}

fn wl() -> impl Strategy<Value = (u8, u8)> {
    prop_oneof![
        (4u8..=15).prop_flat_map(|w| (Just(w), 3u8..w)),
        // Long tokens: two of them no longer fit in one 56-bit refill.
        (13u8..=15).prop_flat_map(|w| (Just(w), (w - 3)..w)),
    ]
}

/// Decodes through `window` in `piece`-byte input pieces, draining at most
/// `drain` bytes per call via `read`; returns the output and the finish result.
fn decode_with<W: Window>(
    stream: &[u8],
    w: u8,
    l: u8,
    window: &mut W,
    piece: usize,
    drain: usize,
    limit: usize,
) -> (Vec<u8>, Result<Status, Error>) {
    let mut dec = Decoder::new(w, l).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; drain];
    for chunk in stream.chunks(piece) {
        let mut input = chunk;
        loop {
            let (used, status) = dec.decode(input, window).unwrap();
            input = &input[used..];
            let n = window.drain_into(&mut buf);
            out.extend_from_slice(&buf[..n]);
            if status == Status::NeedInput {
                break;
            }
            if out.len() > limit {
                return (out, Ok(Status::OutputFull));
            }
        }
    }
    let fin = loop {
        match dec.finish(window) {
            Ok(Status::OutputFull) => {}
            other => break other,
        }
        let n = window.drain_into(&mut buf);
        out.extend_from_slice(&buf[..n]);
    };
    while window.buffered() > 0 {
        let n = window.drain_into(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }
    (out, fin)
}

fn encode(data: &[u8], w: u8, l: u8, in_piece: usize, out_piece: usize) -> Vec<u8> {
    let mut enc = Encoder::new(Box::new(EncoderBuffers::new()), w, l).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; out_piece];
    for chunk in data.chunks(in_piece) {
        let mut input = chunk;
        while !input.is_empty() {
            let (used, n) = enc.encode(input, &mut buf);
            input = &input[used..];
            out.extend_from_slice(&buf[..n]);
        }
    }
    loop {
        let (n, status) = enc.finish(&mut buf);
        out.extend_from_slice(&buf[..n]);
        if status == Status::Done {
            return out;
        }
    }
}

fn decode_all(stream: &[u8], w: u8, l: u8) -> Vec<u8> {
    let mut dec =
        StreamDecoder::new(w, l, ModularRing::new(vec![0u8; (1 << w) + 1000]).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut input = stream;
    loop {
        let (used, n, status) = dec.decode_into(input, &mut buf).unwrap();
        input = &input[used..];
        out.extend_from_slice(&buf[..n]);
        if status == Status::NeedInput {
            break;
        }
    }
    loop {
        let (n, status) = dec.finish_into(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
        if status == Status::Done {
            return out;
        }
    }
}

/// Data with structure: random bytes, runs and repeats of earlier parts.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            prop::collection::vec(any::<u8>(), 1..40).prop_map(|v| (0u8, v, 0usize, 0usize)),
            (any::<u8>(), 1usize..300).prop_map(|(b, n)| (1u8, vec![b], n, 0)),
            (1usize..5000, 1usize..400).prop_map(|(d, n)| (2u8, vec![], d, n)),
        ],
        0..60,
    )
    .prop_map(|parts| {
        let mut out: Vec<u8> = Vec::new();
        for (kind, bytes, a, b) in parts {
            match kind {
                0 => out.extend_from_slice(&bytes),
                1 => out.extend(std::iter::repeat_n(bytes[0], a)),
                _ => {
                    for _ in 0..b {
                        let v = if out.len() >= a {
                            out[out.len() - a]
                        } else {
                            7
                        };
                        out.push(v);
                    }
                }
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fuzz_matches_naive_decoder(
        stream in prop::collection::vec(any::<u8>(), 0..600),
        (w, l) in wl(),
        piece in 1usize..40,
        drain in 1usize..3000,
        spare in 1usize..200,
    ) {
        let (want, left) = naive_decode(&stream, w.into(), l.into());
        let limit = want.len() + 10;
        let ws = 1usize << w;

        let mut win = ModularRing::new(vec![0x5Au8; ws + spare]).unwrap();
        let (got, fin) = decode_with(&stream, w, l, &mut win, piece, drain, limit);
        prop_assert_eq!(&got, &want, "modular ring");
        if left >= 8 {
            prop_assert_eq!(fin, Err(Error::Truncated { bits: left as u8 }));
        } else {
            prop_assert_eq!(fin, Ok(Status::Done));
        }

        #[cfg(all(unix, feature = "std"))]
        {
            let mut ring = vmcirc::vmcirc::MirrorRing::with_capacity(ws + spare).unwrap();
            let (got, fin2) = decode_with(&stream, w, l, &mut ring, piece, drain, limit);
            prop_assert_eq!(&got, &want, "mirrored ring");
            prop_assert_eq!(fin2, if left >= 8 { Err(Error::Truncated { bits: left as u8 }) } else { Ok(Status::Done) });
        }
    }

    #[test]
    fn fuzz_copy_out_any_pieces(
        stream in prop::collection::vec(any::<u8>(), 0..400),
        (w, l) in wl(),
        piece in 1usize..20,
        out_piece in 1usize..50,
    ) {
        let (want, _) = naive_decode(&stream, w.into(), l.into());
        let mut dec = StreamDecoder::new(w, l, ModularRing::new(vec![0u8; (1 << w) + 3]).unwrap()).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; out_piece];
        for chunk in stream.chunks(piece) {
            let mut input = chunk;
            loop {
                let (used, n, status) = dec.decode_into(input, &mut buf).unwrap();
                input = &input[used..];
                got.extend_from_slice(&buf[..n]);
                if status == Status::NeedInput {
                    prop_assert!(input.is_empty());
                    break;
                }
            }
        }
        loop {
            match dec.finish_into(&mut buf) {
                Ok((n, status)) => {
                    got.extend_from_slice(&buf[..n]);
                    if status == Status::Done {
                        break;
                    }
                }
                Err(Error::Truncated { .. }) => break,
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn bad_parameters_are_errors(w in any::<u8>(), l in any::<u8>()) {
        let ok = (4..=15).contains(&w) && l >= 3 && l < w;
        prop_assert_eq!(Decoder::new(w, l).is_ok(), ok);
        prop_assert_eq!(Encoder::new(Box::new(EncoderBuffers::new()), w, l).is_ok(), ok);
    }

    #[test]
    fn round_trip_random(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        (w, l) in wl(),
        in_piece in 1usize..5000,
        out_piece in 1usize..100,
    ) {
        let stream = encode(&data, w, l, in_piece, out_piece);
        prop_assert_eq!(decode_all(&stream, w, l), data);
    }

    #[test]
    fn round_trip_structured(
        data in structured(),
        (w, l) in wl(),
        in_piece in 1usize..20000,
    ) {
        let stream = encode(&data, w, l, in_piece, 777);
        prop_assert_eq!(decode_all(&stream, w, l), data);
    }
}

/// splitmix64 bytes (as in the test data README).
fn splitmix(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    vmcirc::prng::SplitMix64::new(seed).fill(&mut out);
    out
}

#[test]
fn long_inputs_round_trip() {
    // Past 32 KiB at W = 15 (the reference's 16-bit index limit) and many slides at
    // small W: text-like data with long-distance repeats, zeros and noise.
    let mut data = Vec::new();
    let noise = splitmix(50_000, 3);
    for i in 0..2000u32 {
        data.extend_from_slice(
            format!("line {i}: the quick brown fox {} jumps\n", i % 37).as_bytes(),
        );
        if i % 250 == 0 {
            data.extend_from_slice(&noise[(i as usize * 97) % 40_000..][..3000]);
            data.extend(std::iter::repeat_n(0u8, 5000));
        }
    }
    let copy = data[..70_000].to_vec();
    data.extend_from_slice(&copy);
    assert!(data.len() > 150_000);
    for (w, l) in [(15, 8), (15, 14), (14, 7), (11, 4), (8, 4), (5, 3), (4, 3)] {
        let stream = encode(&data, w, l, 4093, 65536);
        assert_eq!(decode_all(&stream, w, l), data, "w{w} l{l}");
        if w >= 11 {
            assert!(
                stream.len() < data.len() / 2,
                "w{w} l{l}: {} bytes",
                stream.len()
            );
        }
    }
}

#[test]
fn format_example_two_zeros() {
    assert_eq!(encode(&[0, 0], 8, 4, 1, 1), [0x00, 0x08]);
    assert_eq!(encode(&[], 11, 4, 1, 1), [] as [u8; 0]);
    assert_eq!(decode_all(&[0x00, 0x08], 8, 4), [0, 0]);
}
