//! `std::io` for the rings: `Read`/`Write`/`BufRead` impls and single-syscall
//! `fill_from`/`drain_to` through the contiguous free/buffered space.
//!
//! Owns only adapters: every operation is a ring operation from `mirrored.rs` or
//! `modular.rs`; no unsafe code here.

use std::io::{self, BufRead, Read, Write};

use super::{Mirror, ModularRing, Ring};

impl<M: Mirror> Ring<M> {
    /// One `read` call from `src` straight into the free space; returns the byte
    /// count (0 at end of input, or when the ring is full: check
    /// [`Ring::is_full`]). Retries on `Interrupted`.
    ///
    /// ```
    /// use vmcirc::vmcirc::MirrorRing;
    /// let mut ring = MirrorRing::with_capacity(4096).unwrap();
    /// let mut src: &[u8] = b"abc";
    /// assert_eq!(ring.fill_from(&mut src).unwrap(), 3);
    /// let mut out = Vec::new();
    /// assert_eq!(ring.drain_to(&mut out).unwrap(), 3);
    /// assert_eq!(out, b"abc");
    /// ```
    pub fn fill_from<R: Read + ?Sized>(&mut self, src: &mut R) -> io::Result<usize> {
        let buf = self.writable();
        if buf.is_empty() {
            return Ok(0);
        }
        let n = loop {
            match src.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.commit(n)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }

    /// One `write` call from the buffered bytes into `dst`; returns the count
    /// written and consumed (0 when the ring is empty). A writer that accepts
    /// nothing is a `WriteZero` error. Retries on `Interrupted`.
    pub fn drain_to<W: Write + ?Sized>(&mut self, dst: &mut W) -> io::Result<usize> {
        let buf = self.readable();
        if buf.is_empty() {
            return Ok(0);
        }
        let n = loop {
            match dst.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.consume(n)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }
}

impl<M: Mirror> Read for Ring<M> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.pop_into(buf))
    }
}

/// Writes what fits; `Ok(0)` when full (so `write_all` reports `WriteZero`).
impl<M: Mirror> Write for Ring<M> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.push(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `fill_buf` is all buffered bytes as one slice; `consume` is clamped to `len`.
impl<M: Mirror> BufRead for Ring<M> {
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(self.readable())
    }
    #[inline]
    fn consume(&mut self, amt: usize) {
        self.pop(amt);
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> Read for ModularRing<S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.pop_into(buf))
    }
}

/// Writes what fits; `Ok(0)` when full.
impl<S: AsRef<[u8]> + AsMut<[u8]>> Write for ModularRing<S> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.push(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::MirrorRing;
    use super::*;

    #[test]
    fn io_roundtrip() {
        let mut r = MirrorRing::with_capacity(4096).unwrap();
        let n = r.capacity();
        r.push(&std::vec![1u8; n - 3]);
        r.pop(n - 3);
        let data: std::vec::Vec<u8> = (0..100u8).collect();
        let mut src = &data[..];
        assert_eq!(r.fill_from(&mut src).unwrap(), 100);
        assert_eq!(r.fill_buf().unwrap(), &data[..]);
        BufRead::consume(&mut r, 1000);
        assert!(r.is_empty());
        assert_eq!(r.write(&std::vec![0u8; n + 5]).unwrap(), n);
        assert_eq!(r.write(b"x").unwrap(), 0);
        assert_eq!(r.fill_from(&mut &b"abc"[..]).unwrap(), 0);
        let mut sink = std::vec::Vec::new();
        assert_eq!(r.drain_to(&mut sink).unwrap(), n);
        assert_eq!(r.drain_to(&mut sink).unwrap(), 0);
    }
}
