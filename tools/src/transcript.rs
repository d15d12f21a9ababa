//! The session's transcript: the clean text of everything the target sent (terminal
//! control removed by [`crate::filter`]) and where each prompt starts in it, in
//! bounded memory.
//!
//! Positions are absolute: byte offsets into the clean text counted from the start
//! of the session, and prompt numbers counted from 1. Only the most recent `cap`
//! bytes of text (and the prompts inside them) are kept; older text is dropped and
//! [`Transcript::dropped`] says how much. Reads clamp to what is kept, so code that
//! holds an old position sees the kept part of its range, never a panic, and a
//! flooding target costs the tool at most `cap` bytes however long it sends.

use crate::filter::Filter;

// Positions are `usize` byte counts of a whole session: 64-bit hosts only.
const _: () = assert!(usize::BITS >= 64, "the host tool needs a 64-bit host");

/// Most prompt positions kept (older ones only count).
const MAX_PROMPTS: usize = 1 << 20;

/// The kept text and prompts.
pub struct Transcript {
    /// Bytes received in all (before filtering).
    received: u64,
    filter: Filter,
    /// Text from position `base` on.
    text: Vec<u8>,
    base: usize,
    /// Most bytes of text kept.
    cap: usize,
    /// The prompt looked for.
    prompt: Vec<u8>,
    /// Starts of prompts number `first_prompt + 1`, `first_prompt + 2`, ...
    prompts: Vec<usize>,
    first_prompt: usize,
    /// Where the search for the next prompt resumes.
    scan: usize,
}

impl Transcript {
    /// An empty transcript keeping at most `cap` bytes of text (at least 64 KiB).
    pub fn new(cap: usize, prompt: &[u8]) -> Transcript {
        Transcript {
            received: 0,
            filter: Filter::default(),
            text: Vec::new(),
            base: 0,
            cap: cap.max(64 * 1024),
            prompt: prompt.to_vec(),
            prompts: Vec::new(),
            first_prompt: 0,
            scan: 0,
        }
    }

    /// Adds bytes from the target and finds the prompts they complete.
    pub fn ingest(&mut self, data: &[u8]) {
        self.received += data.len() as u64;
        self.filter.feed(data, &mut self.text);
        self.scan_prompts();
        self.trim();
    }

    /// Looks for `prompt` from now on (what was scanned keeps its prompts).
    pub fn set_prompt(&mut self, prompt: &[u8]) {
        self.prompt = prompt.to_vec();
        self.scan_prompts();
    }

    /// The prompt looked for.
    pub fn prompt(&self) -> &[u8] {
        &self.prompt
    }

    fn scan_prompts(&mut self) {
        let plen = self.prompt.len();
        if plen == 0 {
            return;
        }
        let finder = memchr::memmem::Finder::new(&self.prompt);
        let mut from = self.scan.max(self.base) - self.base;
        while let Some(p) = finder.find(&self.text[from..]) {
            self.prompts.push(self.base + from + p);
            from += p + plen;
        }
        // A prompt may be cut by the end of what has arrived: rescan its start.
        let resume = from.max(self.text.len().saturating_sub(plen - 1));
        self.scan = self.base + resume;
        if self.prompts.len() > MAX_PROMPTS + MAX_PROMPTS / 4 {
            let n = self.prompts.len() - MAX_PROMPTS;
            self.prompts.drain(..n);
            self.first_prompt += n;
        }
    }

    /// Drops the oldest text beyond `cap` (in steps, so the copying stays cheap).
    fn trim(&mut self) {
        if self.text.len() <= self.cap + self.cap / 4 {
            return;
        }
        let n = self.text.len() - self.cap;
        self.text.drain(..n);
        self.base += n;
        let gone = self.prompts.partition_point(|&p| p < self.base);
        self.prompts.drain(..gone);
        self.first_prompt += gone;
    }

    /// Bytes received in all, before filtering.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Position just past the last byte of text.
    pub fn end(&self) -> usize {
        self.base + self.text.len()
    }

    /// Bytes of text dropped from the front (the first kept position).
    pub fn dropped(&self) -> usize {
        self.base
    }

    /// Most bytes of text kept.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The kept text in `a..b` (positions clamped to what is kept).
    pub fn get(&self, a: usize, b: usize) -> &[u8] {
        let end = self.end();
        let b = b.clamp(self.base, end);
        let a = a.clamp(self.base, b);
        &self.text[a - self.base..b - self.base]
    }

    /// Prompts seen so far.
    pub fn prompts(&self) -> usize {
        self.first_prompt + self.prompts.len()
    }

    /// Where prompt number `k` (from 1) starts, if it has arrived; a prompt whose
    /// text was dropped reports the first kept position.
    pub fn prompt_start(&self, k: usize) -> Option<usize> {
        if k == 0 || k > self.prompts() {
            return None;
        }
        Some(match (k - 1).checked_sub(self.first_prompt) {
            Some(i) => self.prompts[i],
            None => self.base,
        })
    }

    /// The number of the first prompt starting at or after `pos`, if one has arrived.
    pub fn prompt_at_or_after(&self, pos: usize) -> Option<usize> {
        let i = self.prompts.partition_point(|&p| p < pos);
        (i < self.prompts.len()).then_some(self.first_prompt + i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_found_across_reads_and_after_a_prompt_change() {
        let mut t = Transcript::new(0, b"vm> ");
        for piece in [&b"boot\r\nv"[..], b"m", b"> help\r\n", b"x\r\nvm> ", b"vm"] {
            t.ingest(piece);
        }
        assert_eq!(t.prompts(), 2);
        assert_eq!(t.prompt_start(1), Some(5));
        assert_eq!(t.get(5, 9), b"vm> ");
        assert_eq!(t.prompt_start(2), Some(16));
        assert_eq!(t.prompt_start(3), None);
        assert_eq!(t.prompt_at_or_after(6), Some(2));
        assert_eq!(t.prompt_at_or_after(17), None);
        t.set_prompt(b"$ ");
        t.ingest(b"> $ ");
        assert_eq!(t.prompts(), 3);
        assert_eq!(t.received(), 29);
    }

    #[test]
    fn a_flood_keeps_only_the_tail_and_says_how_much_went() {
        let cap = 64 * 1024;
        let mut t = Transcript::new(cap, b"> ");
        let chunk = b"> garbage\n".repeat(1000);
        for _ in 0..1000 {
            t.ingest(&chunk);
        }
        let total = 1000 * chunk.len();
        assert_eq!(t.end(), total);
        assert_eq!(t.received(), total as u64);
        assert!(t.text.len() <= cap + cap / 4, "{}", t.text.len());
        assert!(t.text.len() >= cap);
        assert_eq!(t.dropped(), total - t.text.len());
        // Every prompt counts; positions of dropped ones clamp to the kept text.
        assert_eq!(t.prompts(), 1_000_000);
        assert_eq!(t.prompt_start(1), Some(t.dropped()));
        assert_eq!(t.prompt_start(1_000_000), Some(total - 10));
        assert!(t.prompts.len() <= cap);
        // Reads clamp.
        assert_eq!(t.get(0, 10), b"");
        assert_eq!(t.get(total - 10, total + 100), b"> garbage\n");
        assert_eq!(t.get(total + 5, 3), b"");
    }
}
