//! The PL011 UART (UART0): its init sequence, polled transmit, interrupt-driven
//! receive into a lock-free single-producer/single-consumer byte queue, and the
//! `embedded-hal-nb` / `embedded-io` trait impls that `noline` and the shell use.
//!
//! The receive path: the UART interrupt handler ([`Pl011::drain_rx_fifo`]) moves
//! every byte from the 16-byte hardware FIFO into a [`heapless::spsc::Queue`]
//! (producer side, interrupt context); the shell reads from the consumer side.
//! When the queue is full the handler leaves the rest in the FIFO and masks the
//! receive interrupts until the shell has made room ([`RxStats::paused`]); the
//! shell then unmasks them and drains the FIFO itself ([`RxControl::resume`]),
//! since bytes already waiting raise no new interrupt. So software never drops
//! a byte; only a sender that outruns the 16-byte hardware FIFO meanwhile can
//! lose data, which the PL011 flags and [`RxStats::fifo_overruns`] counts. (QEMU holds input back while the FIFO is
//! full, so there the path is lossless.)

mod pl011;
mod serial;

pub use pl011::{actual_baud, divisors, BaudError, Pl011, RxStats};
pub use serial::{RxControl, SerialError, SerialPort};

/// Receive queue capacity (bytes). A 16 KiB paste at 115200 baud takes 1.4 s; the
/// queue holds a full 16 KiB burst even if the shell does not read at all.
pub const RX_QUEUE_BYTES: usize = 32 * 1024;

/// The queue type the kernel uses for received bytes.
pub type RxQueue = heapless::spsc::Queue<u8, RX_QUEUE_BYTES>;
