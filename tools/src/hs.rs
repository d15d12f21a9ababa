//! `vmcirc hs`: heatshrink compression and decompression on the host.
//!
//! - `vmcirc hs compress -w W -l L [IN [OUT]]` and `vmcirc hs decompress -w W -l L
//!   [IN [OUT]]` stream from IN (default or `-`: stdin) to OUT (default or `-`:
//!   stdout) in constant memory: 64 KiB of input at a time, the encoder's fixed
//!   buffers, and for decompression a mirrored ring of `2^W + 64 KiB` whose decoded
//!   bytes are written to OUT straight from the ring (zero copy). Without a mirror
//!   (no memfd) it falls back to a modular ring and the copy-out API.
//! - W and L are not in the stream: decompress with the values used to compress.
//!   The defaults are the reference CLI's, `-w 11 -l 4`.
//! - `decompress --strict` rejects a back-reference reaching before the start of the
//!   stream (by default it reads the format's zero history). The reference encoder
//!   and `hs compress` both emit such references when the input has zero bytes near
//!   its start, so use it only for streams from encoders that never do. The bytes
//!   decoded before the bad token are still written to stdout (not to a file, see
//!   below).
//! - `vmcirc hs send` (`hs_send.rs`, which builds on this file) compresses with
//!   [`compress`] and sends the stream to the kernel's `hs` shell command.
//!
//! Errors (unreadable input, bad W/L, a stream cut inside a token, a reference
//! before the stream start with `--strict`) are returned to `main`, which prints
//! them on stderr and exits non-zero. W, L and the input are checked before the
//! output is opened, and an output file is written through a temporary file renamed
//! over it only on success ([`crate::atomic`]): a failure leaves an existing OUT as
//! it was (and creates none). On stdout the bytes go out as they are produced, so
//! `decompress` to stdout also delivers what was decoded before an error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vmcirc::heatshrink::{Decoder, Encoder, EncoderBuffers, Params, Status, StreamDecoder};
use vmcirc::vmcirc::{MirrorRing, ModularRing};

use crate::atomic::AtomicFile;

/// Bytes read, or written, per step.
const CHUNK: usize = 64 * 1024;

/// `hs compress` and `hs decompress` (`hs send` is in `hs_send.rs`).
#[derive(clap::Subcommand, Debug)]
pub enum HsCommand {
    /// Compress IN (default stdin) to OUT (default stdout).
    Compress {
        #[command(flatten)]
        params: HsParams,
        /// Input file (`-` or absent: stdin).
        input: Option<PathBuf>,
        /// Output file (`-` or absent: stdout).
        output: Option<PathBuf>,
    },
    /// Decompress IN (default stdin) to OUT (default stdout).
    Decompress {
        #[command(flatten)]
        params: HsParams,
        /// Fail on a back-reference before the start of the stream instead of
        /// reading zeros (streams of inputs with zeros near the start may use them).
        #[arg(long)]
        strict: bool,
        /// Input file (`-` or absent: stdin).
        input: Option<PathBuf>,
        /// Output file (`-` or absent: stdout).
        output: Option<PathBuf>,
    },
}

/// W and L (they travel out of band: use the same for both directions).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct HsParams {
    /// Window bits W (window of 2^W bytes), 4..=15.
    #[arg(short = 'w', long = "window", default_value_t = 11)]
    pub window_bits: u8,
    /// Lookahead bits L (back-references of up to 2^L bytes), 3..W.
    #[arg(short = 'l', long = "lookahead", default_value_t = 4)]
    pub lookahead_bits: u8,
}

/// Runs `hs compress` or `hs decompress`.
pub fn run(cmd: HsCommand) -> Result<()> {
    let (what, params, input, output) = match &cmd {
        HsCommand::Compress {
            params,
            input,
            output,
        } => ("hs compress", params, input, output),
        HsCommand::Decompress {
            params,
            input,
            output,
            ..
        } => ("hs decompress", params, input, output),
    };
    // Everything that can be checked is checked before the output is touched.
    Params::new(params.window_bits, params.lookahead_bits).context(what)?;
    let mut r = open_input(input.as_deref())?;
    let mut w = Output::open(output.as_deref())?;
    let result = match cmd {
        HsCommand::Compress { params, .. } => compress(params, &mut r, &mut w).map(drop),
        HsCommand::Decompress { params, strict, .. } => {
            decompress(params, strict, &mut r, &mut w).map(drop)
        }
    };
    match result {
        Ok(()) => w
            .commit()
            .with_context(|| format!("{what}: writing the output")),
        Err(e) => {
            // Stdout keeps what was produced; a file is left as it was.
            w.abandon();
            Err(e)
        }
    }
}

fn open_input(path: Option<&Path>) -> Result<Box<dyn Read>> {
    match path {
        None => Ok(Box::new(io::stdin().lock())),
        Some(p) if p == Path::new("-") => Ok(Box::new(io::stdin().lock())),
        Some(p) => Ok(Box::new(
            File::open(p).with_context(|| format!("hs: opening {}", p.display()))?,
        )),
    }
}

/// Where the output goes: stdout as it is produced, or a file replaced on success.
enum Output {
    Stdout(io::StdoutLock<'static>),
    File(AtomicFile, PathBuf),
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output> {
        match path {
            None => Ok(Output::Stdout(io::stdout().lock())),
            Some(p) if p == Path::new("-") => Ok(Output::Stdout(io::stdout().lock())),
            Some(p) => Ok(Output::File(
                AtomicFile::create(p).with_context(|| format!("hs: creating {}", p.display()))?,
                p.to_path_buf(),
            )),
        }
    }

    /// Everything was written: flush stdout, or put the file in place.
    fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(mut s) => Ok(s.flush()?),
            Output::File(f, p) => f
                .commit()
                .with_context(|| format!("replacing {}", p.display())),
        }
    }

    /// A failure: flush what stdout got; drop the temporary file.
    fn abandon(self) {
        if let Output::Stdout(mut s) = self {
            let _ = s.flush();
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(s) => s.write(buf),
            Output::File(f, _) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(s) => s.flush(),
            Output::File(f, _) => f.flush(),
        }
    }
}

/// Reads up to `buf.len()` bytes, retrying on `Interrupted`; 0 at the end.
fn read_some(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("hs: reading the input"),
        }
    }
}

/// Compresses all of `r` into `w`; returns (bytes in, bytes out).
pub fn compress(params: HsParams, r: &mut dyn Read, w: &mut dyn Write) -> Result<(u64, u64)> {
    let mut enc = Encoder::new(
        EncoderBuffers::new_boxed(),
        params.window_bits,
        params.lookahead_bits,
    )
    .context("hs compress")?;
    let mut inbuf = vec![0u8; CHUNK];
    let mut outbuf = vec![0u8; CHUNK];
    let (mut total_in, mut total_out) = (0u64, 0u64);
    loop {
        let n = read_some(r, &mut inbuf)?;
        if n == 0 {
            break;
        }
        total_in += n as u64;
        let mut chunk = &inbuf[..n];
        while !chunk.is_empty() {
            let (used, produced) = enc.encode(chunk, &mut outbuf);
            chunk = &chunk[used..];
            w.write_all(&outbuf[..produced])
                .context("hs compress: writing the output")?;
            total_out += produced as u64;
        }
    }
    loop {
        let (produced, status) = enc.finish(&mut outbuf);
        w.write_all(&outbuf[..produced])
            .context("hs compress: writing the output")?;
        total_out += produced as u64;
        if status == Status::Done {
            return Ok((total_in, total_out));
        }
    }
}

/// Decompresses all of `r` into `w`; returns the bytes written. `strict`: a
/// back-reference before the stream start is an error (after writing the bytes
/// decoded before it) instead of reading zeros.
pub fn decompress(
    params: HsParams,
    strict: bool,
    r: &mut dyn Read,
    w: &mut dyn Write,
) -> Result<u64> {
    let mut dec = Decoder::new(params.window_bits, params.lookahead_bits)
        .context("hs decompress")?
        .strict(strict);
    let window = 1usize << params.window_bits;
    match MirrorRing::with_capacity(window + CHUNK) {
        Ok(ring) => decompress_mirrored(&mut dec, ring, r, w),
        Err(e) => {
            eprintln!("hs: no mirrored ring ({e}); using a modular ring");
            let store = ModularRing::new(vec![0u8; window + CHUNK]).expect("non-empty store");
            decompress_copy_out(params, strict, store, r, w)
        }
    }
}

/// Zero copy: decoded bytes go from the ring's window to `w` as one slice.
fn decompress_mirrored(
    dec: &mut Decoder,
    mut ring: MirrorRing,
    r: &mut dyn Read,
    w: &mut dyn Write,
) -> Result<u64> {
    let mut inbuf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut drain = |ring: &mut MirrorRing| -> Result<()> {
        let bytes = ring.readable();
        w.write_all(bytes)
            .context("hs decompress: writing the output")?;
        total += bytes.len() as u64;
        let n = bytes.len();
        ring.consume(n)?;
        Ok(())
    };
    loop {
        let n = read_some(r, &mut inbuf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &inbuf[..n];
        loop {
            // Bytes decoded before an error are in the ring: write them first.
            let result = dec.decode(chunk, &mut ring);
            drain(&mut ring)?;
            let (used, status) = result.context("hs decompress")?;
            chunk = &chunk[used..];
            if status == Status::NeedInput {
                break;
            }
        }
    }
    loop {
        let result = dec.finish(&mut ring);
        drain(&mut ring)?;
        let status = result.context("hs decompress")?;
        if status == Status::Done {
            break;
        }
    }
    Ok(total)
}

/// Copy out through a modular ring (no mirror available).
fn decompress_copy_out(
    params: HsParams,
    strict: bool,
    store: ModularRing<Vec<u8>>,
    r: &mut dyn Read,
    w: &mut dyn Write,
) -> Result<u64> {
    // `decode_into` / `finish_into` deliver every byte decoded before an error.
    let mut dec = StreamDecoder::new(params.window_bits, params.lookahead_bits, store)
        .context("hs decompress")?
        .strict(strict);
    let mut inbuf = vec![0u8; CHUNK];
    let mut outbuf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = read_some(r, &mut inbuf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &inbuf[..n];
        loop {
            let (used, produced, status) = dec.decode_into(chunk, &mut outbuf)?;
            chunk = &chunk[used..];
            w.write_all(&outbuf[..produced])
                .context("hs decompress: writing the output")?;
            total += produced as u64;
            if status == Status::NeedInput {
                break;
            }
        }
    }
    loop {
        let (produced, status) = dec.finish_into(&mut outbuf)?;
        w.write_all(&outbuf[..produced])
            .context("hs decompress: writing the output")?;
        total += produced as u64;
        if status == Status::Done {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(w: u8, l: u8) -> HsParams {
        HsParams {
            window_bits: w,
            lookahead_bits: l,
        }
    }

    #[test]
    fn round_trip_through_the_stream_functions() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect();
        for (w, l) in [(8, 4), (11, 4), (15, 8)] {
            let mut packed = Vec::new();
            let (n_in, n_out) = compress(params(w, l), &mut &data[..], &mut packed).unwrap();
            assert_eq!((n_in, n_out), (data.len() as u64, packed.len() as u64));
            let mut back = Vec::new();
            let n = decompress(params(w, l), false, &mut &packed[..], &mut back).unwrap();
            assert_eq!(n, data.len() as u64);
            assert!(back == data, "w{w} l{l}");
            let mut back2 = Vec::new();
            let store = ModularRing::new(vec![0u8; (1 << w) + 100]).unwrap();
            decompress_copy_out(params(w, l), false, store, &mut &packed[..], &mut back2).unwrap();
            assert!(back2 == data);
            // No zero bytes in `data`: strict mode decodes it the same.
            let mut back3 = Vec::new();
            decompress(params(w, l), true, &mut &packed[..], &mut back3).unwrap();
            assert!(back3 == data);
        }
    }

    #[test]
    fn errors() {
        let mut out = Vec::new();
        assert!(compress(params(16, 4), &mut &b"x"[..], &mut out).is_err());
        assert!(decompress(params(8, 8), false, &mut &b"x"[..], &mut out).is_err());
        // A back-reference cut after 8 of its 13 bits.
        let err = decompress(params(8, 4), false, &mut &[0u8][..], &mut out).unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
        out.clear();
        let err = decompress(params(8, 4), true, &mut &[0x00u8, 0x08][..], &mut out).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "hs decompress: heatshrink back-reference 1 bytes back, but only 0 bytes decoded so far"
        );
        assert!(out.is_empty());
        decompress(params(8, 4), false, &mut &[0x00u8, 0x08][..], &mut out).unwrap();
        assert_eq!(out, [0, 0]);
        // Strict through the copy-out path: "A", then a reference d=2, n=2.
        let stream = [0xA0u8, 0x80, 0x44];
        for strict in [false, true] {
            let mut out = Vec::new();
            let store = ModularRing::new(vec![0u8; 300]).unwrap();
            let r = decompress_copy_out(params(8, 4), strict, store, &mut &stream[..], &mut out);
            assert_eq!(r.is_err(), strict);
            assert_eq!(out, if strict { &b"A"[..] } else { &b"A\0A"[..] });
        }
    }
}
