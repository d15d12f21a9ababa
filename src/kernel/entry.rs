//! Boot sequence, global kernel state, and the Rust ends of the exception
//! vectors (`kernel_irq`, `kernel_fault`, `kernel_recover`).
//!
//! Global state lives in `static mut` items touched in exactly these places:
//! `kernel_main` initialises them once with interrupts masked; afterwards the
//! shell (SVC mode) owns [`STATE`] and the consumer end of the receive queue, and
//! the IRQ handler owns the producer end. A fault abandons the shell's stack
//! frames (they are never resumed), so `kernel_recover` may take `STATE` again.

use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, Ordering};

use heapless::spsc::Producer;
use vmcirc::arch::cpu;
use vmcirc::arch::fault::{stack_guard_hit, FaultKind, FaultReport};
use vmcirc::board::mailbox::{self, FirmwareInfo, PropertyBuffer};
use vmcirc::board::mmio::Mmio;
use vmcirc::board::{irq, UART0_BASE, UART_CLOCK_HZ};
use vmcirc::mmu::{cp15, enable_mmu, PageTable, TranslationTable};
use vmcirc::shell::{LineIo, LineState, Shell, HISTORY_BYTES, LINE_BUFFER_BYTES};
use vmcirc::uart::{Pl011, RxControl, RxQueue, RxStats, SerialPort, RX_QUEUE_BYTES};

use super::console::KernelConsole;
use super::layout::kernel_layout;
use super::platform::{BoardPlatform, MemorySource};
use crate::kprint;

/// The console baud rate.
pub const BAUD: u32 = 115_200;

static mut RX_QUEUE: RxQueue = RxQueue::new();
static mut RX_PRODUCER: Option<Producer<'static, u8, RX_QUEUE_BYTES>> = None;
/// Receive counters (printed by `info`).
pub static RX_STATS: RxStats = RxStats::new();
static mut TABLE: TranslationTable = TranslationTable::new();
/// The second-level table of the first MiB (vectors, kernel image, stacks and their
/// guard pages), pointed to by `TABLE`'s entry 0.
static mut LOW_TABLE: PageTable = PageTable::new();
static mut STATE: Option<KernelState> = None;
static mut LINE: [u8; LINE_BUFFER_BYTES] = [0; LINE_BUFFER_BYTES];
static mut HISTORY: [u8; HISTORY_BYTES] = [0; HISTORY_BYTES];
static mut LINE_STATE: LineState = LineState::new();
static mut MAILBOX: PropertyBuffer = PropertyBuffer([0; 32]);
static IN_FAULT: AtomicBool = AtomicBool::new(false);
static BOOTED: AtomicBool = AtomicBool::new(false);

struct KernelState {
    console: KernelConsole,
    platform: BoardPlatform,
}

const ATAG_CORE: u32 = 0x5441_0001;
const ATAG_MEM: u32 = 0x5441_0002;
const ATAG_NONE: u32 = 0;

/// ARM memory size from an ATAG list at `addr`, if one is there.
fn atag_memory(addr: u32) -> Option<u32> {
    // The firmware puts ATAGs at 0x100 (in the first, identity-mapped MiB);
    // refuse anything else rather than read a wild pointer.
    if !(0x100..0x8000).contains(&addr) || !addr.is_multiple_of(4) {
        return None;
    }
    let word = |a: u32| {
        // SAFETY: a is inside the first 32 KiB of RAM (checked above and below),
        // which is always readable with the MMU off.
        unsafe { core::ptr::read_volatile(a as usize as *const u32) }
    };
    if word(addr + 4) != ATAG_CORE {
        return None;
    }
    let mut p = addr;
    let mut total = 0u32;
    while p < 0x8000 - 16 {
        let size = word(p);
        let tag = word(p + 4);
        if tag == ATAG_NONE || size < 2 {
            break;
        }
        if tag == ATAG_MEM {
            total = total.saturating_add(word(p + 8));
        }
        p += size * 4;
    }
    (total != 0).then_some(total)
}

fn firmware_info() -> Option<FirmwareInfo> {
    // SAFETY: the mailbox buffer is only used here, once, at boot; the MMU and
    // D-cache are still off so the VideoCore sees what we wrote.
    let buf = unsafe { &mut *addr_of_mut!(MAILBOX) };
    mailbox::build_request(buf);
    let phys = buf as *mut PropertyBuffer as usize as u32;
    // SAFETY: mailbox registers in the peripheral window, MMU off.
    let mut bus = unsafe { Mmio::new() };
    if !mailbox::call(&mut bus, 0x4000_0000 | phys) {
        return None;
    }
    mailbox::parse_response(buf)
}

/// The Rust entry point, called by boot.S with the firmware's r0-r2.
#[no_mangle]
pub extern "C" fn kernel_main(_r0: u32, machine: u32, atags: u32) -> ! {
    // SAFETY: single core, interrupts masked: nothing else touches the UART or
    // the interrupt controller yet.
    let mut bus = unsafe { Mmio::new() };
    irq::disable_all(&mut bus);
    let mut uart = Pl011::new(bus, UART0_BASE);
    // The divisors for 115200 at 48 MHz are always in range.
    let _ = uart.init(UART_CLOCK_HZ, BAUD, true);
    kprint!(
        "\nvmcirc {} booting (BCM2835, ARM1176JZF-S)\n",
        env!("CARGO_PKG_VERSION")
    );

    let fw = firmware_info();
    let (ram_bytes, source) = match (fw, atag_memory(atags)) {
        (Some(f), _) if f.arm_base == 0 && f.arm_size >= 16 << 20 => {
            (f.arm_size, MemorySource::Mailbox)
        }
        (_, Some(m)) => (m, MemorySource::Atags),
        _ => (128 << 20, MemorySource::Assumed),
    };
    // Whole sections only, and never into the peripherals.
    let ram_bytes = (ram_bytes & !0xf_ffff).min(0x2000_0000);

    // SAFETY: TABLE and LOW_TABLE are touched only here before the MMU is on;
    // afterwards TABLE only through the LiveTable handed back (owned by the
    // platform) and LOW_TABLE only read, through the shared reference below.
    let (table, low) = unsafe { (&mut *addr_of_mut!(TABLE), &mut *addr_of_mut!(LOW_TABLE)) };
    let low_pa = low.address() as u32;
    if let Err(e) = table.build_paged_boot_map(ram_bytes, low, low_pa, &kernel_layout()) {
        panic!("boot map: {e}");
    }
    // SAFETY: the boot map identity-maps all RAM cacheable and the peripherals as
    // device memory; in the first MiB the vectors at 0 and .text are executable,
    // everything the kernel writes (.data, .bss, stacks, the mailbox buffer) is
    // writable, and only the stack guard pages fault. Both tables are in .bss;
    // enable_mmu cleans the whole D-cache first, so the walker, whose walks are
    // inner non-cacheable (cp15::TTBR_WALK_ATTRS), finds them in memory, just as
    // for the L1 table. The vectors were copied by boot.S before this, so nothing
    // writes to the now read-only page 0 or .text. MMU off; once.
    let mut live = unsafe { enable_mmu(table) };
    // SAFETY: LOW_TABLE is never written again (see above).
    live.attach_page_table(unsafe { &*core::ptr::addr_of!(LOW_TABLE) }, low_pa);

    // SAFETY: split once, before the interrupt that uses the producer is enabled.
    let (producer, consumer) = unsafe { (*addr_of_mut!(RX_QUEUE)).split() };
    // SAFETY: as above; from now on only kernel_irq touches RX_PRODUCER.
    unsafe { *addr_of_mut!(RX_PRODUCER) = Some(producer) };
    let port = SerialPort::new(uart, consumer, &RX_STATS, BoardRx);
    let platform = BoardPlatform::new(live, fw, ram_bytes, source, machine, atags, &RX_STATS);
    // SAFETY: interrupts still masked, and nothing else holds STATE.
    unsafe {
        *addr_of_mut!(STATE) = Some(KernelState {
            console: KernelConsole::new(port),
            platform,
        })
    };
    // SAFETY: interrupt controller registers; single core.
    let mut bus = unsafe { Mmio::new() };
    irq::enable_gpu(&mut bus, irq::IRQ_UART0);
    BOOTED.store(true, Ordering::Release);
    cpu::enable_irq();
    kprint!("mmu on; {} MiB RAM; type 'help'\n", ram_bytes >> 20);
    run_shell()
}

/// Runs the shell forever on the kernel state.
fn run_shell() -> ! {
    // SAFETY: see the module docs: the shell is the only user of STATE, LINE and
    // HISTORY, and any earlier user's frames were abandoned by a fault.
    let st = unsafe { (*addr_of_mut!(STATE)).as_mut() };
    let Some(st) = st else {
        panic!("kernel state missing");
    };
    // SAFETY: as above.
    let (line, history) = unsafe { (&mut *addr_of_mut!(LINE), &mut *addr_of_mut!(HISTORY)) };
    // SAFETY: as above; the input read ahead before a fault is kept.
    let state = unsafe { &mut *addr_of_mut!(LINE_STATE) };
    state.recover();
    let mut io = LineIo::new(&mut st.console, state);
    let mut shell = Shell::new(line, history, &mut io);
    loop {
        shell.step(&mut io, &mut st.platform);
    }
}

/// IRQ handler body (called from boot.S's irq_entry, IRQ mode).
#[no_mangle]
pub extern "C" fn kernel_irq() {
    // SAFETY: the interrupt controller and UART registers; the IRQ handler is the
    // only user of the receive FIFO once interrupts are on.
    let mut bus = unsafe { Mmio::new() };
    if irq::pending_gpu(&mut bus, irq::IRQ_UART0) {
        // SAFETY: only this handler uses the producer, and IRQs do not nest.
        let producer = unsafe { (*addr_of_mut!(RX_PRODUCER)).as_mut() };
        let mut uart = Pl011::new(bus, UART0_BASE);
        match producer {
            Some(p) => uart.drain_rx_fifo(&RX_STATS, p),
            // Not split yet (cannot happen: the interrupt is enabled after).
            None => uart.init_rx_masked(),
        }
    }
}

/// The console's receive control: WFI while a read waits, and resuming a
/// paused receive in the shell's context with IRQs masked.
pub struct BoardRx;

impl RxControl for BoardRx {
    fn idle(&mut self, ready: &dyn Fn() -> bool) {
        cpu::wait_until(ready)
    }

    fn resume(&mut self) {
        cpu::with_irq_masked(|| {
            // SAFETY: IRQs are masked on this single core, so kernel_irq (the
            // producer's only other user) cannot run until we are done.
            let producer = unsafe { (*addr_of_mut!(RX_PRODUCER)).as_mut() };
            if let Some(p) = producer {
                // SAFETY: UART registers; the handler is kept out as above.
                let mut uart = Pl011::new(unsafe { Mmio::new() }, UART0_BASE);
                uart.resume_rx(&RX_STATS, p);
            }
        })
    }
}

/// Fault report (called from boot.S in UND/ABT mode); returns to boot.S, which
/// then recovers into the shell.
#[no_mangle]
pub extern "C" fn kernel_fault(kind: u32, lr: u32, spsr: u32, _saved: *const u32) {
    if IN_FAULT.swap(true, Ordering::AcqRel) {
        kprint!("\nerror: fault while handling a fault (lr={lr:#010x}); recovering\n");
        return;
    }
    let kind = FaultKind::from_raw(kind);
    let pc = kind.faulting_pc(lr, spsr & (1 << 5) != 0);
    let (far, fsr) = match kind {
        FaultKind::DataAbort => (cp15::read_far(), cp15::read_dfsr()),
        FaultKind::PrefetchAbort => (pc, cp15::read_ifsr()),
        _ => (0, 0),
    };
    let insn = if kind == FaultKind::Undefined && pc.is_multiple_of(4) && pc < 0x2000_0000 {
        // SAFETY: pc is where the CPU just fetched an instruction from, so the
        // word is mapped and readable.
        Some(unsafe { core::ptr::read_volatile(pc as usize as *const u32) })
    } else {
        None
    };
    let report = FaultReport {
        kind,
        pc,
        far,
        fsr,
        insn,
        stack_guard: stack_guard_hit(kind, fsr, far, &kernel_layout().guards),
    };
    kprint!("\n{report}\n");
    if !BOOTED.load(Ordering::Acquire) {
        panic!("fault during boot");
    }
}

/// Re-enters the shell after a fault (boot.S has reset every mode's stack and
/// switched to SVC mode).
#[no_mangle]
pub extern "C" fn kernel_recover() -> ! {
    IN_FAULT.store(false, Ordering::Release);
    cpu::enable_irq();
    run_shell()
}
