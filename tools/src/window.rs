//! Output windows: which part of the transcript a script's checks look at.
//!
//! A window is the output of the last command, from the end of its echoed line up to
//! the prompt that follows it (or the N-th prompt for `paste`), an open stream after
//! raw input typed at the prompt (ended only by `wait-prompt` or a check that needs
//! the whole output), or the text before the first prompt (boot output, or what
//! arrived after attaching to a running board). Positions are the transcript's
//! absolute ones ([`crate::transcript`]).

use crate::transcript::Transcript;

/// The output region the checks look at.
pub struct Window {
    /// Where it starts in the transcript.
    pub start: usize,
    /// The prompt (numbered from 1 since the session started) that ends it; `None`
    /// for an open stream (raw input that owes no prompt).
    pub end_prompt: Option<usize>,
    /// Where that prompt starts, once it arrived.
    pub end: Option<usize>,
    /// The echoed line to skip before the output starts.
    echo: Vec<u8>,
    /// Where the output starts, once the echo is past.
    pub out_start: Option<usize>,
    /// For reports: "the output of `> help` (line 3)".
    pub label: String,
}

impl Window {
    /// Everything up to prompt number `end_prompt`, from `start`: the boot output
    /// (or what arrived after attaching).
    pub fn first(start: usize, end_prompt: usize, label: &str) -> Window {
        Window {
            start,
            end_prompt: Some(end_prompt),
            end: None,
            echo: Vec::new(),
            out_start: Some(start),
            label: label.into(),
        }
    }

    /// A command's output: after its `echo` at `start`, up to prompt `end_prompt`.
    pub fn command(start: usize, end_prompt: usize, echo: Vec<u8>, label: String) -> Window {
        Window {
            start,
            end_prompt: Some(end_prompt),
            end: None,
            echo,
            out_start: None,
            label,
        }
    }

    /// Output after raw input, up to prompt `end_prompt` or (`None`) open.
    pub fn stream(start: usize, end_prompt: Option<usize>, label: String) -> Window {
        Window {
            start,
            end_prompt,
            end: None,
            echo: Vec::new(),
            out_start: Some(start),
            label,
        }
    }

    /// Updates the end and the echo position from the transcript.
    pub fn refresh(&mut self, t: &Transcript) {
        if self.end.is_none() {
            if let Some(k) = self.end_prompt {
                self.end = t.prompt_start(k);
            }
        }
        if self.out_start.is_none() {
            if self.start < t.dropped() {
                // The echo was dropped with the oldest output: the window starts at
                // what is kept.
                self.out_start = Some(self.start);
                return;
            }
            let limit = self.end.unwrap_or(t.end()).max(self.start);
            let text = t.get(self.start, limit);
            self.out_start =
                skip_echo(text, &self.echo, self.end.is_some()).map(|k| self.start + k);
        }
    }
}

/// Where a command's output starts in `text`, which begins with its echoed line
/// `echo`.
///
/// The line editor may wrap a long echo (inserting newlines) and drop bytes it does not
/// echo (controls, non-ASCII): both are tolerated. If the shell prints something other
/// than the echo (it rejected the line), the output starts at the beginning of that line.
/// `None` means more input is needed; `ended`: no more will come (the prompt is in).
pub fn skip_echo(text: &[u8], echo: &[u8], ended: bool) -> Option<usize> {
    let line_start = |j: usize| {
        text[..j]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |k| k + 1)
    };
    let (mut i, mut j) = (0, 0);
    loop {
        if i == echo.len() {
            return match text[j..].iter().position(|&c| c == b'\n') {
                Some(k) => Some(j + k + 1),
                None if ended => Some(j),
                None => None,
            };
        }
        let e = echo[i];
        if !(e.is_ascii_graphic() || e == b' ') {
            i += 1;
            continue;
        }
        if j == text.len() {
            return ended.then(|| line_start(j));
        }
        let c = text[j];
        if c == e {
            i += 1;
            j += 1;
        } else if c == b'\n' {
            j += 1;
        } else {
            return Some(line_start(j));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_skipped_even_when_wrapped_or_partial() {
        let c = b"help\ncmd list\n";
        assert_eq!(skip_echo(c, b"help", false), Some(5));
        // Wrapped echo of a long line (the editor inserted a newline).
        let c = b"echo aaaa\naaaa\naaaa aaaa\nvmcirc> ";
        assert_eq!(skip_echo(c, b"echo aaaaaaaa", false), Some(15));
        // Bytes the editor does not echo are tolerated.
        assert_eq!(skip_echo(b"ab\nout\n", b"a\x00\xffb", false), Some(3));
        // Echo not complete yet.
        assert_eq!(skip_echo(b"hel", b"help", false), None);
        assert_eq!(skip_echo(b"help", b"help", false), None);
        // Rejected line: the output starts at the line where it differs.
        let c = b"xxxxxxxx\nerror: line too long\n";
        assert_eq!(skip_echo(c, b"xxxxxxxxxxxxxxxxxxxx", false), Some(9));
    }

    #[test]
    fn a_window_finds_its_prompt_and_output() {
        let mut t = Transcript::new(0, b"> ");
        t.ingest(b"> ");
        let mut w = Window::command(2, 2, b"echo hi".to_vec(), "x".into());
        w.refresh(&t);
        assert_eq!((w.out_start, w.end), (None, None));
        t.ingest(b"echo hi\r\nhi\r\n> ");
        w.refresh(&t);
        assert_eq!(w.out_start, Some(10));
        assert_eq!(w.end, t.prompt_start(2));
        assert_eq!(t.get(10, w.end.unwrap()), b"hi\n");
    }
}
