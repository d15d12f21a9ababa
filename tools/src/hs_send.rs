//! `vmcirc hs send`: compress a file on the host, send it to the board's (or
//! QEMU's) `hs W L LEN` command, and check that the CRC-32 and size the board
//! reports for its decoded output are those of the original file.
//!
//! The session is an ordinary scripted session (see [`crate::script`]) built on the
//! fly, so it waits for the prompt, times out and cleans up exactly like
//! `vmcirc script`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::hs::{compress, HsParams};
use crate::{link, qemu, runner, script};

/// Where to send.
pub enum Target {
    /// A serial port at a baud rate.
    Port(String, u32),
    /// The kernel in QEMU.
    Qemu(Option<PathBuf>),
}

/// Compresses `file`, sends it, and checks the board's answer.
pub fn send(file: &Path, params: HsParams, target: Target) -> Result<()> {
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
    let link = match target {
        Target::Port(port, baud) => link::Link::serial(&port, baud)?,
        Target::Qemu(kernel) => {
            let kernel = qemu::resolve_kernel(kernel)?;
            qemu::Qemu::new(kernel, qemu::Machine::Raspi0, &[]).spawn_piped()?
        }
    };
    println!(
        "hs send: {} ({} bytes, crc32 {crc:08x}) as {} bytes at W={} L={}",
        file.display(),
        original.len(),
        packed.len(),
        params.window_bits,
        params.lookahead_bits
    );
    let opts = runner::Options {
        step_timeout: Duration::from_secs(30),
        session_timeout: Duration::from_secs(3600),
        verbose: false,
        base_dir: dir,
    };
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
