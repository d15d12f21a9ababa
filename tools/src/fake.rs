//! `vmcirc fake-board` (hidden): a tiny stand-in for the kernel's shell on stdin/stdout.
//!
//! It lets the tests drive `vmcirc script --exec` without QEMU: it asks for the
//! terminal size (`ESC[6n`) like `noline` and does not wait for the answer, prints
//! `vmcirc> `, echoes typed bytes (ignoring escape sequences), wraps long echoes at
//! 80 columns with `\n\r`, abandons the line on Ctrl-C (`^C` and a new prompt), and
//! runs `help`, `echo ARGS`, `rx LEN` (binary-safe, any length in constant memory,
//! then `rx LEN crc32=xxxxxxxx`), `busy` (runs until Ctrl-C, dropping what is typed
//! before it, like the kernel's long commands), `load LEN CRC32` (the kernel's
//! chainloader protocol, `src/shell/load.rs`: an ACK before each block of 1024
//! bytes; a good image "starts" it, which prints a banner naming the image's CRC-32
//! and a new prompt), `exit` (quits, closing the link), and reports `error: ` lines
//! for unknown commands and overlong lines. Flags make it misbehave on purpose
//! (corrupt uploads, hang, ignore Ctrl-C, stall a load) or boot slowly, dropping what
//! was sent meanwhile (as the kernel flushes its UART), so the tests can prove that
//! the runner and `vmcirc install` notice.

use std::io::{self, BufReader, Read, Write};

/// Options of the fake board.
#[derive(clap::Args, Debug)]
pub struct FakeArgs {
    /// Flip one bit of the data `rx` and `load` receive before computing its CRC.
    #[arg(long)]
    corrupt_rx: bool,
    /// Stop acknowledging `load` blocks after this many bytes (a stalled loader).
    #[arg(long, value_name = "BYTES")]
    stall_load_after: Option<u64>,
    /// Never print the prompt after this many commands (a hung shell).
    #[arg(long)]
    hang_after: Option<usize>,
    /// Ignore Ctrl-C (ring the bell), as a line editor without it would.
    #[arg(long)]
    no_ctrl_c: bool,
    /// Take this many milliseconds to boot, then drop the input that arrived
    /// meanwhile (the kernel flushes the UART FIFO while it initialises it).
    #[arg(long, value_name = "MS")]
    boot_delay: Option<u64>,
}

const MAX_LINE: usize = 200;
const WIDTH: usize = 80;
const PROMPT: &[u8] = b"vmcirc> ";
/// `load`'s block, acknowledgement and largest image, as the kernel's.
const LOAD_BLOCK: u64 = vmcirc::shell::load::BLOCK as u64;
const ACK: u8 = vmcirc::shell::load::ACK;
const LOAD_MAX: u64 = vmcirc::shell::load::LOAD_MAX;

/// Run the fake shell until end of input or `exit`.
pub fn run(args: &FakeArgs) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(b"fake vmcirc board\r\n\x1b[6n")?;
    if let Some(ms) = args.boot_delay {
        out.flush()?;
        std::thread::sleep(std::time::Duration::from_millis(ms));
        flush_input()?;
    }
    let mut input = BufReader::new(io::stdin().lock()).bytes();
    let mut commands = 0usize;
    'prompt: loop {
        if args.hang_after.is_some_and(|n| commands >= n) {
            // Swallow input, never answer again.
            for b in input.by_ref() {
                b?;
            }
            return Ok(());
        }
        out.write_all(PROMPT)?;
        out.flush()?;
        let mut line = Vec::new();
        let mut col = PROMPT.len();
        loop {
            let Some(b) = input.next() else { return Ok(()) };
            let b = b?;
            match b {
                b'\r' | b'\n' => break,
                0x1b => {
                    // Ignore escape sequences (a terminal's answer to ESC[6n, arrows).
                    if let Some(Ok(b'[')) = input.next() {
                        for b in input.by_ref() {
                            if matches!(b?, 0x40..=0x7e) {
                                break;
                            }
                        }
                    }
                }
                0x03 if !args.no_ctrl_c => {
                    out.write_all(b"^C\r\n")?;
                    continue 'prompt;
                }
                0x7f | 0x08 => {
                    if line.pop().is_some() {
                        out.write_all(b"\x08 \x08")?;
                    }
                }
                0x20..=0x7e => {
                    if line.len() == MAX_LINE {
                        // Discard to the end of the line, then report.
                        for b in input.by_ref() {
                            if matches!(b?, b'\r' | b'\n') {
                                break;
                            }
                        }
                        out.write_all(b"\n\rerror: line too long\r\n")?;
                        commands += 1;
                        continue 'prompt;
                    }
                    line.push(b);
                    out.write_all(&[b])?;
                    col += 1;
                    if col == WIDTH {
                        out.write_all(b"\n\r")?;
                        col = 0;
                    }
                }
                _ => out.write_all(b"\x07")?,
            }
            out.flush()?;
        }
        out.write_all(b"\n\r")?;
        commands += 1;
        let line = String::from_utf8_lossy(&line).into_owned();
        let mut words = line.split_whitespace();
        match words.next() {
            None => {}
            Some("help") => out.write_all(
                b"help        list the commands\r\necho ARGS   print ARGS\r\n\
                  rx LEN      receive LEN raw bytes, print their CRC-32\r\nexit        quit\r\n",
            )?,
            Some("echo") => {
                let rest: Vec<&str> = words.collect();
                out.write_all(rest.join(" ").as_bytes())?;
                out.write_all(b"\r\n")?;
            }
            Some("rx") => match words.next().and_then(|w| w.parse::<u64>().ok()) {
                Some(len) => {
                    out.flush()?;
                    // Streamed: any length in constant memory.
                    let mut crc = vmcirc::crc32::CRC32.digest();
                    let mut got = 0u64;
                    for b in input
                        .by_ref()
                        .take(usize::try_from(len).unwrap_or(usize::MAX))
                    {
                        let mut b = b?;
                        if args.corrupt_rx && got == len / 2 {
                            b ^= 0x10;
                        }
                        crc.update(&[b]);
                        got += 1;
                    }
                    if got < len {
                        out.write_all(b"error: rx: input ended early\r\n")?;
                        return Ok(());
                    }
                    write!(out, "rx {len} crc32={:08x}\r\n", crc.finalize())?;
                }
                None => out.write_all(b"error: rx needs a length\r\n")?,
            },
            Some("load") => {
                let len = words.next().and_then(|w| w.parse::<u64>().ok());
                let crc = words.next().and_then(|w| {
                    let w = w.strip_prefix("0x").unwrap_or(w);
                    u32::from_str_radix(w, 16).ok()
                });
                let (Some(len @ 1..=LOAD_MAX), Some(want)) = (len, crc) else {
                    out.write_all(b"error: load needs LEN (1 to 64 MiB) and a hex CRC32\r\n")?;
                    continue;
                };
                write!(
                    out,
                    "load: waiting for {len} bytes in blocks of {LOAD_BLOCK}\r\n"
                )?;
                out.write_all(&[ACK])?;
                out.flush()?;
                let mut crc = vmcirc::crc32::CRC32.digest();
                let mut got = 0u64;
                while got < len {
                    let Some(b) = input.next() else {
                        return Ok(());
                    };
                    let mut b = b?;
                    if args.corrupt_rx && got == len / 2 {
                        b ^= 0x10;
                    }
                    crc.update(&[b]);
                    got += 1;
                    if got.is_multiple_of(LOAD_BLOCK) && got < len {
                        if args.stall_load_after.is_some_and(|n| got >= n) {
                            for b in input.by_ref() {
                                b?;
                            }
                            return Ok(());
                        }
                        out.write_all(&[ACK])?;
                        out.flush()?;
                    }
                }
                let got = crc.finalize();
                if got == want {
                    write!(
                        out,
                        "load: {len} bytes, crc32={got:08x} ok; starting the new kernel\r\n\
                         \r\nfake vmcirc board (build {got:08x}) booting\r\n\x1b[6n"
                    )?;
                } else {
                    write!(
                        out,
                        "error: load: crc32 {got:08x} is not the announced {want:08x}; kernel unchanged\r\n"
                    )?;
                }
            }
            Some("busy") => {
                out.flush()?;
                // Until Ctrl-C; what comes before it is dropped with it.
                loop {
                    match input.next() {
                        None => return Ok(()),
                        Some(b) => {
                            if b? == 0x03 {
                                break;
                            }
                        }
                    }
                }
                out.write_all(b"busy: interrupted by Ctrl-C\r\n")?;
            }
            Some("exit") => {
                out.write_all(b"bye\r\n")?;
                return Ok(());
            }
            Some(other) => write!(out, "error: unknown command `{other}`\r\n")?,
        }
    }
}

/// Drops the input that has arrived on stdin so far, without waiting for more.
fn flush_input() -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags};
    let stdin = rustix::stdio::stdin();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        if poll(&mut fds, Some(&rustix::event::Timespec::default()))? == 0 {
            return Ok(());
        }
        if rustix::io::read(stdin, &mut buf)? == 0 {
            return Ok(());
        }
    }
}
