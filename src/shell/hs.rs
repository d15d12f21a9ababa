//! The `hs` commands: heatshrink decompression through a mirrored-ring window,
//! from the UART (`hs W L LEN`) or from a stream built into the image (`hs demo`,
//! which also runs the same decoder over a plain modular ring for comparison).

use core::fmt::Write as _;

use super::args::{parse_max, ArgError};
use super::ring::{mbps, ratio};
use super::{receive, CmdError, Console, LineIo, Out, Platform};
use crate::heatshrink::{Decoder, Error, Status, Window};
use crate::vmcirc::{ByteRing, ModularRing, Ring};

/// The stream `hs demo` decodes: `text_200k.txt` of the test corpus, compressed by
/// the reference encoder with W=11, L=4.
pub const DEMO_STREAM: &[u8] = include_bytes!("../../tests/data/heatshrink/text_200k.txt.w11l4.hs");
/// Its parameters.
pub const DEMO_PARAMS: (u8, u8) = (11, 4);
/// Size and CRC-32 of the original (checked against the file in a test).
pub const DEMO_ORIGINAL: (u64, u32) = (204_800, 0xe22d_f9de);

/// Decoded output: byte count and running CRC-32.
struct Sink {
    bytes: u64,
    crc: crc::Digest<'static, u32>,
}

impl Sink {
    fn new() -> Self {
        Sink {
            bytes: 0,
            crc: crate::crc32::CRC32.digest(),
        }
    }

    /// Takes everything decoded so far straight from the ring (one slice when
    /// the ring is mirrored) and releases it.
    fn drain<R: ByteRing>(&mut self, r: &mut R) {
        let (a, b) = r.readable_parts();
        self.crc.update(a);
        self.crc.update(b);
        let n = a.len() + b.len();
        self.bytes += n as u64;
        let _ = r.consume(n);
    }
}

fn feed<R: ByteRing + Window>(
    dec: &mut Decoder,
    mut input: &[u8],
    r: &mut R,
    sink: &mut Sink,
) -> Result<(), Error> {
    while !input.is_empty() {
        let (used, _) = dec.decode(input, r)?;
        input = &input[used..];
        sink.drain(r);
    }
    Ok(())
}

fn finish<R: ByteRing + Window>(
    dec: &mut Decoder,
    r: &mut R,
    sink: &mut Sink,
) -> Result<(), Error> {
    loop {
        let st = dec.finish(r)?;
        sink.drain(r);
        if st == Status::Done {
            return Ok(());
        }
    }
}

fn hs_error(e: Error) -> CmdError<'static> {
    let mut s: heapless::String<96> = heapless::String::new();
    let _ = write!(s, "hs: {e}");
    CmdError::Platform(super::PlatformError(s))
}

/// A scratch mirror for one command, returned to the platform on every path.
struct Scratch<'p, P: Platform> {
    p: &'p mut P,
    mirror: Option<P::Mirror>,
}

impl<'p, P: Platform> Scratch<'p, P> {
    fn new(p: &'p mut P) -> Result<Self, CmdError<'static>> {
        let mirror = p.create_mirror_units(1).map_err(CmdError::Platform)?;
        Ok(Scratch {
            p,
            mirror: Some(mirror),
        })
    }
}

impl<P: Platform> Drop for Scratch<'_, P> {
    fn drop(&mut self) {
        if let Some(m) = self.mirror.take() {
            self.p.destroy_mirror(m);
        }
    }
}

/// `hs W L LEN` and `hs demo`.
pub fn dispatch<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let clock = p.clock_fn();
    if words.get(1) == Some(&"demo") {
        super::no_more(words, 2)?;
        return demo(io, p, clock);
    }
    let w = parse_max(words.get(1).ok_or(ArgError::Missing("W"))?, "W", 255)? as u8;
    let l = parse_max(words.get(2).ok_or(ArgError::Missing("L"))?, "L", 255)? as u8;
    let len = parse_max(
        words.get(3).ok_or(ArgError::Missing("LEN"))?,
        "LEN",
        super::RX_MAX,
    )?;
    super::no_more(words, 4)?;
    let mut dec = Decoder::new(w, l).map_err(hs_error)?;
    let mut scratch = Scratch::new(p)?;
    let Some(mirror) = scratch.mirror.as_mut() else {
        return Err(CmdError::Msg("hs: no window"));
    };
    let mut ring = Ring::new(mirror);
    let _ = writeln!(Out(io), "hs: waiting for {len} bytes");
    let _ = embedded_io::Write::flush(io);
    let mut sink = Sink::new();
    let mut failure: Option<Error> = None;
    let mut decode_us = 0u64;
    let t0 = clock();
    let got = receive(io, len, |chunk| {
        if failure.is_none() {
            let t = clock();
            if let Err(e) = feed(&mut dec, chunk, &mut ring, &mut sink) {
                failure = Some(e);
            }
            decode_us += clock() - t;
        }
    });
    got?;
    if failure.is_none() {
        let t = clock();
        if let Err(e) = finish(&mut dec, &mut ring, &mut sink) {
            failure = Some(e);
        }
        decode_us += clock() - t;
    }
    let total_us = clock() - t0;
    drop(scratch);
    if let Some(e) = failure {
        return Err(hs_error(e));
    }
    let (i, f) = mbps(sink.bytes, decode_us);
    let _ = writeln!(
        Out(io),
        "hs: {len} bytes in, {} bytes out, crc32={:08x}, decode {decode_us} us ({i}.{f:02} MB/s), total {total_us} us",
        sink.bytes,
        sink.crc.finalize()
    );
    Ok(())
}

fn demo<C: Console, P: Platform>(
    io: &mut LineIo<'_, C>,
    p: &mut P,
    clock: fn() -> u64,
) -> Result<(), CmdError<'static>> {
    let mut scratch = Scratch::new(p)?;
    let Some(mirror) = scratch.mirror.as_mut() else {
        return Err(CmdError::Msg("hs: no window"));
    };
    let (w, l) = DEMO_PARAMS;
    let mut ring = Ring::new(mirror);
    // The mirrored ring: zero copy, every back-reference one contiguous copy.
    let (bytes, crc, t_mirror) = {
        let mut dec = Decoder::new(w, l).map_err(hs_error)?;
        let mut sink = Sink::new();
        let t = clock();
        feed(&mut dec, DEMO_STREAM, &mut ring, &mut sink).map_err(hs_error)?;
        finish(&mut dec, &mut ring, &mut sink).map_err(hs_error)?;
        let t_mirror = clock() - t;
        (sink.bytes, sink.crc.finalize(), t_mirror)
    };
    // The same decoder over a plain modular ring on the first copy of the store.
    let mut modular =
        ModularRing::new(ring.store_mut()).map_err(|_| CmdError::Msg("hs: empty window"))?;
    let mut dec = Decoder::new(w, l).map_err(hs_error)?;
    let mut sink2 = Sink::new();
    let t = clock();
    feed(&mut dec, DEMO_STREAM, &mut modular, &mut sink2).map_err(hs_error)?;
    finish(&mut dec, &mut modular, &mut sink2).map_err(hs_error)?;
    let t_mod = clock() - t;
    let crc2 = sink2.crc.finalize();
    drop(scratch);
    let mut out = Out(io);
    let ok = (bytes, crc) == DEMO_ORIGINAL && (sink2.bytes, crc2) == DEMO_ORIGINAL;
    let _ = writeln!(
        out,
        "hs demo: text_200k.txt W={w} L={l}: {} bytes in, {bytes} bytes out, crc32={crc:08x} (expected {:08x}): {}",
        DEMO_STREAM.len(),
        DEMO_ORIGINAL.1,
        if ok { "ok" } else { "MISMATCH" }
    );
    let (i, f) = mbps(bytes, t_mirror);
    let _ = writeln!(out, "mirrored window: {t_mirror} us, {i}.{f:02} MB/s");
    let (i, f) = mbps(sink2.bytes, t_mod);
    let _ = writeln!(out, "modular window: {t_mod} us, {i}.{f:02} MB/s");
    let (i, f) = ratio(t_mirror, t_mod);
    let _ = writeln!(out, "ratio mirrored/modular: {i}.{f:02}x");
    if !ok {
        return Err(CmdError::Msg(
            "hs demo: decoded output does not match the original",
        ));
    }
    Ok(())
}
