//! Memory-mapped I/O access: the [`Bus`] trait every driver talks through, the real
//! volatile implementation for the board ([`Mmio`]), and a recording fake for host
//! tests ([`RecordingBus`], with `std` or in tests).

/// A 32-bit register bus. Addresses are ARM physical addresses (identity mapped).
pub trait Bus {
    /// Reads the 32-bit register at `addr`.
    fn read(&mut self, addr: u32) -> u32;
    /// Writes `value` to the 32-bit register at `addr`.
    fn write(&mut self, addr: u32, value: u32);
    /// The barrier the BCM2835 needs between accesses to two different peripherals
    /// (BCM2835 ARM Peripherals §1.3: the AXI bus may return read data out of order
    /// across peripherals, so software puts a memory barrier before the first write
    /// to a peripheral and after the last read from one). See the board module docs
    /// for where the drivers put it. A no-op for buses without that hazard.
    fn barrier(&mut self) {}
    /// Read-modify-write helper.
    fn modify(&mut self, addr: u32, clear: u32, set: u32) {
        let v = self.read(addr);
        self.write(addr, (v & !clear) | set);
    }
}

/// The real bus: volatile accesses to the identity-mapped peripheral window.
///
/// Constructing one is `unsafe` because it allows arbitrary device register writes
/// (and through DMA-capable devices such as the mailbox, writes to RAM).
pub struct Mmio {
    _private: (),
}

impl Mmio {
    /// # Safety
    /// Only on the BCM2835 with the peripheral window identity mapped as device
    /// memory (or the MMU off); the caller must not create conflicting register
    /// users (the kernel makes its drivers once, in `src/kernel/devices.rs`).
    pub const unsafe fn new() -> Self {
        Mmio { _private: () }
    }
}

impl Bus for Mmio {
    #[inline]
    fn read(&mut self, addr: u32) -> u32 {
        // SAFETY: `Mmio::new`'s contract: addr is a BCM2835 register in the device
        // mapped peripheral window; volatile keeps the access as written.
        unsafe { core::ptr::read_volatile(addr as usize as *const u32) }
    }

    #[inline]
    fn write(&mut self, addr: u32, value: u32) {
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile(addr as usize as *mut u32, value) }
    }

    /// The ARMv6 DMB (`mcr p15, 0, r, c7, c10, 5`), as Circle's `PeripheralEntry` /
    /// `PeripheralExit` on the BCM2835 and Linux's ARMv6 barriers use.
    #[inline]
    fn barrier(&mut self) {
        crate::mmu::cp15::dmb();
    }
}

/// One access recorded by [`RecordingBus`].
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A register read and the value returned.
    Read(u32, u32),
    /// A register write.
    Write(u32, u32),
    /// A peripheral barrier ([`Bus::barrier`]).
    Barrier,
}

#[cfg(any(test, feature = "std"))]
#[derive(Default, Debug)]
struct Registers {
    log: std::vec::Vec<Access>,
    regs: std::collections::BTreeMap<u32, u32>,
    /// Values a register returns on its next reads, before falling back to `regs`.
    scripts: std::collections::BTreeMap<u32, std::collections::VecDeque<u32>>,
    /// Registers that advance by a step after every read (a free-running counter).
    counters: std::collections::BTreeMap<u32, u32>,
}

/// A fake register file that logs every access, for host tests of init sequences.
/// Reads return the last value written (or a preset), so read-modify-write works;
/// a register can also answer from a script (a status register that changes) or
/// count up on every read (the system timer). Clones share one register file and one
/// log, so several drivers on one bus record in one order, as on the board.
#[cfg(any(test, feature = "std"))]
#[derive(Default, Debug, Clone)]
pub struct RecordingBus {
    inner: std::rc::Rc<core::cell::RefCell<Registers>>,
}

#[cfg(any(test, feature = "std"))]
impl RecordingBus {
    /// Presets the value a register reads as.
    pub fn preset(&mut self, addr: u32, value: u32) {
        self.inner.borrow_mut().regs.insert(addr, value);
    }

    /// The next reads of `addr` return `values` in order, then its preset or last
    /// written value.
    pub fn script(&mut self, addr: u32, values: &[u32]) {
        self.inner
            .borrow_mut()
            .scripts
            .entry(addr)
            .or_default()
            .extend(values.iter().copied());
    }

    /// `addr` is a counter starting at `start` that advances by `step` after each read.
    pub fn counter(&mut self, addr: u32, start: u32, step: u32) {
        let mut r = self.inner.borrow_mut();
        r.regs.insert(addr, start);
        r.counters.insert(addr, step);
    }

    /// Every access so far, in order.
    pub fn log(&self) -> std::vec::Vec<Access> {
        self.inner.borrow().log.clone()
    }

    /// Forgets the accesses recorded so far (the registers keep their values).
    pub fn clear_log(&mut self) {
        self.inner.borrow_mut().log.clear();
    }

    /// The writes only, in order.
    pub fn writes(&self) -> std::vec::Vec<(u32, u32)> {
        self.inner
            .borrow()
            .log
            .iter()
            .filter_map(|a| match *a {
                Access::Write(r, v) => Some((r, v)),
                _ => None,
            })
            .collect()
    }

    /// The last value written to `addr`, if any.
    pub fn last_write(&self, addr: u32) -> Option<u32> {
        self.writes()
            .iter()
            .rev()
            .find(|(r, _)| *r == addr)
            .map(|(_, v)| *v)
    }
}

#[cfg(any(test, feature = "std"))]
impl Bus for RecordingBus {
    fn read(&mut self, addr: u32) -> u32 {
        let mut r = self.inner.borrow_mut();
        let scripted = r.scripts.get_mut(&addr).and_then(|q| q.pop_front());
        let v = match scripted {
            Some(v) => v,
            None => r.regs.get(&addr).copied().unwrap_or(0),
        };
        if let Some(&step) = r.counters.get(&addr) {
            r.regs.insert(addr, v.wrapping_add(step));
        }
        r.log.push(Access::Read(addr, v));
        v
    }
    fn write(&mut self, addr: u32, value: u32) {
        let mut r = self.inner.borrow_mut();
        r.regs.insert(addr, value);
        r.log.push(Access::Write(addr, value));
    }
    fn barrier(&mut self) {
        self.inner.borrow_mut().log.push(Access::Barrier);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_bus_scripts_counters_and_shared_log() {
        let mut a = RecordingBus::default();
        let mut b = a.clone();
        a.script(0x10, &[1, 2]);
        a.preset(0x10, 9);
        a.counter(0x20, 100, 3);
        assert_eq!([a.read(0x10), a.read(0x10), a.read(0x10)], [1, 2, 9]);
        assert_eq!([b.read(0x20), a.read(0x20)], [100, 103]);
        b.write(0x30, 5);
        b.barrier();
        assert_eq!(a.read(0x30), 5);
        assert_eq!(a.log().len(), 8);
        assert_eq!(a.log()[6], Access::Barrier);
        assert_eq!(a.last_write(0x30), Some(5));
    }
}
