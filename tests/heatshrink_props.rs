//! Property tests for heatshrink:
//!
//! - fuzz: random bytes decoded with random (W, L), random piece sizes and each
//!   window give exactly what a naive bit-at-a-time decoder gives (so no crash, no
//!   out-of-bounds access, no divergence), and `finish` reports truncation exactly
//!   when 8 or more bits of a token are left over;
//! - round trip: random data (random bytes, runs, repeats) encoded with random
//!   (W, L) and piece sizes decodes back to itself;
//! - long inputs: the encoder keeps working past 32 KiB at W = 15 and across many
//!   window slides;
//! - strict mode: random bytes decode exactly as in the default mode up to the first
//!   back-reference reaching before the stream start, which is
//!   `Error::BeforeStart`, repeated by every later call, with the bytes before it
//!   intact; the manifest rows it rejects are exactly those with `prestream_refs` in
//!   `STATS.tsv`; our encoder's streams pass unless the input has a zero byte among
//!   its first `2^W`.

use proptest::prelude::*;
use vmcirc::heatshrink::{Decoder, Encoder, EncoderBuffers, Error, Status, StreamDecoder, Window};
use vmcirc::ModularRing;

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

/// Decodes with `dec` through `window` in `piece`-byte input pieces, draining at
/// most `drain` bytes per call via `read` (giving up once the output passes
/// `limit`); returns the output (everything published, also before an error) and
/// the finish result or the first error.
fn decode_with<W: Window>(
    dec: &mut Decoder,
    stream: &[u8],
    window: &mut W,
    piece: usize,
    drain: usize,
    limit: usize,
) -> (Vec<u8>, Result<Status, Error>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; drain];
    let mut read = |window: &mut W, out: &mut Vec<u8>| {
        let n = window.pop_into(&mut buf);
        out.extend_from_slice(&buf[..n]);
    };
    let mut result = None;
    'stream: for chunk in stream.chunks(piece) {
        let mut input = chunk;
        loop {
            match dec.decode(input, window) {
                Ok((used, status)) => {
                    input = &input[used..];
                    read(window, &mut out);
                    if status == Status::NeedInput {
                        break;
                    }
                    if out.len() > limit {
                        return (out, Ok(Status::OutputFull));
                    }
                }
                Err(e) => {
                    result = Some(Err(e));
                    break 'stream;
                }
            }
        }
    }
    let result = match result {
        Some(r) => r,
        None => loop {
            match dec.finish(window) {
                Ok(Status::OutputFull) => read(window, &mut out),
                other => break other,
            }
        },
    };
    while window.len() > 0 {
        read(window, &mut out);
    }
    (out, result)
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
        let (got, fin) = decode_with(&mut Decoder::new(w, l).unwrap(), &stream, &mut win, piece, drain, limit);
        prop_assert_eq!(&got, &want, "modular ring");
        if left >= 8 {
            prop_assert_eq!(fin, Err(Error::Truncated { bits: left as u8 }));
        } else {
            prop_assert_eq!(fin, Ok(Status::Done));
        }

        #[cfg(all(unix, feature = "std"))]
        {
            let mut ring = vmcirc::vmcirc::MirrorRing::with_capacity(ws + spare).unwrap();
            let (got, fin2) = decode_with(&mut Decoder::new(w, l).unwrap(), &stream, &mut ring, piece, drain, limit);
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

// ---- strict mode ----

/// The first back-reference reaching before the stream start: (distance, bytes
/// output before it), following the same token walk as [`naive_decode`].
fn naive_first_before_start(stream: &[u8], w: u32, l: u32) -> Option<(usize, usize)> {
    let total = stream.len() * 8;
    let bit = |i: usize| (stream[i / 8] >> (7 - i % 8)) & 1;
    let field = |at: usize, width: u32| {
        (0..width as usize).fold(0usize, |v, k| v << 1 | bit(at + k) as usize)
    };
    let (mut pos, mut produced) = (0, 0);
    loop {
        if pos >= total {
            return None;
        }
        if bit(pos) == 1 {
            if pos + 9 > total {
                return None;
            }
            produced += 1;
            pos += 9;
        } else {
            let need = 1 + (w + l) as usize;
            if pos + need > total {
                return None;
            }
            let d = field(pos + 1, w) + 1;
            if d > produced {
                return Some((d, produced));
            }
            produced += field(pos + 1 + w as usize, l) + 1;
            pos += need;
        }
    }
}

/// The strict decoder's expected result: the output and how `finish` (or the
/// decode call that hits the bad token) ends.
fn strict_expectation(stream: &[u8], w: u8, l: u8) -> (Vec<u8>, Result<Status, Error>) {
    let (mut want, left) = naive_decode(stream, w.into(), l.into());
    match naive_first_before_start(stream, w.into(), l.into()) {
        Some((d, p)) => {
            want.truncate(p);
            let e = Error::BeforeStart {
                distance: d as u16,
                produced: p as u32,
            };
            (want, Err(e))
        }
        None if left >= 8 => (want, Err(Error::Truncated { bits: left as u8 })),
        None => (want, Ok(Status::Done)),
    }
}

/// Zero copy in strict mode through `window`, `piece`-byte input pieces, at most
/// `drain` bytes read per call. On an error it checks that the error repeats (on
/// `decode` with and without input, and on `finish`) without publishing anything
/// more.
fn strict_decode_with<W: Window>(
    stream: &[u8],
    w: u8,
    l: u8,
    window: &mut W,
    piece: usize,
    drain: usize,
) -> (Vec<u8>, Result<Status, Error>) {
    let mut dec = Decoder::new(w, l).unwrap().strict(true);
    assert!(dec.is_strict());
    let (out, result) = decode_with(&mut dec, stream, window, piece, drain, usize::MAX);
    if let Err(e @ Error::BeforeStart { .. }) = result {
        assert_eq!(dec.decode(stream, window), Err(e));
        assert_eq!(dec.decode(&[], window), Err(e));
        assert_eq!(dec.finish(window), Err(e));
        assert_eq!(window.len(), 0, "published more after the error");
    }
    (out, result)
}

/// Copy out in strict mode ([`StreamDecoder::decode_into`] / `finish_into`): every
/// byte decoded before an error is delivered before it.
fn strict_copy_out(
    stream: &[u8],
    w: u8,
    l: u8,
    piece: usize,
    out_piece: usize,
) -> (Vec<u8>, Result<Status, Error>) {
    let win = ModularRing::new(vec![0xA5u8; (1 << w) + 3]).unwrap();
    let mut dec = StreamDecoder::new(w, l, win).unwrap().strict(true);
    assert!(dec.is_strict());
    let mut got = Vec::new();
    let mut buf = vec![0u8; out_piece];
    for chunk in stream.chunks(piece) {
        let mut input = chunk;
        loop {
            match dec.decode_into(input, &mut buf) {
                Ok((used, n, status)) => {
                    input = &input[used..];
                    got.extend_from_slice(&buf[..n]);
                    if status == Status::NeedInput {
                        break;
                    }
                }
                Err(e) => {
                    // Repeats, from finish too, and nothing is left to deliver.
                    assert_eq!(dec.decode_into(input, &mut buf), Err(e));
                    assert_eq!(dec.finish_into(&mut buf), Err(e));
                    return (got, Err(e));
                }
            }
        }
    }
    loop {
        match dec.finish_into(&mut buf) {
            Ok((n, status)) => {
                got.extend_from_slice(&buf[..n]);
                if status == Status::Done {
                    return (got, Ok(Status::Done));
                }
            }
            Err(e) => return (got, Err(e)),
        }
    }
}

/// Decodes a whole stream in strict mode with the copy-out API in one go.
fn strict_decode_all(stream: &[u8], w: u8, l: u8) -> (Vec<u8>, Result<Status, Error>) {
    strict_copy_out(stream, w, l, stream.len().max(1), 4096)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn strict_is_default_or_before_start(
        prefix in prop::collection::vec(any::<[u8; 8]>(), 0..5),
        stream in prop::collection::vec(any::<u8>(), 0..600),
        (w, l) in wl(),
        piece in 1usize..40,
        drain in 1usize..3000,
        spare in 1usize..200,
    ) {
        // Groups of 8 literals (72 bits, whole bytes) before the random bytes, so
        // that more streams get past their first tokens.
        let mut s = Vec::new();
        for group in &prefix {
            let bits = group
                .iter()
                .fold(0u128, |v, &b| v << 9 | 0x100 | u128::from(b));
            s.extend((0..9).map(|i| (bits >> (64 - 8 * i)) as u8));
        }
        s.extend_from_slice(&stream);
        let stream = s;

        let (default_out, _) = naive_decode(&stream, w.into(), l.into());
        let (want, want_end) = strict_expectation(&stream, w, l);
        // Strict mode is the default mode cut at its error.
        prop_assert!(default_out.starts_with(&want));
        if want_end.is_ok() || matches!(want_end, Err(Error::Truncated { .. })) {
            prop_assert_eq!(&default_out, &want);
        }
        let ws = 1usize << w;

        let mut win = ModularRing::new(vec![0x5Au8; ws + spare]).unwrap();
        let (got, end) = strict_decode_with(&stream, w, l, &mut win, piece, drain);
        prop_assert_eq!(&got, &want, "modular ring");
        prop_assert_eq!(end, want_end, "modular ring");

        #[cfg(all(unix, feature = "std"))]
        {
            let mut ring = vmcirc::vmcirc::MirrorRing::with_capacity(ws + spare).unwrap();
            let (got, end) = strict_decode_with(&stream, w, l, &mut ring, piece, drain);
            prop_assert_eq!(&got, &want, "mirrored ring");
            prop_assert_eq!(end, want_end, "mirrored ring");
        }

        let (got, end) = strict_copy_out(&stream, w, l, piece, 1 + drain % 50);
        prop_assert_eq!(&got, &want, "copy out");
        prop_assert_eq!(end, want_end, "copy out");
    }

    #[test]
    fn strict_round_trip_without_early_zeros(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        (w, l) in wl(),
        in_piece in 1usize..5000,
    ) {
        // No zero byte among the first 2^W: no encoder can reference the zero
        // history (the first byte such a reference copies is a zero).
        let mut data = data;
        let ws = 1usize << w;
        for b in data.iter_mut().take(ws) {
            if *b == 0 {
                *b = 1;
            }
        }
        let stream = encode(&data, w, l, in_piece, 777);
        prop_assert_eq!(strict_decode_all(&stream, w, l), (data, Ok(Status::Done)));
    }

    #[test]
    fn strict_rejects_our_encoder_only_at_an_early_zero(
        data in structured(),
        (w, l) in wl(),
    ) {
        // Our encoder does reference the zero history; strict mode then stops at a
        // zero byte among the first 2^W, having delivered everything before it.
        let stream = encode(&data, w, l, 4096, 777);
        let (got, end) = strict_decode_all(&stream, w, l);
        match end {
            Ok(Status::Done) => prop_assert_eq!(got, data),
            Err(Error::BeforeStart { distance, produced }) => {
                let p = produced as usize;
                prop_assert!(p < usize::from(distance) && usize::from(distance) <= 1 << w);
                prop_assert_eq!(&got[..], &data[..p]);
                prop_assert_eq!(data[p], 0);
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }
}

#[test]
fn strict_two_zeros_example() {
    // `00 00` at W=8, L=4 is `00 08`: d=1, n=2 before anything was decoded.
    let stream = encode(&[0, 0], 8, 4, 1, 1);
    assert_eq!(stream, [0x00, 0x08]);
    assert_eq!(decode_all(&stream, 8, 4), [0, 0]);
    let (got, end) = strict_decode_all(&stream, 8, 4);
    assert!(got.is_empty());
    assert_eq!(
        end,
        Err(Error::BeforeStart {
            distance: 1,
            produced: 0
        })
    );
}

#[test]
fn strict_in_range_references_decode_identically() {
    // Text without zero bytes, repeated: many references, all within what was
    // decoded; past 2^W bytes strict mode runs the same hot loop.
    let mut data = Vec::new();
    for i in 0..3000u32 {
        data.extend_from_slice(format!("{i} abcabcabc {} xyz\n", i % 17).as_bytes());
    }
    for (w, l) in [(4, 3), (8, 4), (11, 4), (15, 8), (15, 14)] {
        let stream = encode(&data, w, l, 1000, 4096);
        let (got, end) = strict_decode_all(&stream, w, l);
        assert_eq!(end, Ok(Status::Done), "w{w} l{l}");
        assert!(
            got == data && decode_all(&stream, w, l) == data,
            "w{w} l{l}"
        );
    }
}

#[test]
fn strict_rejects_our_encoder_on_leading_zeros() {
    // Our encoder, like the reference, turns leading zeros into references to
    // the zero history: strict mode rejects the stream before any output.
    let mut data = vec![0u8; 64];
    data.extend_from_slice(b"hello");
    for w in 4..=15u8 {
        for l in 3..w {
            let stream = encode(&data, w, l, 1000, 4096);
            assert_eq!(decode_all(&stream, w, l), data, "w{w} l{l}");
            let (got, end) = strict_decode_all(&stream, w, l);
            assert!(got.is_empty(), "w{w} l{l}");
            assert!(
                matches!(end, Err(Error::BeforeStart { produced: 0, .. })),
                "w{w} l{l}: {end:?}"
            );
        }
    }
}

#[test]
fn strict_manifest_rejects_exactly_the_prestream_rows() {
    // Every reference-encoder stream of the test set: strict mode decodes those
    // without references into the zero history exactly as the default mode (the
    // original), and rejects exactly the rows whose `prestream_refs` (counted by
    // an independent decoder, STATS.tsv) is non-zero, at a zero byte of the
    // original among its first 2^W, after delivering everything before it.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/heatshrink");
    let stats = std::fs::read_to_string(dir.join("STATS.tsv")).unwrap();
    let mut lines = stats.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = header.iter().position(|&h| h == "prestream_refs").unwrap();
    let mut rejected = Vec::new();
    let mut rows = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let (w, l): (u8, u8) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let prestream: usize = f[col].parse().unwrap();
        let original = std::fs::read(dir.join(f[0])).unwrap();
        let stream = std::fs::read(dir.join(format!("{}.w{w}l{l}.hs", f[0]))).unwrap();
        let (got, end) = strict_decode_all(&stream, w, l);
        rows += 1;
        match end {
            Ok(Status::Done) => {
                assert_eq!(prestream, 0, "{} w{w}l{l} accepted", f[0]);
                assert!(got == original, "{} w{w}l{l}: output", f[0]);
            }
            Err(Error::BeforeStart { distance, produced }) => {
                assert!(prestream > 0, "{} w{w}l{l} rejected", f[0]);
                let p = produced as usize;
                assert!(p < usize::from(distance) && p < 1 << w);
                assert_eq!(original[p], 0, "{} w{w}l{l}", f[0]);
                assert!(got == original[..p], "{} w{w}l{l}: output", f[0]);
                rejected.push(format!("{}:{w}:{l}", f[0]));
            }
            other => panic!("{} w{w}l{l}: {other:?}", f[0]),
        }
    }
    assert!(rows >= 50, "{rows} rows");
    // Determined from the data: all-zero and ELF (zeros from byte 7) inputs at
    // every (W, L), `00 00` only at (8, 4) (at larger W two zeros are literals),
    // and the hand-made streams; never the text, random or literal-only files.
    for name in ["zeros_100k.bin", "mixed_1m.bin"] {
        for wl in ["8:4", "10:5", "11:4", "12:6", "13:4", "14:7", "15:8"] {
            assert!(rejected.contains(&format!("{name}:{wl}")), "{name} {wl}");
        }
    }
    assert!(rejected.contains(&"two_zeros.bin:8:4".to_string()));
    assert_eq!(
        rejected
            .iter()
            .filter(|r| r.starts_with("two_zeros"))
            .count(),
        1
    );
    assert_eq!(
        rejected
            .iter()
            .filter(|r| r.starts_with("crafted_"))
            .count(),
        7
    );
    assert_eq!(rejected.len(), 7 + 7 + 1 + 7, "{rejected:?}");
}
