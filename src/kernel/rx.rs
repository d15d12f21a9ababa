//! The console's receive path: the interrupt handler moves bytes from the PL011's
//! FIFO into the receive queue ([`handle_irq`]); the shell reads the other end
//! through its [`vmcirc::uart::SerialPort`], with [`BoardRx`] for sleeping and for
//! resuming a paused receive. The producer end, the UART's receive side and the
//! interrupt controller live in one [`Global`], used by the IRQ handler and by the
//! shell only with IRQs masked.

use heapless::spsc::Producer;
use vmcirc::arch::cpu;
use vmcirc::board::irq::{Interrupts, IRQ_UART0};
use vmcirc::board::mmio::Mmio;
use vmcirc::uart::{Pl011, RxControl, RxStats, RX_QUEUE_BYTES};

use super::global::Global;

/// Receive counters (printed by `info`).
pub static RX_STATS: RxStats = RxStats::new();

/// What the IRQ handler owns.
struct RxPath {
    irq: Interrupts<Mmio>,
    uart: Pl011<Mmio>,
    producer: Producer<'static, u8, RX_QUEUE_BYTES>,
}

static RX: Global<RxPath> = Global::new();

/// Installs the receive path and enables the UART interrupt at the interrupt
/// controller (the CPU's IRQs stay masked until the caller enables them).
pub fn install(
    irq: Interrupts<Mmio>,
    uart: Pl011<Mmio>,
    producer: Producer<'static, u8, RX_QUEUE_BYTES>,
) {
    let path = RxPath {
        irq,
        uart,
        producer,
    };
    // Refused only on a second call, which the boot code never makes.
    let _ = RX.install(path);
    RX.with(|p| p.irq.enable_gpu(IRQ_UART0));
}

/// The IRQ handler's work (IRQ mode; IRQs do not nest): if the UART interrupt is
/// pending, drain the receive FIFO into the queue.
pub fn handle_irq() {
    RX.with(|p| {
        // `pending_gpu` brackets its read with barriers: the switch from the
        // interrupt controller to the UART is covered.
        if p.irq.pending_gpu(IRQ_UART0) {
            p.uart.drain_rx_fifo(&RX_STATS, &mut p.producer);
        }
    });
}

/// Before another kernel starts: masks every source at the interrupt controller
/// and the UART's interrupts (called with IRQs masked).
pub fn quiesce() {
    RX.with(|p| {
        p.irq.disable_all();
        p.uart.init_rx_masked();
    });
}

/// See [`Global::reclaim`].
///
/// # Safety
///
/// As [`Global::reclaim`].
pub unsafe fn reclaim() {
    // SAFETY: forwarded contract.
    unsafe { RX.reclaim() }
}

/// The console's receive control: WFI while a read waits, and resuming a paused
/// receive in the shell's context with IRQs masked.
pub struct BoardRx;

impl RxControl for BoardRx {
    fn idle(&mut self, ready: &dyn Fn() -> bool) {
        cpu::wait_until(ready)
    }

    fn resume(&mut self) {
        // IRQs masked: the IRQ handler, the receive path's other user, cannot run
        // while the shell holds it.
        cpu::with_irq_masked(|| RX.with(|p| p.uart.resume_rx(&RX_STATS, &mut p.producer)));
    }
}
