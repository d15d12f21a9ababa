//! The vmcirc bare-metal kernel for the BCM2835 (Raspberry Pi Zero, Zero W, 1 A+/B+).
//!
//! `boot.S` (assembled here with `global_asm!`) sets up the mode stacks, clears
//! .bss, installs the vectors and calls [`kernel_main`], the one hand-off from the
//! unsafe boot path to safe Rust: it brings up the UART, asks the firmware for the
//! memory split, builds the translation table and turns on the MMU and caches,
//! enables the UART receive interrupt, then runs the shell forever.
//!
//! Faults (undefined instruction, prefetch and data abort) are reported in one line
//! by [`kernel_fault`]; `boot.S` then resets the stacks and [`kernel_recover`]
//! re-enters the shell. A panic prints its message and waits for `reboot`.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::missing_safety_doc)]

mod kernel;

core::arch::global_asm!(include_str!("../boot.S"), options(raw));

pub use kernel::entry::{kernel_fault, kernel_irq, kernel_main, kernel_recover};
