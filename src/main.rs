//! The vmcirc bare-metal kernel for the BCM2835 (Raspberry Pi Zero, Zero W, 1 A+/B+).
//!
//! `boot.S` (assembled here with `global_asm!`) sets up the mode stacks, clears
//! .bss, points VBAR at the vectors and calls [`kernel_init`], the one hand-off from
//! the unsafe boot path to safe Rust: it takes the drivers and static buffers once,
//! asks the firmware for the memory split and the UART clock, brings up the UART,
//! builds the translation table and turns on the MMU and caches, then passes
//! everything to the safe `kernel_main`, which enables the UART receive interrupt
//! and runs the shell forever. See `src/kernel/mod.rs` for who owns what.
//!
//! Faults (undefined instruction, prefetch and data abort) are reported in one line
//! by [`kernel_fault`]; `boot.S` then resets the stacks and [`kernel_recover`]
//! re-enters the shell. A panic prints its message and waits for `reboot`.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::missing_safety_doc)]

mod kernel;

core::arch::global_asm!(include_str!("../boot.S"), options(raw));

pub use kernel::entry::{kernel_fault, kernel_init, kernel_irq, kernel_recover};
