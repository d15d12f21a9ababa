//! `load LEN CRC32`: the shell side of the UART chainloader (`vmcirc install` is
//! the host side).
//!
//! Protocol: the shell answers `load: waiting for LEN bytes in blocks of 1024` and
//! then sends [`ACK`] (0x06) when it is ready for the first block, and again after
//! each further full block of [`BLOCK`] bytes. The sender sends the next block only
//! after an ACK, so it never has more than one block in flight: a USB-serial adapter
//! at 115200 baud cannot overrun the UART while the shell is busy, and the bytes are
//! binary-safe (read raw, never through the line editor). Once LEN bytes have come,
//! their CRC-32 is checked and the platform starts the image ([`Platform::start_image`];
//! on the board it never returns).
//!
//! A CRC mismatch, a short transfer (no byte for 3 s, as `rx`), or a platform that
//! cannot take or start the image is one `error:` line; the image buffer is freed
//! and the running kernel goes on, its rings untouched (the buffer is RAM no ring
//! uses).

use core::fmt::Write as _;

use super::args::{parse_max, ArgError};
use super::{no_more, CmdError, Console, LineIo, Out, Platform, PlatformError, RX_IDLE_TIMEOUT_US};

/// Bytes per acknowledged block.
pub const BLOCK: usize = 1024;
/// The acknowledgement byte (ASCII ACK).
pub const ACK: u8 = 0x06;
/// Largest image the command accepts (the platform may accept less).
pub const LOAD_MAX: u64 = 64 << 20;

/// `load LEN CRC32`.
pub fn dispatch<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let len = parse_max(
        words.get(1).ok_or(ArgError::Missing("LEN"))?,
        "LEN",
        LOAD_MAX,
    )?;
    let crc = parse_max(
        words.get(2).ok_or(ArgError::Missing("CRC32"))?,
        "CRC32",
        u64::from(u32::MAX),
    )? as u32;
    no_more(words, 3)?;
    if len == 0 {
        return Err(CmdError::Msg("load: LEN must be at least 1"));
    }
    let len = len as usize;
    let buf = p.load_buffer(len)?;
    let image = buf.get_mut(..len).ok_or(CmdError::Msg(
        "load: the platform's buffer is smaller than LEN",
    ))?;
    let _ = writeln!(
        Out(io),
        "load: waiting for {len} bytes in blocks of {BLOCK}"
    );
    ack(io);
    let received = receive_blocks(io, image);
    let got = crate::crc32::crc32(image);
    if let Err(n) = received {
        p.release_load_buffer();
        return Err(PlatformError::text(format_args!(
            "load: timed out after {n} of {len} bytes (no data for {} s); kernel unchanged",
            RX_IDLE_TIMEOUT_US / 1_000_000
        ))
        .into());
    }
    if got != crc {
        p.release_load_buffer();
        return Err(PlatformError::text(format_args!(
            "load: crc32 {got:08x} is not the announced {crc:08x}; kernel unchanged"
        ))
        .into());
    }
    let _ = writeln!(
        Out(io),
        "load: {len} bytes, crc32={got:08x} ok; starting the new kernel"
    );
    let _ = embedded_io::Write::flush(io);
    let why = p.start_image(len);
    p.release_load_buffer();
    Err(why.into())
}

/// Sends one ACK now.
fn ack<C: Console>(io: &mut LineIo<'_, C>) {
    let _ = embedded_io::Write::write_all(io, &[ACK]);
    let _ = embedded_io::Write::flush(io);
}

/// Fills `image` from the console, acknowledging every full block but the last;
/// `Err(bytes received)` after [`RX_IDLE_TIMEOUT_US`] without a byte (then queued
/// input is dropped, to resynchronise).
fn receive_blocks<C: Console>(io: &mut LineIo<'_, C>, image: &mut [u8]) -> Result<(), usize> {
    let len = image.len();
    let mut got = 0;
    // The clock is read only when no byte is waiting, not once per byte.
    let mut idle_since: Option<u64> = None;
    while got < len {
        match io.try_read_raw() {
            Some(b) => {
                image[got] = b;
                got += 1;
                idle_since = None;
                if got % BLOCK == 0 && got < len {
                    ack(io);
                }
            }
            None => {
                let now = io.console().now_us();
                let since = *idle_since.get_or_insert(now);
                if now.saturating_sub(since) >= RX_IDLE_TIMEOUT_US || io.console().input_closed() {
                    io.discard_input();
                    return Err(got);
                }
                core::hint::spin_loop();
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::shell::host::HostPlatform;
    use crate::shell::ring::Rings;
    use crate::shell::testio::MemConsole;
    use crate::shell::{FaultRequest, LineState, Shell, HISTORY_BYTES, LINE_BUFFER_BYTES};
    use crate::vmcirc::MemfdMirror;
    use core::fmt;
    use std::string::String;
    use std::vec::Vec;

    /// The host platform plus a load buffer, recording what it was asked to start.
    struct Loader {
        host: HostPlatform,
        buf: Vec<u8>,
        started: Option<Vec<u8>>,
        released: u32,
    }

    impl Platform for Loader {
        fn info(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
            self.host.info(out)
        }
        fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), PlatformError> {
            self.host.read_memory(addr, buf)
        }
        fn reboot(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
            self.host.reboot(out)
        }
        fn trigger_fault(&mut self, kind: FaultRequest) -> Result<(), PlatformError> {
            self.host.trigger_fault(kind)
        }
        type Mirror = MemfdMirror;
        fn rings(&mut self) -> &mut Rings<MemfdMirror> {
            self.host.rings()
        }
        fn create_mirror_units(&mut self, mib: u64) -> Result<MemfdMirror, PlatformError> {
            self.host.create_mirror_units(mib)
        }
        fn destroy_mirror(&mut self, mirror: MemfdMirror) {
            self.host.destroy_mirror(mirror)
        }
        fn describe_mirror(m: &MemfdMirror, out: &mut dyn fmt::Write) -> fmt::Result {
            HostPlatform::describe_mirror(m, out)
        }
        fn write_map(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
            self.host.write_map(out)
        }
        fn load_buffer(&mut self, len: usize) -> Result<&mut [u8], PlatformError> {
            if len > 4096 {
                return Err(PlatformError::from("load: too large for this test"));
            }
            self.buf = std::vec![0; len];
            Ok(&mut self.buf)
        }
        fn release_load_buffer(&mut self) {
            self.released += 1;
        }
        fn start_image(&mut self, len: usize) -> PlatformError {
            self.started = Some(self.buf[..len].to_vec());
            PlatformError::from("load: (test) started")
        }
    }

    /// Runs `input` through the shell on a [`Loader`]; the output and the loader.
    fn run(input: &[u8]) -> (Vec<u8>, String, Loader) {
        let mut con = MemConsole::new(input);
        let mut p = Loader {
            host: HostPlatform::new(1 << 20, 4),
            buf: Vec::new(),
            started: None,
            released: 0,
        };
        let mut st = LineState::new();
        let mut line = [0u8; LINE_BUFFER_BYTES];
        let mut history = [0u8; HISTORY_BYTES];
        {
            let mut io = LineIo::new(&mut con, &mut st);
            let mut shell = Shell::new(&mut line, &mut history, &mut io);
            while shell.step(&mut io, &mut p) == crate::shell::Step::Continue {}
        }
        (con.output().to_vec(), con.text(), p)
    }

    /// A 2500-byte image with every byte value, CR, LF and Ctrl-C among them.
    fn image() -> Vec<u8> {
        (0..2500u32).map(|i| (i * 7 % 256) as u8).collect()
    }

    fn command(img: &[u8], crc: u32) -> Vec<u8> {
        let mut v = std::format!("load {} {:#x}\r", img.len(), crc).into_bytes();
        v.extend_from_slice(img);
        v
    }

    #[test]
    fn a_good_image_is_acknowledged_per_block_and_started() {
        let img = image();
        let crc = crate::crc32::crc32(&img);
        let (raw, text, p) = run(&command(&img, crc));
        assert!(
            text.contains("load: waiting for 2500 bytes in blocks of 1024"),
            "{text}"
        );
        // One ACK before the first block, one after each full block but the last:
        // 2500 bytes = 1024 + 1024 + 452, so 3 ACKs.
        assert_eq!(raw.iter().filter(|&&b| b == ACK).count(), 3);
        assert!(text.contains(&std::format!(
            "load: 2500 bytes, crc32={crc:08x} ok; starting"
        )));
        assert_eq!(p.started.as_deref(), Some(&img[..]));
        assert!(text.contains("error: load: (test) started"));
    }

    #[test]
    fn a_corrupted_image_is_refused_and_nothing_starts() {
        let img = image();
        let crc = crate::crc32::crc32(&img);
        let mut bad = img.clone();
        bad[1500] ^= 0x40;
        let mut input = command(&bad, crc);
        input.extend_from_slice(b"echo still here\r");
        let (_, text, p) = run(&input);
        let got = crate::crc32::crc32(&bad);
        assert!(
            text.contains(&std::format!(
                "error: load: crc32 {got:08x} is not the announced {crc:08x}; kernel unchanged"
            )),
            "{text}"
        );
        assert!(p.started.is_none());
        assert_eq!(p.released, 1);
        assert!(text.contains("\nstill here\n"), "the shell goes on: {text}");
    }

    #[test]
    fn a_truncated_image_times_out_and_nothing_starts() {
        let img = image();
        let crc = crate::crc32::crc32(&img);
        let mut input = command(&img, crc);
        input.truncate(input.len() - 100);
        let (_, text, p) = run(&input);
        assert!(
            text.contains("error: load: timed out after 2400 of 2500 bytes (no data for 3 s); kernel unchanged"),
            "{text}"
        );
        assert!(p.started.is_none());
        assert_eq!(p.released, 1);
    }

    #[test]
    fn bad_arguments_change_nothing() {
        let (_, text, p) =
            run(b"load 0 0x1\rload 10\rload 10 0x100000000\rload 5000 1\rload 4 1 2\r");
        assert!(
            text.contains("error: load: LEN must be at least 1"),
            "{text}"
        );
        assert!(text.contains("error: missing CRC32"), "{text}");
        assert!(
            text.contains("error: load: too large for this test"),
            "{text}"
        );
        assert_eq!(text.matches("error: ").count(), 5, "{text}");
        assert!(p.started.is_none() && !text.contains("waiting for"));
    }

    #[test]
    fn the_host_shell_cannot_start_a_kernel() {
        let mut con = MemConsole::new(b"load 4 0x1\r");
        let mut p = HostPlatform::new(1 << 20, 4);
        let mut st = LineState::new();
        let mut line = [0u8; LINE_BUFFER_BYTES];
        let mut history = [0u8; HISTORY_BYTES];
        {
            let mut io = LineIo::new(&mut con, &mut st);
            let mut shell = Shell::new(&mut line, &mut history, &mut io);
            while shell.step(&mut io, &mut p) == crate::shell::Step::Continue {}
        }
        assert!(con
            .text()
            .contains("error: load: this machine cannot start a kernel image"));
    }
}
