//! The shell's [`Platform`] on Linux/Unix: rings are memfd mirrors
//! ([`MemfdMirror`]), `x` reads inside the rings' windows (the only memory the
//! shell owns), `info` describes the host. The host shell (`vmcirc shell`) and the
//! shell's tests run on it, so the same commands and the same scripts exercise the
//! mirror on both worlds.

use core::fmt;
use std::time::Instant;

use super::ring::Rings;
use super::{Platform, PlatformError};
use crate::vmcirc::{ByteRing, MemfdMirror, Mirror};

/// The host platform.
pub struct HostPlatform {
    unit: usize,
    budget_units: u64,
    rings: Rings<MemfdMirror>,
}

fn clock() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

impl HostPlatform {
    /// `ring new N` makes rings of N * `unit` bytes (the board's unit is 1 MiB),
    /// with at most `budget_units` units in use at once.
    pub fn new(unit: usize, budget_units: u64) -> Self {
        clock();
        HostPlatform {
            unit: unit.max(1),
            budget_units,
            rings: Rings::default(),
        }
    }

    /// Adds a first ring of `bytes` (rounded up to the page size) and makes it
    /// current (`vmcirc shell --capacity BYTES`).
    pub fn add_ring(&mut self, bytes: usize) -> Result<u32, PlatformError> {
        let m =
            MemfdMirror::new(bytes).map_err(|e| PlatformError::text(format_args!("ring: {e}")))?;
        self.rings
            .add(m)
            .map_err(|_| PlatformError::from("ring: too many rings"))
    }

    /// The window of ring `id`: (base address, capacity).
    pub fn window(&mut self, id: u32) -> Option<(usize, usize)> {
        self.rings
            .iter()
            .find(|s| s.id == id)
            .map(|s| (s.ring.mirror().base() as usize, s.ring.capacity()))
    }
}

impl Platform for HostPlatform {
    fn info(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            out,
            "host: {} {}, page size {} bytes",
            std::env::consts::OS,
            std::env::consts::ARCH,
            rustix::param::page_size()
        )?;
        writeln!(
            out,
            "rings: memfd mirrors; 'ring new N' makes N x {} bytes",
            self.unit
        )
    }

    fn uptime_us(&mut self) -> u64 {
        clock()
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), PlatformError> {
        let addr =
            usize::try_from(addr).map_err(|_| PlatformError::from("x: address out of range"))?;
        for s in self.rings.iter() {
            let window = s.ring.window();
            let off = addr.wrapping_sub(window.as_ptr() as usize);
            if let Some(src) = off.checked_add(buf.len()).and_then(|e| window.get(off..e)) {
                buf.copy_from_slice(src);
                return Ok(());
            }
        }
        Err(PlatformError::from(
            "x: on the host only the rings' windows are readable",
        ))
    }

    fn reboot(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            out,
            "error: reboot: not on the host (leave with Ctrl-D on an empty line)"
        )
    }

    fn trigger_fault(&mut self, _kind: super::FaultRequest) -> Result<(), PlatformError> {
        Err(PlatformError::from(
            "fault: only on the board (the host has no fault handler to show)",
        ))
    }

    type Mirror = MemfdMirror;

    fn rings(&mut self) -> &mut Rings<MemfdMirror> {
        &mut self.rings
    }

    fn create_mirror_units(&mut self, units: u64) -> Result<MemfdMirror, PlatformError> {
        if units > self.budget_units {
            return Err(PlatformError::text(format_args!(
                "ring new: not enough memory: {units} requested, {} free",
                self.budget_units
            )));
        }
        let bytes = (units as usize)
            .checked_mul(self.unit)
            .ok_or(PlatformError::from("ring new: size overflows"))?;
        let m = MemfdMirror::new(bytes)
            .map_err(|e| PlatformError::text(format_args!("ring new: {e}")))?;
        self.budget_units -= units;
        Ok(m)
    }

    fn destroy_mirror(&mut self, mirror: MemfdMirror) {
        self.budget_units += (mirror.capacity() / self.unit) as u64;
    }

    fn describe_mirror(m: &MemfdMirror, out: &mut dyn fmt::Write) -> fmt::Result {
        let base = m.base() as usize;
        write!(
            out,
            "memfd store of {} bytes, window {:#x}..{:#x} (second copy at {:#x})",
            m.capacity(),
            base,
            base + 2 * m.capacity(),
            base + m.capacity()
        )
    }

    fn write_map(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        let mut any = false;
        for s in self.rings.iter() {
            let base = s.ring.mirror().base() as usize;
            let n = s.ring.capacity();
            writeln!(
                out,
                "{:#x}-{:#x} -> memfd offset 0 ({n} bytes, shared, rw)",
                base,
                base + n - 1
            )?;
            writeln!(
                out,
                "{:#x}-{:#x} -> memfd offset 0 ({n} bytes, shared, rw)",
                base + n,
                base + 2 * n - 1
            )?;
            any = true;
        }
        if !any {
            writeln!(out, "no rings mapped")?;
        }
        Ok(())
    }

    fn clock_fn(&self) -> fn() -> u64 {
        clock
    }
}
