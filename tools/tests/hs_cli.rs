//! `vmcirc hs compress|decompress` end to end: the default mode reads the zero
//! history for a back-reference before the stream start, `--strict` fails on it with
//! one line on stderr and a non-zero exit (on stdout, after writing what was decoded
//! before it), and accepts streams without such references; a failure never
//! truncates or replaces an existing output file, and leaves no temporary file.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vmcirc");

struct Run {
    code: i32,
    stdout: Vec<u8>,
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
        stdout: out.stdout,
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
    // A failed run creates no output file.
    assert!(!d.join("zz2.out").exists());

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
    assert!(!d.join("a2.out").exists());
    // On stdout the bytes decoded before the bad reference are written.
    let r = hs(d, &["decompress", "-w", "8", "-l", "4", "--strict", "a.hs"]);
    assert_ne!(r.code, 0);
    assert_eq!(r.stdout, b"A");
    assert_eq!(entries(d), ["a.hs", "a.out", "zz.hs", "zz.out"]);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failure_never_touches_an_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in.bin"), b"hello hello hello hello").unwrap();
    std::fs::write(d.join("cut.hs"), [0x00]).unwrap(); // a reference cut after 8 bits
    let precious = b"the previous output, which must survive";
    std::fs::write(d.join("out"), precious).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["compress", "-w", "16", "in.bin", "out"], "-w 16 -l 4"),
        (
            &["compress", "-w", "8", "-l", "8", "in.bin", "out"],
            "-w 8 -l 8",
        ),
        (&["decompress", "-w", "3", "in.bin", "out"], "-w 3 -l 4"),
        (
            &["decompress", "-w", "11", "-l", "2", "in.bin", "out"],
            "-w 11 -l 2",
        ),
        (&["compress", "missing.bin", "out"], "missing.bin"),
        (&["decompress", "missing.hs", "out"], "missing.hs"),
        (
            &["decompress", "-w", "8", "-l", "4", "cut.hs", "out"],
            "truncated",
        ),
    ];
    for (args, why) in cases {
        let r = hs(d, args);
        assert_ne!(r.code, 0, "{args:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.to_lowercase().contains(why),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(std::fs::read(d.join("out")).unwrap(), precious, "{args:?}");
        // Nor is a missing output created.
        let fresh: Vec<&str> = args
            .iter()
            .map(|a| if *a == "out" { "fresh" } else { a })
            .collect();
        assert_ne!(hs(d, &fresh).code, 0);
        assert!(!d.join("fresh").exists(), "{args:?}");
    }
    // Only the files the test made: no temporary file is left behind.
    assert_eq!(entries(d), ["cut.hs", "in.bin", "out"]);
    // A run that succeeds replaces the file (and round-trips).
    assert_eq!(hs(d, &["compress", "in.bin", "out"]).code, 0);
    assert_ne!(std::fs::read(d.join("out")).unwrap(), precious);
    assert_eq!(hs(d, &["decompress", "out", "back"]).code, 0);
    assert_eq!(
        std::fs::read(d.join("back")).unwrap(),
        b"hello hello hello hello"
    );
    // Compressing a file onto itself works too: the input is read before the rename.
    assert_eq!(hs(d, &["compress", "in.bin", "in.bin"]).code, 0);
    assert_eq!(hs(d, &["decompress", "in.bin", "in2"]).code, 0);
    assert_eq!(
        std::fs::read(d.join("in2")).unwrap(),
        b"hello hello hello hello"
    );
    assert_eq!(entries(d), ["back", "cut.hs", "in.bin", "in2", "out"]);
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
