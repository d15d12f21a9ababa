//! Every stream in `tests/data/heatshrink/MANIFEST.tsv` decodes to exactly its
//! original (size and sha256), whatever the input piece size (1, 7, whole), the
//! output drain size (1 byte, large) and the window (the vmcirc modular ring over
//! its store and, with feature `std`, the memfd-mirrored ring; zero copy and copy
//! out).

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use vmcirc::heatshrink::{Decoder, Error, Status, StreamDecoder, Window};
use vmcirc::{ByteRing, ModularRing};

struct Row {
    file: String,
    w: u8,
    l: u8,
    size: usize,
    sha: String,
    stream: Vec<u8>,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/heatshrink")
}

fn manifest() -> Vec<Row> {
    let dir = data_dir();
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let rows: Vec<Row> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let (w, l) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let stream = std::fs::read(dir.join(format!("{}.w{}l{}.hs", f[0], w, l)))
                .unwrap_or_else(|e| panic!("{}: {e}", f[0]));
            assert_eq!(
                stream.len(),
                f[4].parse::<usize>().unwrap(),
                "{} comp_size",
                f[0]
            );
            Row {
                file: f[0].to_string(),
                w,
                l,
                size: f[3].parse().unwrap(),
                sha: f[5].to_string(),
                stream,
            }
        })
        .collect();
    assert!(rows.len() >= 50, "manifest has {} rows", rows.len());
    rows
}

fn check(row: &Row, out: &[u8], how: &str) {
    assert_eq!(
        out.len(),
        row.size,
        "{} w{}l{} {how}: size",
        row.file,
        row.w,
        row.l
    );
    let sha = Sha256::digest(out);
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex, row.sha,
        "{} w{}l{} {how}: sha256",
        row.file, row.w, row.l
    );
}

/// Zero copy through any window: decode in `piece`-byte input pieces; after each
/// call, read `drain` bytes (or everything when `drain` is `None`) through `read`.
fn zero_copy<W: Window>(
    row: &Row,
    window: &mut W,
    piece: usize,
    drain: Option<usize>,
    read: &mut dyn FnMut(&mut W, usize, &mut Vec<u8>),
) -> Vec<u8> {
    let mut dec = Decoder::new(row.w, row.l).unwrap();
    let mut out = Vec::with_capacity(row.size);
    let mut drain_some = |window: &mut W, out: &mut Vec<u8>| {
        let n = drain.unwrap_or(usize::MAX).min(window.len());
        read(window, n, out);
    };
    for chunk in row.stream.chunks(piece.max(1)) {
        let mut input = chunk;
        loop {
            let (used, status) = dec.decode(input, window).unwrap();
            input = &input[used..];
            drain_some(window, &mut out);
            if status == Status::NeedInput {
                assert!(input.is_empty());
                break;
            }
            assert!(out.len() <= row.size + 1, "runaway output");
        }
    }
    loop {
        let status = dec.finish(window).unwrap();
        drain_some(window, &mut out);
        if status == Status::Done {
            break;
        }
    }
    while window.len() > 0 {
        drain_some(window, &mut out);
    }
    out
}

/// Copy out through [`StreamDecoder::decode_into`].
fn copy_out<W: Window>(row: &Row, window: W, piece: usize, drain: usize) -> Vec<u8> {
    let mut dec = StreamDecoder::new(row.w, row.l, window).unwrap();
    let mut out = Vec::with_capacity(row.size);
    let mut buf = vec![0u8; drain];
    for chunk in row.stream.chunks(piece.max(1)) {
        let mut input = chunk;
        loop {
            let (used, n, status) = dec.decode_into(input, &mut buf).unwrap();
            input = &input[used..];
            out.extend_from_slice(&buf[..n]);
            if status == Status::NeedInput {
                assert!(input.is_empty());
                break;
            }
            assert_eq!(n, drain, "OutputFull with room left");
        }
    }
    loop {
        let (n, status) = dec.finish_into(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
        if status == Status::Done {
            break;
        }
    }
    out
}

fn read_modular(w: &mut ModularRing<Vec<u8>>, n: usize, out: &mut Vec<u8>) {
    let (a, b) = w.peek();
    let na = a.len().min(n);
    out.extend_from_slice(&a[..na]);
    out.extend_from_slice(&b[..n - na]);
    w.consume(n).unwrap();
}

/// How the output is taken: `Zero(None)` reads everything from the window after
/// each call, `Zero(Some(1))` one byte per call (so the room stays tiny), `Copy(n)`
/// is the copy-out API with an `n`-byte output buffer.
#[derive(Clone, Copy, Debug)]
enum Drain {
    Zero(Option<usize>),
    Copy(usize),
}

/// The variants each window runs for every row: input pieces of 1 byte, 7 bytes
/// (splitting every field somewhere) and the whole stream with a large drain, and
/// the one-byte drains (the slow ones) with 7-byte pieces.
const VARIANTS: [(usize, Drain); 7] = [
    (1, Drain::Zero(None)),
    (7, Drain::Zero(None)),
    (usize::MAX, Drain::Zero(None)),
    (7, Drain::Zero(Some(1))),
    (7, Drain::Copy(1)),
    (1, Drain::Copy(65536)),
    (usize::MAX, Drain::Copy(65536)),
];

#[test]
fn manifest_modular_ring() {
    for row in manifest() {
        let ws = 1usize << row.w;
        for (piece, drain) in VARIANTS {
            let how = format!("modular piece {piece} {drain:?}");
            let out = match drain {
                // One byte of room when drained a byte at a time.
                Drain::Zero(d) => {
                    let spare = if d.is_some() { 1 } else { 3000 };
                    let mut win = ModularRing::new(vec![0u8; ws + spare]).unwrap();
                    zero_copy(&row, &mut win, piece, d, &mut read_modular)
                }
                Drain::Copy(n) => {
                    let win = ModularRing::new(vec![0u8; ws + 777]).unwrap();
                    copy_out(&row, win, piece, n)
                }
            };
            check(&row, &out, &how);
        }
    }
}

#[cfg(all(unix, feature = "std"))]
mod mirrored {
    use super::*;
    use vmcirc::vmcirc::MirrorRing;

    fn read_ring(r: &mut MirrorRing, n: usize, out: &mut Vec<u8>) {
        // Zero copy: the decoded bytes are one slice of the window.
        out.extend_from_slice(&r.readable()[..n]);
        r.consume(n).unwrap();
    }

    #[test]
    fn manifest_mirrored_ring() {
        for row in manifest() {
            let ws = 1usize << row.w;
            // A page-rounded ring just above the window, reused across variants
            // (so later streams start over a dirty history): the write position
            // wraps constantly, and draining one byte per call keeps the room at a
            // few bytes.
            let mut ring = MirrorRing::with_capacity(ws + 1).unwrap();
            for (piece, drain) in VARIANTS {
                let how = format!("mirror piece {piece} {drain:?}");
                let out = match drain {
                    Drain::Zero(d) => zero_copy(&row, &mut ring, piece, d, &mut read_ring),
                    Drain::Copy(n) => {
                        let r = MirrorRing::with_capacity(ws + 1).unwrap();
                        copy_out(&row, r, piece, n)
                    }
                };
                check(&row, &out, &how);
            }
        }
    }

    #[test]
    fn dirty_ring_still_reads_zero_history() {
        // A reused ring holds old bytes where a fresh stream expects zeros.
        let row = manifest()
            .into_iter()
            .find(|r| r.file == "zeros_100k.bin" && r.w == 8)
            .unwrap();
        let mut ring = MirrorRing::with_capacity(4096).unwrap();
        let n = ring.capacity();
        ring.push(&vec![0xAA; n]);
        ring.consume(n).unwrap();
        let out = zero_copy(&row, &mut ring, usize::MAX, None, &mut read_ring);
        check(&row, &out, "dirty mirror");
    }
}

#[test]
fn parameters_and_errors() {
    for (w, l) in [(3, 2), (16, 8), (8, 8), (8, 2), (4, 4), (0, 0), (255, 3)] {
        assert!(Decoder::new(w, l).is_err(), "({w},{l}) accepted");
    }
    for w in 4..=15 {
        for l in 3..w {
            assert!(Decoder::new(w, l).is_ok());
        }
    }
    let mut dec = Decoder::new(8, 4).unwrap();
    let mut small = ModularRing::new(vec![0u8; 256]).unwrap();
    assert_eq!(
        dec.decode(&[1, 2, 3], &mut small),
        Err(Error::WindowTooSmall {
            needed: 257,
            capacity: 256
        })
    );
    // A back-reference cut after its first byte: 8 bits of a 13-bit token.
    let mut win = ModularRing::new(vec![0u8; 300]).unwrap();
    assert_eq!(dec.decode(&[0x00], &mut win), Ok((1, Status::NeedInput)));
    assert_eq!(dec.finish(&mut win), Err(Error::Truncated { bits: 8 }));
    // Padding with ones (a literal's tag and 6 bits) is fine.
    dec.reset();
    assert_eq!(
        dec.decode(&[0xA0, 0xFF], &mut win),
        Ok((2, Status::NeedInput))
    );
    assert_eq!(dec.finish(&mut win), Ok(Status::Done));
    assert_eq!(win.peek().0, b"A");
}

#[test]
fn format_examples() {
    let mut win = ModularRing::new(vec![0xEEu8; 300]).unwrap();
    let mut dec = Decoder::new(8, 4).unwrap();
    // d = 2^W, n = 2^L at the stream start: 16 zeros even over a dirty store.
    dec.decode(&[0x7F, 0xF8], &mut win).unwrap();
    assert_eq!(dec.finish(&mut win), Ok(Status::Done));
    assert_eq!(win.peek(), (&[0u8; 16][..], &[][..]));
}
