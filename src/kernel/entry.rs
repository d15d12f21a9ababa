//! The boot hand-off and the Rust ends of the exception vectors.
//!
//! [`kernel_init`] (unsafe, called once by boot.S) is the one hand-off from the
//! unsafe boot path: it takes the drivers ([`Devices::take`]) and the statically
//! allocated tables, queue and mailbox buffer, asks the firmware for the board's
//! facts, brings up the console UART, builds the page map and turns on the MMU, and
//! passes all of it to [`kernel_main`]. `kernel_main` is safe: it gives each piece to
//! its one owner (the clock, the receive path, `kprint`, the watchdog, and the kernel
//! state, which owns the console, the [`Memory`] and the shell's buffers), enables
//! interrupts and runs the shell.
//!
//! The exception entries: [`kernel_irq`] (the receive path), [`kernel_fault`] (one
//! report line) and [`kernel_recover`], which re-enters the shell after boot.S has
//! reset the stacks, reclaiming what the abandoned frames held ([`Global::reclaim`]).

use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, Ordering};

use heapless::spsc::{Consumer, Producer};
use vmcirc::arch::cpu;
use vmcirc::arch::fault::{stack_guard_hit, FaultKind, FaultReport};
use vmcirc::board::irq::Interrupts;
use vmcirc::board::mailbox::{self, FirmwareInfo, Mailbox, PropertyBuffer};
use vmcirc::board::mmio::Mmio;
use vmcirc::board::timer::SystemTimer;
use vmcirc::board::watchdog::Watchdog;
use vmcirc::board::{atags, UART_CLOCK_FALLBACK_HZ};
use vmcirc::mmu::{cp15, enable_mmu, PageTable, SectionAllocator, TranslationTable};
use vmcirc::shell::{LineIo, LineState, Shell, HISTORY_BYTES, LINE_BUFFER_BYTES};
use vmcirc::uart::{Pl011, RxQueue, SerialPort, RX_QUEUE_BYTES};

use super::config::{BoardInfo, MemorySource, UartClock, BAUD};
use super::console::{self, KernelConsole};
use super::devices::{self, Devices};
use super::global::Global;
use super::layout::kernel_layout;
use super::memory::Memory;
use super::platform::BoardPlatform;
use super::rx::{self, BoardRx, RX_STATS};
use super::{clock, config};
use crate::kprint;

// Statically allocated memory that only `kernel_init` touches, once each.
static mut TABLE: TranslationTable = TranslationTable::new();
/// The second-level table of the first MiB (vectors page, kernel image, stacks and
/// their guard pages), pointed to by `TABLE`'s entry 0.
static mut LOW_TABLE: PageTable = PageTable::new();
static mut RX_QUEUE: RxQueue = RxQueue::new();
static mut MAILBOX: PropertyBuffer = PropertyBuffer::new();

/// The kernel state: the shell runs inside `KERNEL.with` for ever; a fault abandons
/// that frame and `kernel_recover` reclaims it.
static KERNEL: Global<KernelState> = Global::new();
static IN_FAULT: AtomicBool = AtomicBool::new(false);
static BOOTED: AtomicBool = AtomicBool::new(false);

/// What the shell runs on, kept across faults.
struct KernelState {
    console: KernelConsole,
    memory: Memory,
    board: BoardInfo,
    line: [u8; LINE_BUFFER_BYTES],
    history: [u8; HISTORY_BYTES],
    /// Input read ahead of a fault is kept.
    line_state: LineState,
}

/// Everything `kernel_init` hands to `kernel_main`.
pub struct Boot {
    board: BoardInfo,
    memory: Memory,
    timer: SystemTimer<Mmio>,
    watchdog: Watchdog<Mmio>,
    irq: Interrupts<Mmio>,
    uart: Pl011<Mmio>,
    uart_rx: Pl011<Mmio>,
    producer: Producer<'static, u8, RX_QUEUE_BYTES>,
    consumer: Consumer<'static, u8, RX_QUEUE_BYTES>,
}

/// Asks the firmware (mailbox property channel) for the revision, the memory split
/// and the UART clock. `buf` must not be cached (the D-cache is still off).
fn firmware_info(mb: &mut Mailbox<Mmio>, buf: &mut PropertyBuffer) -> Option<FirmwareInfo> {
    mailbox::build_request(buf);
    let phys = buf as *mut PropertyBuffer as usize as u32;
    // The L2-coherent VideoCore alias of the buffer (see board::mailbox).
    mb.call(0x4000_0000 | phys).ok()?;
    mailbox::parse_response(buf)
}

/// The boot hand-off, called by boot.S with the firmware's r0-r2 (r1 machine type,
/// r2 ATAG list or device tree).
///
/// # Safety
///
/// Called once, by boot.S: SVC mode, single core, IRQs masked, MMU and D-cache off,
/// stacks set, .bss zeroed, VBAR set.
#[no_mangle]
pub unsafe extern "C" fn kernel_init(_r0: u32, machine: u32, atag_addr: u32) -> ! {
    // SAFETY: the caller's contract: the BCM2835 with the MMU off, and this is the
    // kernel's only call.
    let Some(mut dev) = (unsafe { Devices::take() }) else {
        halt()
    };
    dev.irq.disable_all();

    // SAFETY: MAILBOX is used only here, once; the D-cache is off so the VideoCore
    // sees what we wrote.
    let fw = firmware_info(&mut dev.mailbox, unsafe { &mut *addr_of_mut!(MAILBOX) });

    // The console: pins, then the UART from the firmware's clock (48 MHz when the
    // mailbox does not say, or names a clock 115200 baud cannot be made from).
    dev.gpio.route_uart0(&mut dev.timer);
    let reported = fw.and_then(|f| f.uart_clock_hz);
    let uart = match reported.map(|hz| (hz, dev.uart.init(hz, BAUD, true))) {
        Some((hz, Ok((ibrd, fbrd)))) => UartClock {
            hz,
            from_mailbox: true,
            ibrd,
            fbrd,
        },
        _ => {
            let hz = UART_CLOCK_FALLBACK_HZ;
            // 115200 from 48 MHz is always in range (IBRD 26, FBRD 3).
            let (ibrd, fbrd) = dev.uart.init(hz, BAUD, true).unwrap_or((26, 3));
            UartClock {
                hz,
                from_mailbox: false,
                ibrd,
                fbrd,
            }
        }
    };
    console::install_kprint(dev.uart_kprint);
    kprint!(
        "\nvmcirc {} (build {}) booting (BCM2835, ARM1176JZF-S)\n",
        env!("CARGO_PKG_VERSION"),
        config::BUILD_ID
    );

    // The firmware puts ATAGs at 0x100, in the first MiB; refuse any other address
    // rather than read a wild pointer.
    let atag_mem = if (0x100..0x8000).contains(&atag_addr) && atag_addr.is_multiple_of(4) {
        let words = (0x8000 - atag_addr as usize) / 4;
        // SAFETY: [atag_addr, 0x8000) is RAM below the kernel image, readable with
        // the MMU off, written by nobody while this slice lives.
        atags::memory_bytes(unsafe {
            core::slice::from_raw_parts(atag_addr as usize as *const u32, words)
        })
    } else {
        None
    };
    let (ram_bytes, memory_source) = match (fw, atag_mem) {
        (Some(f), _) if f.arm_base == 0 && f.arm_size >= 16 << 20 => {
            (f.arm_size, MemorySource::Mailbox)
        }
        (_, Some(m)) => (m, MemorySource::Atags),
        _ => (128 << 20, MemorySource::Assumed),
    };
    // Whole sections only, and never into the peripherals.
    let ram_bytes = (ram_bytes & !0xf_ffff).min(vmcirc::board::PERIPHERAL_BASE);

    // SAFETY: TABLE and LOW_TABLE are taken only here; afterwards TABLE only through
    // the LiveTable enable_mmu returns (owned by Memory) and LOW_TABLE only read.
    let (table, low) = unsafe { (&mut *addr_of_mut!(TABLE), &mut *addr_of_mut!(LOW_TABLE)) };
    let layout = kernel_layout();
    let low_pa = low.address() as u32;
    if let Err(e) = table.build_paged_boot_map(ram_bytes, low, low_pa, &layout) {
        panic!("boot map: {e}");
    }
    // SAFETY: the boot map identity-maps all RAM cacheable and the peripherals as
    // device memory; in the first MiB .text (with the vectors VBAR points at) is
    // executable and everything the kernel writes (.data, .bss, stacks, the mailbox
    // buffer) is writable, and only the stack guard pages fault. Both tables are in
    // .bss; enable_mmu cleans the whole D-cache first, so the walker, whose walks are
    // inner non-cacheable (cp15::TTBR_WALK_ATTRS), finds them in memory. MMU off;
    // once.
    let mut live = unsafe { enable_mmu(table) };
    live.attach_page_table(low, low_pa);
    // SAFETY: RAM from the first MiB after the kernel to the firmware's ARM size is
    // used by nothing else, and the boot map maps it normal write-back.
    let sections = unsafe { SectionAllocator::new(layout.end, ram_bytes) }.ok();

    // SAFETY: RX_QUEUE is taken only here; its two ends go to the receive path and
    // the console.
    let (producer, consumer) = unsafe { &mut *addr_of_mut!(RX_QUEUE) }.split();
    kernel_main(Boot {
        board: BoardInfo {
            firmware: fw,
            ram_bytes,
            memory_source,
            machine,
            atags: atag_addr,
            uart,
        },
        memory: Memory::new(live, sections),
        timer: dev.timer,
        watchdog: dev.watchdog,
        irq: dev.irq,
        uart: dev.uart,
        uart_rx: dev.uart_rx,
        producer,
        consumer,
    })
}

/// The safe side of the hand-off: installs each piece with its owner, enables the
/// UART interrupt and runs the shell for ever.
fn kernel_main(boot: Boot) -> ! {
    clock::install(boot.timer);
    let _ = devices::WATCHDOG.install(boot.watchdog);
    rx::install(boot.irq, boot.uart_rx, boot.producer);
    let port = SerialPort::new(boot.uart, boot.consumer, &RX_STATS, BoardRx);
    let ram_mib = boot.board.ram_bytes >> 20;
    let state = KernelState {
        console: KernelConsole::new(port),
        memory: boot.memory,
        board: boot.board,
        line: [0; LINE_BUFFER_BYTES],
        history: [0; HISTORY_BYTES],
        line_state: LineState::new(),
    };
    if KERNEL.install(state).is_err() {
        panic!("kernel state installed twice");
    }
    BOOTED.store(true, Ordering::Release);
    cpu::enable_irq();
    kprint!("mmu on; {} MiB RAM; type 'help'\n", ram_mib);
    run_shell()
}

/// Runs the shell for ever on the kernel state.
fn run_shell() -> ! {
    KERNEL.with(|st| {
        st.line_state.recover();
        let mut io = LineIo::new(&mut st.console, &mut st.line_state);
        let mut shell = Shell::new(&mut st.line, &mut st.history, &mut io);
        let mut platform = BoardPlatform::new(&mut st.memory, &st.board);
        loop {
            shell.step(&mut io, &mut platform);
        }
    });
    // `with` gave nothing: the state is installed before the first call and
    // reclaimed before every later one, so this is a kernel bug.
    panic!("kernel state missing")
}

/// Sleeps for ever.
fn halt() -> ! {
    loop {
        cp15::wait_for_interrupt();
    }
}

/// IRQ handler body (called from boot.S's irq_entry, IRQ mode).
#[no_mangle]
pub extern "C" fn kernel_irq() {
    // Peripheral barrier at entry (BCM2835 ARM Peripherals §1.3): the interrupted
    // code may have been in the middle of talking to another peripheral (the timer,
    // the UART, the watchdog); the handler now reads the interrupt controller.
    cp15::dmb();
    rx::handle_irq();
    // And at exit: the handler's last access was a UART read, and the interrupted
    // code may go on with another peripheral.
    cp15::dmb();
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

/// Re-enters the shell after a fault.
///
/// # Safety
///
/// Called only by boot.S after a fault, once it has reset every mode's stack and
/// switched to SVC mode: the interrupted frames never run again.
#[no_mangle]
pub unsafe extern "C" fn kernel_recover() -> ! {
    // SAFETY: the caller's contract: whatever the abandoned frames held is free.
    unsafe {
        KERNEL.reclaim();
        rx::reclaim();
        clock::reclaim();
        console::reclaim_kprint();
        devices::WATCHDOG.reclaim();
    }
    IN_FAULT.store(false, Ordering::Release);
    cpu::enable_irq();
    run_shell()
}
