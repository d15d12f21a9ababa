//! The ring commands: `ring new|free|list|use`, `push`, `pushx`, `fill`,
//! `push rx`, `pop`, `peek`, `dump`, `stat`, `map`, `stress`, `bench`.
//!
//! They drive the one ring implementation ([`crate::vmcirc::Ring`]) over whatever
//! mirror the [`Platform`] makes (sections mapped twice on the Pi, a memfd mapped
//! twice on Linux), and the plain [`ModularRing`] over the same store for
//! comparisons.

use core::fmt::{self, Write as _};

use super::args::{parse_hex, parse_max, parse_u64, ArgError};
use super::{hexdump, receive, CmdError, Console, LineIo, Out, Platform};
use crate::prng::SplitMix64 as Prng;
use crate::vmcirc::{ByteRing, Mirror, ModularRing, Ring};

/// Most rings at once.
pub const MAX_RINGS: usize = 8;
/// `peek` without N shows at most this many bytes.
pub const PEEK_DEFAULT_MAX: usize = 1024;
/// `dump` without LEN shows at most this many bytes.
pub const DUMP_DEFAULT_MAX: usize = 256;

/// One ring and its counters.
pub struct Slot<M: Mirror> {
    /// Its number (`ring use ID`).
    pub id: u32,
    /// The ring.
    pub ring: Ring<M>,
    /// Bytes pushed since creation.
    pub pushed: u64,
    /// Bytes popped since creation.
    pub popped: u64,
}

/// The rings a shell session owns; the platform stores it.
pub struct Rings<M: Mirror> {
    slots: heapless::Vec<Slot<M>, MAX_RINGS>,
    current: Option<u32>,
    next_id: u32,
}

impl<M: Mirror> Default for Rings<M> {
    fn default() -> Self {
        Rings {
            slots: heapless::Vec::new(),
            current: None,
            next_id: 1,
        }
    }
}

impl<M: Mirror> Rings<M> {
    /// Adds a ring over `mirror` and makes it current; gives the mirror back when
    /// the table is full.
    pub fn add(&mut self, mirror: M) -> Result<u32, M> {
        let id = self.next_id;
        let slot = Slot {
            id,
            ring: Ring::new(mirror),
            pushed: 0,
            popped: 0,
        };
        match self.slots.push(slot) {
            Ok(()) => {
                self.next_id += 1;
                self.current = Some(id);
                Ok(id)
            }
            Err(slot) => Err(slot.ring.into_mirror()),
        }
    }

    /// Removes ring `id`, returning its mirror for the platform to free.
    pub fn remove(&mut self, id: u32) -> Option<M> {
        let i = self.slots.iter().position(|s| s.id == id)?;
        let slot = self.slots.remove(i);
        if self.current == Some(id) {
            self.current = self.slots.last().map(|s| s.id);
        }
        Some(slot.ring.into_mirror())
    }

    /// The current ring.
    pub fn current(&mut self) -> Option<&mut Slot<M>> {
        let id = self.current?;
        self.slots.iter_mut().find(|s| s.id == id)
    }

    /// The current ring's id.
    pub fn current_id(&self) -> Option<u32> {
        self.current
    }

    /// Every ring.
    pub fn iter(&self) -> impl Iterator<Item = &Slot<M>> {
        self.slots.iter()
    }

    /// Selects ring `id`.
    pub fn select(&mut self, id: u32) -> bool {
        if self.slots.iter().any(|s| s.id == id) {
            self.current = Some(id);
            true
        } else {
            false
        }
    }

    /// Whether another ring fits.
    pub fn is_full(&self) -> bool {
        self.slots.is_full()
    }
}

fn need_ring<M: Mirror>(rings: &mut Rings<M>) -> Result<&mut Slot<M>, CmdError<'static>> {
    rings
        .current()
        .ok_or(CmdError::Msg("no ring: create one with 'ring new MIB'"))
}

fn report_push(
    out: &mut dyn fmt::Write,
    done: usize,
    wanted: usize,
    s_remaining: usize,
) -> fmt::Result {
    if done == wanted {
        writeln!(out, "pushed {done} bytes")
    } else {
        writeln!(
            out,
            "pushed {done} of {wanted} bytes (ring full, {s_remaining} free)"
        )
    }
}

/// Text after the first `n` words of `line` (keeps inner spacing).
fn rest_after_words(line: &str, n: usize) -> &str {
    let mut s = line.trim_start();
    for _ in 0..n {
        let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
        s = s[end..].trim_start();
    }
    s
}

/// Runs a ring command; `None` when `words[0]` is not one.
pub fn dispatch<'a, C: Console, P: Platform>(
    line: &'a str,
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Option<Result<(), CmdError<'a>>> {
    let r = match words[0] {
        "ring" => cmd_ring(words, io, p),
        "push" if words.get(1) == Some(&"rx") => cmd_push_rx(words, io, p),
        "push" => cmd_push(line, io, p),
        "pushx" => cmd_pushx(words, io, p),
        "fill" => cmd_fill(words, io, p),
        "pop" => cmd_pop(words, io, p),
        "peek" => cmd_peek(words, io, p),
        "dump" => cmd_dump(words, io, p),
        "stat" => cmd_stat(words, io, p),
        "map" => {
            let mut out = Out(io);
            super::no_more(words, 1).map_err(CmdError::from).map(|()| {
                let _ = p.write_map(&mut out);
            })
        }
        "stress" => cmd_stress(words, io, p),
        "bench" => cmd_bench(words, io, p),
        _ => return None,
    };
    Some(r)
}

fn cmd_ring<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let mut out = Out(io);
    match words.get(1).copied() {
        Some("new") => {
            let mib = parse_u64(words.get(2).ok_or(ArgError::Missing("MIB"))?)?;
            super::no_more(words, 3)?;
            if mib == 0 {
                return Err(CmdError::Msg("ring new: MIB must be at least 1"));
            }
            if p.rings().is_full() {
                return Err(CmdError::Msg("ring new: too many rings (free one first)"));
            }
            let mirror = p.create_mirror_units(mib)?;
            match p.rings().add(mirror) {
                Ok(id) => {
                    let _ = write!(out, "ring {id}: ");
                    if let Some(s) = p.rings().current() {
                        let _ = P::describe_mirror(s.ring.mirror(), &mut out);
                    }
                    let _ = out.write_char('\n');
                }
                Err(m) => {
                    p.destroy_mirror(m);
                    return Err(CmdError::Msg("ring new: too many rings"));
                }
            }
        }
        Some("free") => {
            let id = match words.get(2) {
                Some(w) => parse_max(w, "ID", u64::from(u32::MAX))? as u32,
                None => p
                    .rings()
                    .current_id()
                    .ok_or(CmdError::Msg("ring free: no ring"))?,
            };
            super::no_more(words, 3)?;
            let m = p
                .rings()
                .remove(id)
                .ok_or(CmdError::Msg("ring free: no such ring"))?;
            p.destroy_mirror(m);
            let _ = writeln!(out, "ring {id} freed");
        }
        Some("list") => {
            super::no_more(words, 2)?;
            let cur = p.rings().current_id();
            let mut any = false;
            for s in p.rings().iter() {
                any = true;
                let mark = if cur == Some(s.id) { '*' } else { ' ' };
                let _ = write!(
                    out,
                    "{mark} ring {}: capacity {}, len {}, ",
                    s.id,
                    s.ring.capacity(),
                    s.ring.len()
                );
                let _ = P::describe_mirror(s.ring.mirror(), &mut out);
                let _ = out.write_char('\n');
            }
            if !any {
                let _ = writeln!(out, "no rings");
            }
        }
        Some("use") => {
            let id = parse_max(
                words.get(2).ok_or(ArgError::Missing("ID"))?,
                "ID",
                u64::from(u32::MAX),
            )? as u32;
            super::no_more(words, 3)?;
            if !p.rings().select(id) {
                return Err(CmdError::Msg("ring use: no such ring"));
            }
            let _ = writeln!(out, "using ring {id}");
        }
        Some(other) => return Err(CmdError::Arg(ArgError::Extra(other))),
        None => {
            return Err(CmdError::Msg(
                "ring: use 'ring new MIB', 'ring free [ID]', 'ring list' or 'ring use ID'",
            ))
        }
    }
    Ok(())
}

fn cmd_push<'a, C: Console, P: Platform>(
    line: &'a str,
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let text = rest_after_words(line, 1).as_bytes();
    let s = need_ring(p.rings())?;
    let n = s.ring.push(text);
    s.pushed += n as u64;
    let _ = report_push(&mut Out(io), n, text.len(), s.ring.remaining());
    Ok(())
}

fn cmd_pushx<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    if words.len() < 2 {
        return Err(ArgError::Missing("HEX").into());
    }
    // Decode everything first: a bad digit anywhere changes nothing.
    let mut buf = [0u8; super::LINE_MAX / 2];
    let mut len = 0;
    for w in &words[1..] {
        len += parse_hex(w, &mut buf[len..])?;
    }
    let s = need_ring(p.rings())?;
    let n = s.ring.push(&buf[..len]);
    s.pushed += n as u64;
    let _ = report_push(&mut Out(io), n, len, s.ring.remaining());
    Ok(())
}

fn cmd_fill<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let n = parse_max(words.get(1).ok_or(ArgError::Missing("N"))?, "N", 1 << 31)? as usize;
    enum Pattern {
        Byte(u8),
        Seq,
        Rand(Prng),
    }
    let mut pat = match words.get(2).copied() {
        None => Pattern::Byte(0),
        Some("byte") => {
            Pattern::Byte(parse_max(words.get(3).ok_or(ArgError::Missing("B"))?, "B", 255)? as u8)
        }
        Some("seq") => Pattern::Seq,
        Some("rand") => Pattern::Rand(Prng::new(parse_u64(
            words.get(3).ok_or(ArgError::Missing("SEED"))?,
        )?)),
        Some(other) => return Err(ArgError::Extra(other).into()),
    };
    let max_words = match pat {
        Pattern::Seq => 3,
        _ => 4,
    };
    super::no_more(words, if words.len() <= 2 { 2 } else { max_words })?;
    let s = need_ring(p.rings())?;
    let mut done = 0usize;
    // Straight into the ring's free space: one contiguous slice in the mirror.
    let w = s.ring.writable();
    let take = n.min(w.len());
    match &mut pat {
        Pattern::Byte(b) => w[..take].fill(*b),
        Pattern::Seq => {
            let base = s.pushed;
            for (i, x) in w[..take].iter_mut().enumerate() {
                *x = (base + i as u64) as u8;
            }
        }
        Pattern::Rand(r) => r.fill(&mut w[..take]),
    }
    if s.ring.commit(take).is_ok() {
        done = take;
    }
    s.pushed += done as u64;
    let _ = report_push(&mut Out(io), done, n, s.ring.remaining());
    Ok(())
}

fn cmd_push_rx<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let len = parse_max(
        words.get(2).ok_or(ArgError::Missing("LEN"))?,
        "LEN",
        super::RX_MAX,
    )?;
    super::no_more(words, 3)?;
    let s = need_ring(p.rings())?;
    let _ = writeln!(Out(io), "rx: waiting for {len} bytes");
    let _ = embedded_io::Write::flush(io);
    let mut digest = crate::crc32::CRC32.digest();
    let mut stored = 0usize;
    let result = receive(io, len, |chunk| {
        digest.update(chunk);
        // Raw bytes go straight into the ring's contiguous free space.
        let w = s.ring.writable();
        let n = chunk.len().min(w.len());
        w[..n].copy_from_slice(&chunk[..n]);
        if s.ring.commit(n).is_ok() {
            stored += n;
        }
    });
    s.pushed += stored as u64;
    result?;
    let mut out = Out(io);
    let _ = report_push(&mut out, stored, len as usize, s.ring.remaining());
    let _ = writeln!(out, "rx {len} crc32={:08x}", digest.finalize());
    Ok(())
}

fn cmd_pop<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let n = parse_u64(words.get(1).ok_or(ArgError::Missing("N"))?)?;
    super::no_more(words, 2)?;
    let s = need_ring(p.rings())?;
    let done = s.ring.pop(usize::try_from(n).unwrap_or(usize::MAX));
    s.popped += done as u64;
    let _ = writeln!(Out(io), "popped {done} bytes");
    Ok(())
}

fn cmd_peek<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let n = match words.get(1) {
        Some(w) => Some(parse_u64(w)?),
        None => None,
    };
    super::no_more(words, 2)?;
    let s = need_ring(p.rings())?;
    let data = s.ring.peek();
    let shown = match n {
        Some(n) => data.len().min(usize::try_from(n).unwrap_or(usize::MAX)),
        None => data.len().min(PEEK_DEFAULT_MAX),
    };
    let mut out = Out(io);
    let _ = crate::escape::write_quoted(&mut out, &data[..shown]);
    if shown < data.len() {
        let _ = write!(out, " ({} more)", data.len() - shown);
    }
    let _ = out.write_char('\n');
    Ok(())
}

fn cmd_dump<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let off = match words.get(1) {
        Some(w) => parse_u64(w)?,
        None => 0,
    };
    let len = match words.get(2) {
        Some(w) => Some(parse_u64(w)?),
        None => None,
    };
    super::no_more(words, 3)?;
    let s = need_ring(p.rings())?;
    let data = s.ring.peek();
    let off = usize::try_from(off).unwrap_or(usize::MAX);
    if off > data.len() {
        return Err(CmdError::Msg("dump: OFF is past the buffered data"));
    }
    let avail = data.len() - off;
    let len = match len {
        Some(l) => avail.min(usize::try_from(l).unwrap_or(usize::MAX)),
        None => avail.min(DUMP_DEFAULT_MAX),
    };
    let base = s.ring.mirror().base() as usize;
    let boundary = base + s.ring.capacity();
    let start = base + s.ring.read_offset() + off;
    let mut out = Out(io);
    if len == 0 {
        let _ = writeln!(out, "(empty)");
        return Ok(());
    }
    // One run of rows over the contiguous virtual range; the row that holds the
    // mirror boundary (where the second copy begins) is marked.
    let mut i = 0;
    while i < len {
        let n = (len - i).min(hexdump::ROW);
        let va = start + i;
        let mut mark: heapless::String<48> = heapless::String::new();
        if va <= boundary && boundary < va + n {
            let _ = write!(mark, " <- mirror boundary at {boundary:#010x}");
        }
        let _ = hexdump::write_row(&mut out, va as u64, &data[off + i..off + i + n], &mark);
        i += n;
    }
    Ok(())
}

fn cmd_stat<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    super::no_more(words, 1)?;
    let s = need_ring(p.rings())?;
    let (id, cap, len, rem, ro, pushed, popped) = (
        s.id,
        s.ring.capacity(),
        s.ring.len(),
        s.ring.remaining(),
        s.ring.read_offset(),
        s.pushed,
        s.popped,
    );
    let base = s.ring.mirror().base() as usize;
    let mut out = Out(io);
    let _ = writeln!(out, "ring {id}: capacity {cap}, len {len}, remaining {rem}");
    let _ = writeln!(
        out,
        "read {:#010x} (offset {ro}), write {:#010x} (offset {})",
        base + ro,
        base + ro + len,
        ro + len
    );
    let _ = out.write_str("memory: ");
    let _ = P::describe_mirror(s.ring.mirror(), &mut out);
    let _ = writeln!(out, "\ntotal pushed {pushed}, popped {popped}");
    Ok(())
}

/// Results of one stress pass.
struct StressResult {
    bytes: u64,
    mismatches: u64,
    us: u64,
}

/// Push random-sized chunks of a PRNG stream, pop random-sized chunks and check
/// them against the same stream, until `total` bytes went through.
fn stress_pass<R: ByteRing>(
    ring: &mut R,
    total: u64,
    max_chunk: u64,
    seed: u64,
    clock: &mut dyn FnMut() -> u64,
) -> StressResult {
    ring.clear();
    let mut sizes = Prng::new(seed ^ 0x5eed);
    let mut gen = Prng::new(seed);
    let mut check = Prng::new(seed);
    let (mut pushed, mut popped, mut bad) = (0u64, 0u64, 0u64);
    let t0 = clock();
    while popped < total {
        let want = sizes.below_inclusive(max_chunk).min(total - pushed) as usize;
        let mut left = want;
        while left > 0 {
            let w = ring.writable();
            if w.is_empty() {
                break;
            }
            let n = left.min(w.len());
            gen.fill(&mut w[..n]);
            let _ = ring.commit(n);
            left -= n;
            pushed += n as u64;
        }
        let mut take = sizes.below_inclusive(max_chunk) as usize;
        if pushed == total {
            take = usize::MAX;
        }
        let (a, b) = ring.readable_parts();
        let na = take.min(a.len());
        let nb = (take - na).min(b.len());
        bad += check.verify(&a[..na]);
        bad += check.verify(&b[..nb]);
        let _ = ring.consume(na + nb);
        popped += (na + nb) as u64;
    }
    StressResult {
        bytes: popped,
        mismatches: bad,
        us: clock().saturating_sub(t0).max(1),
    }
}

/// MB/s with two decimals, as (whole, hundredths).
pub(crate) fn mbps(bytes: u64, us: u64) -> (u64, u64) {
    // MB/s with two decimals, as (integer, hundredths).
    let centi = bytes * 100 / us.max(1);
    (centi / 100, centi % 100)
}

/// How many times faster `a_us` is than `b_us`, two decimals.
pub(crate) fn ratio(a_us: u64, b_us: u64) -> (u64, u64) {
    // b/a speed ratio of a over b, two decimals.
    let c = b_us * 100 / a_us.max(1);
    (c / 100, c % 100)
}

fn cmd_stress<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let total = parse_max(
        words.get(1).ok_or(ArgError::Missing("BYTES"))?,
        "BYTES",
        1 << 40,
    )?;
    let max_chunk = match words.get(2) {
        Some(w) => parse_max(w, "MAXCHUNK", 1 << 30)?,
        None => 4096,
    };
    if max_chunk == 0 {
        return Err(CmdError::Msg("stress: MAXCHUNK must be at least 1"));
    }
    let seed = match words.get(3) {
        Some(w) => parse_u64(w)?,
        None => 1,
    };
    super::no_more(words, 4)?;
    let clock = p.clock_fn();
    let mut now = || clock();
    let t_mirror;
    let t_mod;
    {
        let s = need_ring(p.rings())?;
        let r = stress_pass(&mut s.ring, total, max_chunk, seed, &mut now);
        s.ring.clear();
        let (i, f) = mbps(r.bytes, r.us);
        let _ = writeln!(
            Out(io),
            "mirrored: {} bytes in {} us, {i}.{f:02} MB/s, {} mismatches",
            r.bytes,
            r.us,
            r.mismatches
        );
        t_mirror = r;
        // The modular ring over the first copy of the same store.
        let mut modular = ModularRing::new(s.ring.store_mut())
            .map_err(|_| CmdError::Msg("stress: empty ring"))?;
        let r = stress_pass(&mut modular, total, max_chunk, seed, &mut now);
        let (i, f) = mbps(r.bytes, r.us);
        let _ = writeln!(
            Out(io),
            "modular: {} bytes in {} us, {i}.{f:02} MB/s, {} mismatches",
            r.bytes,
            r.us,
            r.mismatches
        );
        t_mod = r;
        s.ring.clear();
    }
    let (i, f) = ratio(t_mirror.us, t_mod.us);
    let _ = writeln!(Out(io), "ratio mirrored/modular: {i}.{f:02}x");
    let total_bad = t_mirror.mismatches + t_mod.mismatches;
    if total_bad != 0 {
        return Err(CmdError::Msg("stress: data mismatches (see above)"));
    }
    Ok(())
}

fn bench_pass<R: ByteRing>(
    ring: &mut R,
    chunk: usize,
    total: usize,
    src: &[u8],
    dst: &mut [u8],
    clock: &mut dyn FnMut() -> u64,
) -> u64 {
    ring.clear();
    let t0 = clock();
    let mut moved = 0;
    while moved < total {
        let n = ring.push(&src[..chunk]);
        let m = ring.pop_into(&mut dst[..chunk]);
        moved += n.min(m);
    }
    clock().saturating_sub(t0).max(1)
}

fn cmd_bench<'a, C: Console, P: Platform>(
    words: &[&'a str],
    io: &mut LineIo<'_, C>,
    p: &mut P,
) -> Result<(), CmdError<'a>> {
    let total = match words.get(1) {
        Some(w) => parse_max(w, "BYTES", 1 << 30)? as usize,
        None => 1 << 20,
    };
    super::no_more(words, 2)?;
    let clock = p.clock_fn();
    let mut now = || clock();
    let s = need_ring(p.rings())?;
    let mut src = [0u8; 4096];
    let mut dst = [0u8; 4096];
    Prng::new(7).fill(&mut src);
    let _ = writeln!(
        Out(io),
        "push+pop of {total} bytes per row; MB/s from the system timer"
    );
    let _ = writeln!(
        Out(io),
        "{:>6} {:>12} {:>12} {:>8}",
        "chunk",
        "mirrored",
        "modular",
        "ratio"
    );
    for chunk in [1usize, 16, 64, 512, 4096] {
        let chunk = chunk.min(s.ring.capacity());
        // Each transfer drains the ring, so the next one starts over at the start.
        let tm = bench_pass(&mut s.ring, chunk, total, &src, &mut dst, &mut now);
        let mut modular =
            ModularRing::new(s.ring.store_mut()).map_err(|_| CmdError::Msg("bench: empty ring"))?;
        let tr = bench_pass(&mut modular, chunk, total, &src, &mut dst, &mut now);
        let (mi, mf) = mbps(total as u64, tm);
        let (ri, rf) = mbps(total as u64, tr);
        let (qi, qf) = ratio(tm, tr);
        let mut a: heapless::String<16> = heapless::String::new();
        let mut b: heapless::String<16> = heapless::String::new();
        let mut c: heapless::String<16> = heapless::String::new();
        let _ = write!(a, "{mi}.{mf:02}");
        let _ = write!(b, "{ri}.{rf:02}");
        let _ = write!(c, "{qi}.{qf:02}x");
        let _ = writeln!(Out(io), "{chunk:>6} {a:>12} {b:>12} {c:>8}");
    }
    s.ring.clear();
    Ok(())
}
