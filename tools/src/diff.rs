//! Line diffs for golden-file reports: which lines of the expected text and the
//! received text differ, shown unified-style with the line numbers in both.
//!
//! The diff itself (Myers, with a time bound so a huge mismatch cannot stall a
//! session) is the `similar` crate's; this module only lays it out.

use std::time::{Duration, Instant};

use similar::{Algorithm, DiffTag};

/// Lines of context around each change.
pub const CONTEXT: usize = 2;
/// Most diff lines shown (hunk headers included, file headers not).
pub const MAX_LINES: usize = 60;
/// Time the diff may take before it settles for a coarser answer.
const DEADLINE: Duration = Duration::from_secs(1);

/// Lines with their `\n` (the last one may lack it).
pub fn split_lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n').collect()
}

/// "1 line", "N lines".
pub fn n_lines(n: usize) -> String {
    if n == 1 {
        "1 line".into()
    } else {
        format!("{n} lines")
    }
}

/// "first difference at line N (golden file E lines, received R lines)".
pub fn summary(want: &[u8], got: &[u8]) -> String {
    let (w, g) = (split_lines(want), split_lines(got));
    let first = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    format!(
        "first difference at line {} (golden file {}, received {})",
        first + 1,
        n_lines(w.len()),
        n_lines(g.len())
    )
}

/// One line of a diff, readable: escaped as everywhere ([`vmcirc::escape`]), without
/// its newline, and a note when it has none.
fn show_line(l: &[u8]) -> String {
    match l.strip_suffix(b"\n") {
        Some(body) => vmcirc::escape::Bytes(body).to_string(),
        None => format!("{}  (no newline at the end)", vmcirc::escape::Bytes(l)),
    }
}

/// A unified-style line diff of `want` (expected, named `old` in the header) and
/// `got` (received): hunks `@@ -E,n +R,m @@` of lines marked ` ` (both), `-`
/// (expected only) and `+` (received only), each with its line number in the
/// expected text and in the received one; at most [`MAX_LINES`] lines.
pub fn line_diff(want: &[u8], got: &[u8], old: &str) -> Vec<String> {
    let (w, g) = (split_lines(want), split_lines(got));
    let ops = similar::capture_diff_slices_deadline(
        Algorithm::Myers,
        &w,
        &g,
        Some(Instant::now() + DEADLINE),
    );
    let hunks = similar::group_diff_ops(ops, CONTEXT);
    let mut rows: Vec<String> = Vec::new();
    for hunk in &hunks {
        let (Some(first), Some(last)) = (hunk.first(), hunk.last()) else {
            continue;
        };
        let (i0, i1) = (first.old_range().start, last.old_range().end);
        let (j0, j1) = (first.new_range().start, last.new_range().end);
        let start = |p: usize, n: usize| if n == 0 { p } else { p + 1 };
        rows.push(format!(
            "@@ -{},{} +{},{} @@",
            start(i0, i1 - i0),
            i1 - i0,
            start(j0, j1 - j0),
            j1 - j0
        ));
        for op in hunk {
            let (tag, old_r, new_r) = op.as_tag_tuple();
            match tag {
                DiffTag::Equal => {
                    for (i, j) in old_r.zip(new_r) {
                        rows.push(format!("  {:>4} {:>4} | {}", i + 1, j + 1, show_line(w[i])));
                    }
                }
                DiffTag::Delete | DiffTag::Insert | DiffTag::Replace => {
                    for i in old_r {
                        rows.push(format!("- {:>4} {:>4} | {}", i + 1, "", show_line(w[i])));
                    }
                    for j in new_r {
                        rows.push(format!("+ {:>4} {:>4} | {}", "", j + 1, show_line(g[j])));
                    }
                }
            }
        }
    }
    let mut out = vec![format!("--- {old}"), "+++ received".to_string()];
    if rows.len() > MAX_LINES {
        let more = rows.len() - MAX_LINES;
        rows.truncate(MAX_LINES);
        rows.push(format!("... ({more} more diff lines)"));
    }
    out.extend(rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_changes_with_line_numbers() {
        let want = b"a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let got = b"a\nb\nC\nd\ne\nf\ng\nh\ni\nj\n";
        assert_eq!(
            summary(want, got),
            "first difference at line 3 (golden file 9 lines, received 10 lines)"
        );
        let d = line_diff(want, got, "expected (golden file)");
        assert_eq!(
            d,
            [
                "--- expected (golden file)",
                "+++ received",
                "@@ -1,5 +1,5 @@",
                "     1    1 | a",
                "     2    2 | b",
                "-    3      | c",
                "+         3 | C",
                "     4    4 | d",
                "     5    5 | e",
                "@@ -8,2 +8,3 @@",
                "     8    8 | h",
                "     9    9 | i",
                "+        10 | j",
            ]
        );
        // Changes close together share a hunk.
        let d = line_diff(b"a\nb\nc\nd\ne\n", b"A\nb\nc\nd\nE\n", "x");
        assert_eq!(d[2], "@@ -1,5 +1,5 @@");
        assert_eq!(d.len(), 3 + 7);
        // A missing final newline and unprintable bytes are visible.
        let d = line_diff(b"x\n", b"x\xff", "x");
        assert_eq!(d[3], "-    1      | x");
        assert_eq!(d[4], "+         1 | x\\xff  (no newline at the end)");
        // Only insertions into an empty file: the old range starts at 0.
        assert_eq!(line_diff(b"", b"a\n", "x")[2], "@@ -0,0 +1,1 @@");
        // Long diffs are cut.
        let many: Vec<u8> = (0..500)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let d = line_diff(b"", &many, "x");
        assert_eq!(d.len(), MAX_LINES + 3);
        assert_eq!(d.last().unwrap(), "... (441 more diff lines)");
        // Equal texts: no hunks.
        assert_eq!(line_diff(b"a\n", b"a\n", "x").len(), 2);
    }
}
