//! vmcirc: a virtual-memory mirrored ring buffer on two worlds.
//!
//! The crate is `no_std` at its core so the same code runs in the bare-metal
//! Raspberry Pi kernel (`src/main.rs`, target `armv6-none-eabi`) and on Linux
//! (feature `std`). The split follows the usual generic / CPU / board layering:
//!
//! - [`vmcirc`]: the one ring implementation (mirrored and modular, one
//!   [`ByteRing`] interface), generic over a [`Mirror`] that a backend supplies:
//!   the Pi maps 1 MiB sections twice ([`mmu`]), Linux maps a memfd twice
//!   ([`MemfdMirror`], feature `std`). Its public types are re-exported here:
//!   `vmcirc::MirrorRing` is `vmcirc::vmcirc::MirrorRing`.
//! - [`heatshrink`]: an LZSS decoder/encoder whose window is a ring.
//! - [`shell`]: the line-oriented command shell, generic over `embedded-io` and a
//!   [`shell::Platform`], so the kernel and host tests run the same code.
//! - [`mmu`]: ARMv6 short-descriptor translation tables (data model, host-testable)
//!   plus the cp15 operations behind `cfg(target_arch = "arm")`.
//! - [`uart`]: the PL011 driver over an [`board::mmio::Bus`] and the lock-free receive
//!   queue its interrupt fills.
//! - [`board`]: BCM2835 peripherals (GPIO, system timer, mailbox, watchdog, interrupt
//!   controller) and the board's memory map.
//! - [`arch`]: ARM1176 specifics (cp15 identification, exception reporting).
//! - [`escape`]: how bytes are shown on one printable line (shell and host tool).
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(unsafe_op_in_unsafe_fn, clippy::missing_safety_doc)]
#![warn(missing_docs)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod arch;
pub mod board;
pub mod crc32;
pub mod escape;
pub mod heatshrink;
pub mod mmu;
pub mod prng;
pub mod shell;
pub mod uart;
pub mod vmcirc;

/// The Linux/Unix mirrored ring (feature `std`).
#[cfg(all(unix, any(feature = "std", test)))]
pub use vmcirc::{Backend, MemfdMirror, MirrorOptions, MirrorRing};
/// The public ring types (the backend-building blocks stay in [`vmcirc`]).
pub use vmcirc::{ByteRing, Mirror, ModularRing, Ring, RingError};
