//! `vmcirc hs decompress` end to end: the default mode reads the zero history for a
//! back-reference before the stream start, `--strict` fails on it with one line on
//! stderr and a non-zero exit (after writing what was decoded before it), and
//! accepts streams without such references.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vmcirc");

struct Run {
    code: i32,
    stderr: String,
}

fn hs(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("hs")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("--- hs {args:?}: exit {}\n{}", r.code, r.stderr);
    r
}

#[test]
fn decompress_strict_rejects_a_reference_before_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `00 08` at W=8, L=4: one back-reference d=1, n=2 into the zero history.
    std::fs::write(d.join("zz.hs"), [0x00, 0x08]).unwrap();

    let r = hs(d, &["decompress", "-w", "8", "-l", "4", "zz.hs", "zz.out"]);
    assert_eq!(r.code, 0);
    assert_eq!(std::fs::read(d.join("zz.out")).unwrap(), [0, 0]);

    let r = hs(
        d,
        &[
            "decompress",
            "-w",
            "8",
            "-l",
            "4",
            "--strict",
            "zz.hs",
            "zz2.out",
        ],
    );
    assert_ne!(r.code, 0);
    assert_eq!(
        r.stderr,
        "error: hs decompress: heatshrink back-reference 1 bytes back, but only 0 bytes decoded so far\n"
    );
    assert_eq!(std::fs::read(d.join("zz2.out")).unwrap(), [] as [u8; 0]);

    // "A", then d=2, n=2: the bytes before the bad reference are written.
    std::fs::write(d.join("a.hs"), [0xA0, 0x80, 0x44]).unwrap();
    let r = hs(d, &["decompress", "-w", "8", "-l", "4", "a.hs", "a.out"]);
    assert_eq!(r.code, 0);
    assert_eq!(std::fs::read(d.join("a.out")).unwrap(), b"A\0A");
    let r = hs(
        d,
        &[
            "decompress",
            "-w",
            "8",
            "-l",
            "4",
            "--strict",
            "a.hs",
            "a2.out",
        ],
    );
    assert_ne!(r.code, 0);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("2 bytes back, but only 1 bytes decoded"));
    assert_eq!(std::fs::read(d.join("a2.out")).unwrap(), b"A");
}

#[test]
fn decompress_strict_accepts_streams_without_such_references() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data: Vec<u8> = (0..50_000u32)
        .map(|i| b"heatshrink strict mode "[(i % 23) as usize] ^ (i / 997) as u8 | 1)
        .collect();
    assert!(!data.contains(&0));
    std::fs::write(d.join("in.bin"), &data).unwrap();
    for (w, l) in [("8", "4"), ("11", "4"), ("15", "8")] {
        let r = hs(d, &["compress", "-w", w, "-l", l, "in.bin", "in.hs"]);
        assert_eq!(r.code, 0);
        let r = hs(
            d,
            &[
                "decompress",
                "-w",
                w,
                "-l",
                l,
                "--strict",
                "in.hs",
                "back.bin",
            ],
        );
        assert_eq!(r.code, 0, "w{w} l{l}");
        assert!(
            std::fs::read(d.join("back.bin")).unwrap() == data,
            "w{w} l{l}"
        );
    }
}
