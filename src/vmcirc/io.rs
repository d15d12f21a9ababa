//! `std::io` for the rings: `Read`/`Write` (and `BufRead` for the mirrored ring,
//! whose buffered bytes are one slice).
//!
//! Owns only adapters: every operation is a [`ByteRing`] operation (the
//! single-syscall `fill_from`/`drain_to` are its default methods); no unsafe code
//! here.

use std::io::{self, BufRead, Read, Write};

use super::{ByteRing, Mirror, ModularRing, Ring};

/// `Read` moves bytes out (`pop_into`); `Write` stores what fits and returns
/// `Ok(0)` when full (so `write_all` reports `WriteZero`).
macro_rules! read_write {
    ([$($generics:tt)*] $ring:ty) => {
        impl<$($generics)*> Read for $ring {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                Ok(self.pop_into(buf))
            }
        }

        impl<$($generics)*> Write for $ring {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(self.push(buf))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}

read_write!([M: Mirror] Ring<M>);
read_write!([S: AsRef<[u8]> + AsMut<[u8]>] ModularRing<S>);

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

#[cfg(test)]
mod tests {
    use super::super::MirrorRing;
    use super::*;

    #[test]
    fn io_roundtrip() {
        let mut r = MirrorRing::with_capacity(4096).unwrap();
        let n = r.capacity();
        r.push(&std::vec![1u8; n - 3]);
        r.pop(n - 4);
        let data: std::vec::Vec<u8> = (0..100u8).collect();
        let mut src = &data[..];
        assert_eq!(r.fill_from(&mut src).unwrap(), 100);
        assert_eq!(r.fill_buf().unwrap()[0], 1);
        assert_eq!(&r.fill_buf().unwrap()[1..], &data[..]);
        BufRead::consume(&mut r, 1000);
        assert!(r.is_empty());
        assert_eq!(r.write(&std::vec![0u8; n + 5]).unwrap(), n);
        assert_eq!(r.write(b"x").unwrap(), 0);
        assert_eq!(r.fill_from(&mut &b"abc"[..]).unwrap(), 0);
        let mut sink = std::vec::Vec::new();
        assert_eq!(r.drain_to(&mut sink).unwrap(), n);
        assert_eq!(r.drain_to(&mut sink).unwrap(), 0);
        // A modular ring fills and drains its first contiguous part per call.
        let mut m = ModularRing::new([0u8; 8]).unwrap();
        m.push(b"abcdef");
        m.pop(5);
        assert_eq!(m.fill_from(&mut &b"0123456789"[..]).unwrap(), 2);
        assert_eq!(m.fill_from(&mut &b"0123456789"[..]).unwrap(), 5);
        let mut out = std::vec::Vec::new();
        assert_eq!(m.drain_to(&mut out).unwrap(), 3);
        assert_eq!(m.drain_to(&mut out).unwrap(), 5);
        assert_eq!(out, b"f0101234");
        let mut s = std::string::String::new();
        assert_eq!(m.read_to_string(&mut s).unwrap(), 0);
    }
}
