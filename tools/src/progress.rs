//! The progress bar of a long send (bytes, rate, ETA), drawn with `indicatif` on
//! stdout, and only when stdout is a terminal: piped or logged output gets no bar
//! (a tool's own lines report what was sent).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar on the terminal, cleared when dropped.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar for `total` bytes, or `None` when stdout is not a terminal.
    pub fn new(total: u64) -> Option<Bar> {
        if !std::io::stdout().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template(
                "  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Some(Bar(bar))
    }

    /// `n` more bytes went out.
    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
