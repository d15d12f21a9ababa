//! `vmcirc hs send`: compress a file on the host, send it to the board's (or
//! QEMU's) `hs W L LEN` command, and check that the CRC-32 and size the board
//! reports for its decoded output are those of the original file.
//!
//! The session is an ordinary scripted session (see [`crate::script`]) built on the
//! fly, so it waits for the prompt (attaching to a running board with `--port`),
//! times out and cleans up exactly like `vmcirc script`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cancel::Cancel;
use crate::hs::{compress, HsParams};
use crate::target::TargetArgs;
use crate::{runner, script};

/// `vmcirc hs send FILE [-w W -l L] TARGET`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").args(["port", "qemu", "qemu_pty"]).required(true)))]
pub struct SendArgs {
    /// File to send.
    file: PathBuf,
    #[command(flatten)]
    params: HsParams,
    #[command(flatten)]
    target: TargetArgs,
}

/// Compresses the file, sends it, and checks the board's answer.
pub fn send(args: &SendArgs, cancel: Cancel) -> Result<()> {
    let (file, params) = (&args.file, args.params);
    let original =
        std::fs::read(file).with_context(|| format!("hs send: reading {}", file.display()))?;
    let crc = vmcirc::crc32::crc32(&original);
    let mut packed = Vec::new();
    compress(params, &mut original.as_slice(), &mut packed)?;
    if packed.len() as u64 > 0x7fff_ffff {
        bail!(
            "hs send: {} compresses to {} bytes, more than the board accepts",
            file.display(),
            packed.len()
        );
    }
    let dir = std::env::temp_dir().join(format!("vmcirc-hs-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("hs send: creating a temporary folder")?;
    let guard = TempDir(dir.clone());
    let stream = dir.join("stream.hs");
    std::fs::write(&stream, &packed).context("hs send: writing the compressed stream")?;
    let text = format!(
        "timeout 120\n\
         > hs {w} {l} {n}\n\
         expect-line hs: waiting for {n} bytes\n\
         sendfile stream.hs\n\
         expect-re ^hs: {n} bytes in, {o} bytes out, crc32={crc:08x}, decode\n",
        w = params.window_bits,
        l = params.lookahead_bits,
        n = packed.len(),
        o = original.len(),
    );
    let lines =
        script::parse(&text).map_err(|e| anyhow::anyhow!("hs send: internal script: {e}"))?;
    let (link, start) = args.target.connect(None)?;
    println!(
        "hs send: {} ({} bytes, crc32 {crc:08x}) as {} bytes at W={} L={}",
        file.display(),
        original.len(),
        packed.len(),
        params.window_bits,
        params.lookahead_bits
    );
    let mut opts = runner::Options::new(dir, cancel);
    opts.step_timeout = Duration::from_secs(30);
    opts.session_timeout = Duration::from_secs(3600);
    opts.start = start;
    let summary = runner::run(link, &lines, &opts);
    drop(guard);
    if !summary.ok() {
        bail!("hs send: the board did not report the original's size and CRC-32");
    }
    println!(
        "hs send: the board decoded {} bytes with crc32 {crc:08x}: match",
        original.len()
    );
    Ok(())
}

/// Removes the temporary folder on every path.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
