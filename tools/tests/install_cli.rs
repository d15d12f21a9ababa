//! `vmcirc install` end to end against the hidden fake board (`vmcirc fake-board`,
//! which speaks the kernel's `load` protocol: an ACK before each 1 KiB block, the
//! CRC-32 checked, a banner naming the image's CRC-32 when it "starts" one), spawned
//! through the test-only `--exec` transport: no QEMU needed. `make test` installs
//! real kernels in QEMU, over pipes and over a pty.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vmcirc");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn install(images: &[&Path], board_flags: &str, extra: &[&str]) -> Run {
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .arg("install")
        .args(images)
        .arg("--exec")
        .arg(format!("'{BIN}' fake-board {board_flags}"))
        .args(extra)
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t0.elapsed(),
    };
    eprintln!("--- stdout\n{}--- stderr\n{}", r.stdout, r.stderr);
    r
}

/// An image of `len` bytes with every byte value (CR, LF, Ctrl-C, ACK among them).
fn image(dir: &Path, name: &str, len: usize, seed: u8) -> (std::path::PathBuf, u32) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, vmcirc::crc32::crc32(&data))
}

#[test]
fn images_are_installed_in_turn_and_each_new_banner_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    // Not a whole number of blocks, exactly one block, and several.
    let (a, crc_a) = image(dir.path(), "a.img", 2500, 1);
    let (b, crc_b) = image(dir.path(), "b.img", 1024, 2);
    let (c, crc_c) = image(dir.path(), "c.img", 5 * 1024 + 1, 3);
    let r = install(&[&a, &b, &c], "", &[]);
    assert_eq!(r.code, 0);
    let answers: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_once("; the new kernel answers: ").map(|(_, b)| b))
        .collect();
    // The fake board's banner names the CRC-32 of what it received.
    assert_eq!(
        answers,
        [crc_a, crc_b, crc_c].map(|c| format!("fake vmcirc board (build {c:08x}) booting"))
    );
    assert!(r.stdout.contains(&format!(
        "install: {} (2500 bytes, crc32 {crc_a:08x})",
        a.display()
    )));
    // stdout is not a terminal: no progress bar, and the runner's step lines are
    // not shown either.
    assert!(!r.stdout.contains('\r') && !r.stdout.contains("eta"));
    assert!(!r.stdout.contains("  ok  "));
}

#[test]
fn a_refused_image_is_a_one_line_error_with_the_kernels_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (a, crc) = image(dir.path(), "a.img", 3000, 4);
    let r = install(&[&a], "--corrupt-rx", &[]);
    assert_eq!(r.code, 1);
    let msg = format!(
        "error: install: the kernel refused {}: load: crc32 ",
        a.display()
    );
    assert!(r.stderr.starts_with(&msg), "{}", r.stderr);
    assert!(r
        .stderr
        .contains(&format!("is not the announced {crc:08x}; kernel unchanged")));
    assert_eq!(r.stderr.lines().count(), 1);
}

#[test]
fn a_loader_that_stops_acknowledging_fails_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = image(dir.path(), "a.img", 4000, 5);
    let r = install(&[&a], "--stall-load-after 2048", &["--timeout", "1"]);
    assert_eq!(r.code, 1);
    assert!(r.took < Duration::from_secs(8), "took {:?}", r.took);
    assert!(
        r.stdout
            .contains("no `\\x06` for the next block within 1.0s after 2048 of 4000 bytes"),
        "{}",
        r.stdout
    );
    assert!(r
        .stderr
        .contains(&format!("error: install: {} was not sent", a.display())));
}

#[test]
fn it_attaches_to_a_running_board_like_a_script_does() {
    let dir = tempfile::tempdir().unwrap();
    let (a, crc) = image(dir.path(), "a.img", 1500, 6);
    // The shared target options: --attach provokes a fresh prompt (Ctrl-C, Enter)
    // instead of waiting for a boot; here the board ignores Ctrl-C.
    let r = install(&[&a], "--no-ctrl-c", &["--attach"]);
    assert_eq!(r.code, 0);
    assert!(r
        .stdout
        .contains("install: attached: the kernel answered with a fresh prompt"));
    assert!(r
        .stdout
        .contains(&format!("fake vmcirc board (build {crc:08x}) booting")));
    // A target with no prompt at all fails saying so, within the timeout.
    let r = install(&[&a], "--hang-after 0", &["--attach", "--timeout", "0.5"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("FAIL  (attach)"), "{}", r.stdout);
    assert!(r
        .stderr
        .contains("error: install: no prompt from a vmcirc kernel on"));
}

#[test]
fn bad_images_and_options_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let elf = dir.path().join("kernel.elf");
    std::fs::write(&elf, b"\x7fELF\x01\x01\x01\0rest").unwrap();
    let missing = dir.path().join("missing.img");
    let (good, _) = image(dir.path(), "good.img", 100, 7);
    for (images, says) in [
        (vec![&good, &empty], "empty.img is empty"),
        (vec![&elf], "is an ELF file; install the raw image"),
        (vec![&missing], "reading"),
    ] {
        let images: Vec<&Path> = images.iter().map(|p| p.as_path()).collect();
        // A board that would hang: nothing may reach it.
        let r = install(&images, "--hang-after 0", &[]);
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains(says), "{says}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(r.took < Duration::from_secs(5));
    }
    let r = install(&[&good], "", &["--timeout", "0"]);
    assert_eq!(r.code, 1);
    assert!(r
        .stderr
        .contains("--timeout 0 is not a number of seconds above 0"));
    // --term needs a serial port (and is refused before the install, not after).
    let r = install(&[&good], "", &["--term"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("it needs --port"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}
