//! Golden files of `expect-golden`: compare a command's whole output with a file, or
//! (`--accept`) write the output there, reporting what changed.
//!
//! The output compared is the transcript's clean text (lines end in `\n`); CRLF line
//! ends in the file (a Windows checkout) are read as LF. A missing file is a failure
//! that says how to create it. An accepted file is written through a temporary file
//! renamed over it, so an interrupted run never leaves half a golden file.

use std::path::Path;

use crate::diff;

/// What `--accept` did for one `expect-golden` step.
pub struct Accepted {
    /// Whether the file was created or changed.
    pub changed: bool,
    /// For the report: "new file ...", "changed ...", "unchanged ...".
    pub note: String,
    /// What changed (empty for a new or unchanged file).
    pub diff: Vec<String>,
}

/// Why a golden check failed.
#[derive(Debug)]
pub enum Mismatch {
    /// The output differs: a one-line summary and the line diff.
    Differs {
        /// "the output differs from PATH: first difference at line N (...)".
        summary: String,
        /// The line diff.
        diff: Vec<String>,
    },
    /// The file is missing, unreadable or unwritable: one line.
    Other(String),
}

/// A golden file as compared: CRLF line ends read as LF (the output has no `\r`).
fn without_cr(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        if !(c == b'\r' && b.get(i + 1) == Some(&b'\n')) {
            v.push(c);
        }
    }
    v
}

/// Compares `got` with the file at `path`: `Ok(None)` when equal.
/// With `accept`, writes `got` there instead and says what that did.
pub fn check(path: &Path, got: &[u8], accept: bool) -> Result<Option<Accepted>, Mismatch> {
    let shown = path.display();
    let old = match std::fs::read(path) {
        Ok(b) => Some(without_cr(&b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Mismatch::Other(format!("cannot read {shown}: {e}"))),
    };
    if !accept {
        let Some(want) = old else {
            return Err(Mismatch::Other(format!(
                "the golden file {shown} does not exist; to create it from this output, \
                 run the script with --accept (or VMCIRC_ACCEPT=1, `make accept`), then read the file"
            )));
        };
        if want == got {
            return Ok(None);
        }
        return Err(Mismatch::Differs {
            summary: format!(
                "the output differs from {shown}: {}",
                diff::summary(&want, got)
            ),
            diff: diff::line_diff(&want, got, "expected (golden file)"),
        });
    }
    let lines = diff::n_lines(diff::split_lines(got).len());
    if let Some(want) = &old {
        if want == got {
            return Ok(Some(Accepted {
                changed: false,
                note: format!("unchanged: {shown}, {lines}"),
                diff: Vec::new(),
            }));
        }
    }
    write(path, got).map_err(|e| Mismatch::Other(format!("cannot write {shown}: {e}")))?;
    Ok(Some(match old {
        None => Accepted {
            changed: true,
            note: format!("new file: {shown}, {lines}"),
            diff: Vec::new(),
        },
        Some(want) => Accepted {
            changed: true,
            note: format!("changed: {shown}, {}", diff::summary(&want, got)),
            diff: diff::line_diff(&want, got, "golden file before"),
        },
    }))
}

fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::atomic::write(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_in_the_file_reads_as_lf() {
        assert_eq!(without_cr(b"a\r\nb\r\n\r"), b"a\nb\n\r");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g");
        std::fs::write(&p, b"x\r\ny\r\n").unwrap();
        assert!(check(&p, b"x\ny\n", false).unwrap().is_none());
        assert!(matches!(
            check(&p, b"x\nz\n", false),
            Err(Mismatch::Differs { .. })
        ));
    }

    #[test]
    fn accept_creates_changes_or_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/g");
        let a = check(&p, b"one\n", true).ok().flatten().unwrap();
        assert!(a.changed && a.note.starts_with("new file: "), "{}", a.note);
        let a = check(&p, b"one\n", true).ok().flatten().unwrap();
        assert!(!a.changed && a.note.starts_with("unchanged: "));
        let a = check(&p, b"two\n", true).ok().flatten().unwrap();
        assert!(a.changed && a.diff.iter().any(|l| l == "-    1      | one"));
        assert_eq!(std::fs::read(&p).unwrap(), b"two\n");
        // Only the file itself is left in the folder (no temporary files).
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
