//! The memory-backend contract: [`Mirror`], and the one mirror self-test.
//!
//! Owns what every backend shares: the [`Mirror`] trait (a window of `2N` bytes
//! over `N` bytes of storage), its forwarding impl for a mirror lent for a while
//! (`&mut M`), and [`self_test`], which both the Pi's section mirror
//! (`crate::mmu`) and the Linux mappings (`DoubleMap`) run on a new window. A
//! backend only supplies memory; every ring operation lives in the rings.

/// A window of `2 * capacity` bytes whose two halves are the same storage.
///
/// # Safety
///
/// An implementation promises, for as long as the value lives (and across moves
/// of it: the window must not live inside the value itself):
///
/// 1. `base()` and `capacity()` return the same values on every call;
/// 2. `capacity() > 0` and `2 * capacity()` does not overflow `isize`;
/// 3. while [`Mirror::is_mapped`] returns true, the `2 * capacity()` bytes from
///    `base()` are readable and writable, and no one else reads or writes them
///    while a ring owns the mirror;
/// 4. for every `i < capacity()`, byte `base + i` and byte `base + i + capacity()`
///    are the same storage (a write through one is seen by a read through the
///    other);
/// 5. the storage is initialised (the backends zero it at creation);
/// 6. once [`Mirror::is_mapped`] has returned false it returns false for good
///    (the window is gone, e.g. in a forked child that did not inherit it), and
///    nothing may touch the window any more.
pub unsafe trait Mirror {
    /// The start of the window.
    fn base(&self) -> *mut u8;
    /// `N`: the number of bytes of storage (the window is `2 * N` bytes).
    fn capacity(&self) -> usize;
    /// Whether the window is mapped in this process. The rings check it before
    /// every access and act as a ring of capacity 0 when it is not. Backends
    /// whose window cannot go away keep the default, `true`, which costs nothing.
    #[inline(always)]
    fn is_mapped(&self) -> bool {
        true
    }
}

// SAFETY: every promise is `M`'s, forwarded: the window does not live inside `M`
// (promise 1 of `M`), so it stays put while the borrow lives, and the `&mut`
// borrow is exclusive, so no one else uses `M`'s window while a ring holds it.
unsafe impl<M: Mirror + ?Sized> Mirror for &mut M {
    #[inline(always)]
    fn base(&self) -> *mut u8 {
        (**self).base()
    }
    #[inline(always)]
    fn capacity(&self) -> usize {
        (**self).capacity()
    }
    #[inline(always)]
    fn is_mapped(&self) -> bool {
        (**self).is_mapped()
    }
}

/// Where [`self_test`] looks at a new window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Writes the first byte of the lower copy and reads it through the upper
    /// copy, then writes the last byte of the upper copy and reads it through the
    /// lower copy; both bytes are restored. For storage nobody else uses yet.
    Ends,
    /// The same for byte `offset` of the storage (`offset < N`), which the caller
    /// owns exclusively (for example a producer's free space in a shared file).
    At(usize),
    /// Read only: `len` bytes from storage offset `offset` must read the same
    /// through both copies (for bytes nobody writes meanwhile, such as the
    /// committed data a consumer attaches to). Proves little about bytes that
    /// happen to be equal; prefer a writing probe where one is possible.
    Compare {
        /// First byte, `< N`.
        offset: usize,
        /// Bytes to compare (`offset + len <= N`).
        len: usize,
    },
    /// No access at all: the mirror rests on the mapping code's own checks (each
    /// copy mapped with `MAP_FIXED` at the address asked for, the storage long
    /// enough). For an attacher to storage others are using right now (a live
    /// shared ring), where a writing probe would corrupt their bytes and a
    /// comparing one would race with their writes. The storage's creator should
    /// have run a writing probe before anyone could attach.
    None,
}

/// A window that does not mirror: what [`self_test`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfTestFailure {
    /// Window offset written (or read first, for [`Probe::Compare`]).
    pub wrote_at: usize,
    /// Window offset read back (the same storage, through the other copy).
    pub read_at: usize,
    /// The value expected there.
    pub expected: u8,
    /// The value read.
    pub got: u8,
}

impl core::fmt::Display for SelfTestFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "mirror self-test failed: wrote {:#04x} at window offset {}, read {:#04x} at offset {}",
            self.expected, self.wrote_at, self.got, self.read_at
        )
    }
}

/// Checks that a new window mirrors: a byte written through one copy reads back
/// through the other. Writes go through `write_volatile`, so the compiler really
/// uses both addresses. Each probed byte gets two different values (its
/// complement, then another), so a non-mirroring twin cannot pass by holding
/// one of them already; the original value is restored afterwards.
///
/// Errors: the first probe that failed. A probe outside the storage (`At` or
/// `Compare` past `N`) fails too, as a read of offset `2N` that got nothing.
///
/// # Safety
///
/// `[base, base + 2 * capacity)` must be mapped readable and writable, with
/// `2 * capacity` not overflowing `isize`, and no one else may access the probed
/// bytes (through either copy) during the call.
pub unsafe fn self_test(
    base: *mut u8,
    capacity: usize,
    probe: Probe,
) -> Result<(), SelfTestFailure> {
    let n = capacity;
    let outside = SelfTestFailure {
        wrote_at: 2 * n,
        read_at: 2 * n,
        expected: 0,
        got: 0,
    };
    match probe {
        Probe::Ends => {
            // SAFETY: offsets 0, n, 2n - 1 and n - 1 are inside the window (n > 0
            // is implied by the caller's mapping of 2n bytes being usable; n == 0
            // is checked by `probe_pair`).
            unsafe {
                probe_pair(base, n, 0, n)?;
                probe_pair(base, n, (2 * n).wrapping_sub(1), n.wrapping_sub(1))
            }
        }
        Probe::At(off) if off < n => {
            // SAFETY: off and off + n are inside the window; the caller owns them.
            unsafe { probe_pair(base, n, off, off + n) }
        }
        Probe::Compare { offset, len } if offset.checked_add(len).is_some_and(|e| e <= n) => {
            for i in offset..offset + len {
                // SAFETY: i < n and i + n < 2n: inside the window.
                let (a, b) =
                    unsafe { (base.add(i).read_volatile(), base.add(i + n).read_volatile()) };
                if a != b {
                    return Err(SelfTestFailure {
                        wrote_at: i,
                        read_at: i + n,
                        expected: a,
                        got: b,
                    });
                }
            }
            Ok(())
        }
        Probe::At(_) | Probe::Compare { .. } => Err(outside),
        Probe::None => Ok(()),
    }
}

/// Writes two values at window offset `w` and reads each back at `r` (the same
/// storage through the other copy), then restores the byte.
///
/// # Safety
///
/// As for [`self_test`], with `w` and `r` inside the window.
unsafe fn probe_pair(base: *mut u8, n: usize, w: usize, r: usize) -> Result<(), SelfTestFailure> {
    if n == 0 || w >= 2 * n || r >= 2 * n {
        return Err(SelfTestFailure {
            wrote_at: w,
            read_at: r,
            expected: 0,
            got: 0,
        });
    }
    // SAFETY: w, r < 2n: inside the window, which the caller lets us use.
    unsafe {
        let (pw, pr) = (base.add(w), base.add(r));
        let old = pw.read_volatile();
        for v in [!old, old ^ 0x5A] {
            pw.write_volatile(v);
            let got = pr.read_volatile();
            if got != v {
                pw.write_volatile(old);
                return Err(SelfTestFailure {
                    wrote_at: w,
                    read_at: r,
                    expected: v,
                    got,
                });
            }
        }
        pw.write_volatile(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "window" that does not mirror (plain memory).
    #[test]
    fn plain_memory_fails_every_writing_probe() {
        let mut buf = [7u8; 16];
        let base = buf.as_mut_ptr();
        // SAFETY: 16 bytes = 2 * 8, all ours.
        let e = unsafe { self_test(base, 8, Probe::Ends) }.unwrap_err();
        assert_eq!((e.wrote_at, e.read_at, e.expected, e.got), (0, 8, !7, 7));
        assert_eq!(
            std::format!("{e}"),
            "mirror self-test failed: wrote 0xf8 at window offset 0, read 0x07 at offset 8"
        );
        // SAFETY: as above.
        let e = unsafe { self_test(base, 8, Probe::At(3)) }.unwrap_err();
        assert_eq!((e.wrote_at, e.read_at), (3, 11));
        // Every byte restored.
        assert_eq!(buf, [7u8; 16]);
        // Equal bytes pass the read-only probe (it proves little), unequal fail.
        buf[12] = 1;
        let base = buf.as_mut_ptr();
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                self_test(base, 8, Probe::Compare { offset: 0, len: 4 }),
                Ok(())
            );
            let e = self_test(base, 8, Probe::Compare { offset: 0, len: 8 }).unwrap_err();
            assert_eq!((e.wrote_at, e.read_at, e.expected, e.got), (4, 12, 7, 1));
            // Probes outside the storage fail.
            assert!(self_test(base, 8, Probe::At(8)).is_err());
            assert!(self_test(base, 8, Probe::Compare { offset: 4, len: 5 }).is_err());
            assert!(self_test(base, 0, Probe::Ends).is_err());
            // No probe: nothing is touched, nothing is proven.
            assert_eq!(self_test(base, 8, Probe::None), Ok(()));
        }
    }

    /// A fake mirror: one value in the lower copy, another wherever the probe
    /// writes twice (the twin follows a write only once: a stale alias).
    #[test]
    fn a_twin_that_follows_once_fails() {
        let mut buf = [0u8; 8];
        let base = buf.as_mut_ptr();
        // Pre-set the twin of byte 0 to the complement the probe writes first.
        buf[4] = !0;
        // SAFETY: 8 bytes = 2 * 4.
        let e = unsafe { self_test(base, 4, Probe::Ends) }.unwrap_err();
        assert_eq!((e.expected, e.got), (0x5A, 0xFF));
        assert_eq!(buf[0], 0);
    }
}
