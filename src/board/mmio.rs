//! Memory-mapped I/O access: the [`Bus`] trait every driver talks through, the real
//! volatile implementation for the board ([`Mmio`]), and a recording fake for host
//! tests ([`RecordingBus`], with `std` or in tests).

/// A 32-bit register bus. Addresses are ARM physical addresses (identity mapped).
pub trait Bus {
    /// Reads the 32-bit register at `addr`.
    fn read(&mut self, addr: u32) -> u32;
    /// Writes `value` to the 32-bit register at `addr`.
    fn write(&mut self, addr: u32, value: u32);
    /// Busy-waits for at least `cycles` CPU cycles (the BCM2835 GPIO pull-up/down
    /// sequence needs 150 cycles of set-up and hold time).
    fn delay_cycles(&mut self, cycles: u32);
    /// Read-modify-write helper.
    fn modify(&mut self, addr: u32, clear: u32, set: u32) {
        let v = self.read(addr);
        self.write(addr, (v & !clear) | set);
    }
}

/// The real bus: volatile accesses to the identity-mapped peripheral window.
///
/// Constructing one is `unsafe` because it allows arbitrary device register writes.
pub struct Mmio {
    _private: (),
}

impl Mmio {
    /// # Safety
    /// Only on the BCM2835 with the peripheral window identity mapped as device
    /// memory (or the MMU off); the caller must not create conflicting register
    /// users (the kernel is single core and drives each block from one place).
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

    #[inline]
    fn delay_cycles(&mut self, cycles: u32) {
        for _ in 0..cycles {
            // SAFETY: `nop` has no effect beyond taking a cycle; it stops the loop
            // being optimised away.
            #[cfg(target_arch = "arm")]
            unsafe {
                core::arch::asm!("nop", options(nomem, nostack, preserves_flags))
            };
            #[cfg(not(target_arch = "arm"))]
            core::hint::spin_loop();
        }
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
    /// A delay of so many cycles.
    Delay(u32),
}

/// A fake register file that logs every access, for host tests of init sequences.
/// Reads return the last value written (or a preset), so read-modify-write works.
#[cfg(any(test, feature = "std"))]
#[derive(Default, Debug)]
pub struct RecordingBus {
    /// Every access, in order.
    pub log: std::vec::Vec<Access>,
    regs: std::collections::BTreeMap<u32, u32>,
}

#[cfg(any(test, feature = "std"))]
impl RecordingBus {
    /// Presets the value a register reads as.
    pub fn preset(&mut self, addr: u32, value: u32) {
        self.regs.insert(addr, value);
    }
    /// The writes only, in order.
    pub fn writes(&self) -> std::vec::Vec<(u32, u32)> {
        self.log
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
        let v = self.regs.get(&addr).copied().unwrap_or(0);
        self.log.push(Access::Read(addr, v));
        v
    }
    fn write(&mut self, addr: u32, value: u32) {
        self.regs.insert(addr, value);
        self.log.push(Access::Write(addr, value));
    }
    fn delay_cycles(&mut self, cycles: u32) {
        self.log.push(Access::Delay(cycles));
    }
}
