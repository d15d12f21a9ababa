//! The encoder against the reference: for every (W, L) in the manifest, the total
//! compressed size of the corpus (every original except the hand-made `crafted_*`
//! streams) is 0.8-3.5% smaller than the reference encoder's total, as the README
//! says (the encoder is deterministic, so these are exact figures: 0.81% at W=8
//! L=4 up to 3.54% at W=14 L=7), and every stream decodes back to its original.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vmcirc::heatshrink::{Encoder, EncoderBuffers, Status, StreamDecoder};
use vmcirc::ModularRing;

fn encode(enc: &mut Encoder<&mut EncoderBuffers>, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; data.len() + data.len() / 4 + 16];
    let (used, n) = enc.encode(data, &mut out);
    assert_eq!(used, data.len());
    let (m, status) = enc.finish(&mut out[n..]);
    assert_eq!(status, Status::Done);
    out.truncate(n + m);
    out
}

fn decode(stream: &[u8], w: u8, l: u8, size: usize) -> Vec<u8> {
    let window = ModularRing::new(vec![0u8; (1 << w) + 4096]).unwrap();
    let mut dec = StreamDecoder::new(w, l, window).unwrap();
    let mut out = vec![0u8; size + 1];
    let (used, n, _) = dec.decode_into(stream, &mut out).unwrap();
    assert_eq!(used, stream.len());
    let (m, status) = dec.finish_into(&mut out[n..]).unwrap();
    assert_eq!(status, Status::Done);
    out.truncate(n + m);
    out
}

#[test]
fn smaller_than_the_reference_as_the_readme_says() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/heatshrink");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut bufs = Box::new(EncoderBuffers::new());
    // (W, L) -> (our bytes, reference bytes)
    let mut totals: BTreeMap<(u8, u8), (usize, usize)> = BTreeMap::new();
    for line in manifest.lines().skip(1).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f[0].starts_with("crafted_") {
            continue;
        }
        let (w, l): (u8, u8) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let data = std::fs::read(dir.join(f[0])).unwrap();
        let mut enc = Encoder::new(&mut *bufs, w, l).unwrap();
        let stream = encode(&mut enc, &data);
        assert!(
            decode(&stream, w, l, data.len()) == data,
            "{} w{w} l{l}: round trip",
            f[0]
        );
        let t = totals.entry((w, l)).or_default();
        t.0 += stream.len();
        t.1 += f[4].parse::<usize>().unwrap();
    }
    assert_eq!(totals.len(), 7);
    for ((w, l), (ours, reference)) in totals {
        let ratio = ours as f64 / reference as f64;
        println!("w{w} l{l}: ours {ours} reference {reference} ratio {ratio:.4}");
        // README: "1-3.5% smaller" would be false at W=8 (0.81%); it says 0.8-3.5%.
        assert!(
            (0.9645..=0.992).contains(&ratio),
            "w{w} l{l}: {ours} vs reference {reference} ({ratio:.4}): not 0.8-3.5% smaller, update the README"
        );
    }
}
