//! Kernel-only code (the bare-metal binary). The arrows run one way: `entry` (the
//! boot hand-off and the exception entries) uses everything else; nothing uses
//! `entry`.
//!
//! | file          | owns |
//! |---------------|------|
//! | `entry.rs`    | `kernel_init` (the unsafe hand-off), `kernel_main`, the kernel state, `kernel_irq` / `kernel_fault` / `kernel_recover` |
//! | `devices.rs`  | the drivers, made once ([`devices::Devices::take`]); the watchdog |
//! | `config.rs`   | the baud rate and what boot learnt from the firmware ([`config::BoardInfo`]) |
//! | `clock.rs`    | the kernel clock (system timer) |
//! | `rx.rs`       | the receive path: the IRQ handler's side of the queue, [`rx::BoardRx`] |
//! | `console.rs`  | the shell's console on the UART, `kprint!` |
//! | `memory.rs`   | [`memory::Memory`]: the live page table, allocators, rings, the `load` buffer |
//! | `chainload.rs`| starting a kernel image received by `load` (with boot.S's `chainload`) |
//! | `platform.rs` | the shell's view of the board for one command (borrows `Memory`) |
//! | `global.rs`   | [`global::Global`], the one way to reach state from a `static` |
//! | `layout.rs`   | the link layout of the image |
//! | `panic.rs`    | the panic handler |

pub mod chainload;
pub mod clock;
pub mod config;
pub mod console;
pub mod devices;
pub mod entry;
pub mod global;
pub mod layout;
pub mod memory;
pub mod panic;
pub mod platform;
pub mod rx;
