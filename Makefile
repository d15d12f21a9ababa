# vmcirc: build the Raspberry Pi kernel, run it in QEMU, test everything.
#
#   make            kernel only: build/kernel.elf and build/kernel.img
#   make run        set up if needed, build, boot the kernel in QEMU (shell on this terminal)
#   make test       set up if needed, every host test, the loom models and every QEMU session
#   make accept     the QEMU sessions, writing received output to their golden files
#   make clippy     clippy for the host and the kernel target
#   make sdcard     build/sdcard/ (and build/sdcard.img with mtools) for a real board
#   make install PORT=/dev/ttyUSB0 [BAUD=115200]
#                   build, and install the kernel on the board over the UART (chainloader)
#   make clean

SHELL        := /bin/bash
TARGET       := armv6-none-eabi
BUILD        := build
CARGO        ?= cargo
KERNEL_FLAGS := -Zbuild-std=core -Zbuild-std-features=compiler-builtins-mem --target $(TARGET) --release --features kernel --bin kernel
KERNEL_OUT   := $(or $(CARGO_TARGET_DIR),target)/$(TARGET)/release/kernel
SYSROOT       = $(shell rustc --print sysroot)
OBJCOPY       = $(wildcard $(SYSROOT)/lib/rustlib/*/bin/llvm-objcopy)
OBJDUMP       = $(wildcard $(SYSROOT)/lib/rustlib/*/bin/llvm-objdump)
TOOL         := $(or $(CARGO_TARGET_DIR),target)/release/vmcirc
MACHINE      ?= raspi0
# The kernel banner's build name: the short commit hash, -dirty with uncommitted changes.
BUILD_ID     ?= $(shell git rev-parse --short=8 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
SCRIPTS      := $(sort $(wildcard tools/scripts/*.vms) $(wildcard tools/scripts/common/*.vms))
HOST_SCRIPTS := $(sort $(wildcard tools/scripts/common/*.vms))

.PHONY: all kernel setup run test test-host test-loom test-qemu accept clippy fmt sdcard install clean objdump tool bench bench-pi

all: kernel

setup:
	@bash tools/setup.sh

kernel: $(BUILD)/kernel.img

$(BUILD)/kernel.elf: FORCE
	VMCIRC_BUILD_ID=$(BUILD_ID) $(CARGO) build $(KERNEL_FLAGS)
	@mkdir -p $(BUILD)
	cp $(KERNEL_OUT) $@

# The same source under another build id, for the chainloader's QEMU test (install a
# different build). Built first, so build/kernel.elf is the normal build afterwards.
$(BUILD)/kernel-b.img: FORCE
	VMCIRC_BUILD_ID=$(BUILD_ID)-b $(CARGO) build $(KERNEL_FLAGS)
	@mkdir -p $(BUILD)
	$(OBJCOPY) -O binary $(KERNEL_OUT) $@

$(BUILD)/kernel.img: $(BUILD)/kernel.elf
	$(OBJCOPY) -O binary $< $@
	@ls -l $@

FORCE:

tool:
	$(CARGO) build --release -p vmcirc-tools

run: setup kernel tool
	$(TOOL) qemu --kernel $(BUILD)/kernel.img --machine $(MACHINE)

test: setup
	$(MAKE) kernel
	$(MAKE) test-host
	$(MAKE) test-loom
	$(MAKE) test-qemu

test-host:
	$(CARGO) test --workspace --features std --release
	bash tools/sdcard-test.sh

# loom models of the shared ring's protocols (src/vmcirc/shared/loom_tests.rs):
# --cfg loom in its own target directory, so the normal build is not invalidated.
LOOM_MAX_PREEMPTIONS ?= 3
test-loom:
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=$(LOOM_MAX_PREEMPTIONS) \
	  $(CARGO) test --release --lib --target-dir $(or $(CARGO_TARGET_DIR),target)/loom shared::loom_tests

test-qemu: tool $(BUILD)/kernel-b.img kernel
	@pass=0; fail=0; failed=""; \
	for s in $(SCRIPTS); do \
	  echo "== $$s"; \
	  if timeout 1300 $(TOOL) script $$s --qemu $(BUILD)/kernel.img --machine $(MACHINE) --session-timeout 1200; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); failed="$$failed $$s"; fi; \
	done; \
	for s in $(HOST_SCRIPTS); do \
	  echo "== $$s (host shell)"; \
	  if timeout 600 $(TOOL) script $$s --exec "$(abspath $(TOOL)) shell"; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); failed="$$failed $$s(host)"; fi; \
	done; \
	echo "== vmcirc hs send (host encoder -> kernel decoder over the UART)"; \
	if timeout 600 $(TOOL) hs send tests/data/heatshrink/text_200k.txt -w 13 -l 4 --qemu $(BUILD)/kernel.img; then pass=$$((pass+1)); \
	else fail=$$((fail+1)); failed="$$failed hs-send"; fi; \
	echo "== tools/scripts/port/attach.vms and hs send over --qemu-pty (QEMU's console on a pty, opened as --port)"; \
	if timeout 600 $(TOOL) script tools/scripts/port/attach.vms --qemu-pty $(BUILD)/kernel.img --machine $(MACHINE); then pass=$$((pass+1)); \
	else fail=$$((fail+1)); failed="$$failed port/attach.vms"; fi; \
	if timeout 600 $(TOOL) hs send tests/data/heatshrink/text_200k.txt -w 11 -l 4 --qemu-pty $(BUILD)/kernel.img; then pass=$$((pass+1)); \
	else fail=$$((fail+1)); failed="$$failed hs-send-pty"; fi; \
	echo "== vmcirc install: a different build three times in a row over --qemu-pty (attached, the serial-port path), once over --qemu, then a corrupted and a truncated transfer"; \
	if timeout 600 $(TOOL) install $(BUILD)/kernel-b.img $(BUILD)/kernel.img $(BUILD)/kernel-b.img --qemu-pty $(BUILD)/kernel.img --machine $(MACHINE); then pass=$$((pass+1)); \
	else fail=$$((fail+1)); failed="$$failed install-pty"; fi; \
	if timeout 300 $(TOOL) install $(BUILD)/kernel-b.img --qemu $(BUILD)/kernel.img --machine $(MACHINE); then pass=$$((pass+1)); \
	else fail=$$((fail+1)); failed="$$failed install"; fi; \
	for d in corrupt truncate; do \
	  if timeout 300 $(TOOL) install $(BUILD)/kernel-b.img --qemu $(BUILD)/kernel.img --damage $$d; then pass=$$((pass+1)); \
	  else fail=$$((fail+1)); failed="$$failed install-$$d"; fi; \
	done; \
	echo "sessions: $$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ] || { echo "failed:$$failed"; exit 1; }

# Take new output for the sessions' `expect-golden` steps (tools/scripts/golden/):
# test-qemu with VMCIRC_ACCEPT=1. Review the files (git diff) before committing.
accept:
	VMCIRC_ACCEPT=1 $(MAKE) test-qemu

# Host benchmarks (criterion), each ending with a ratio table from the same run.
bench: setup
	$(CARGO) bench --features std --bench ring
	$(CARGO) bench --features std --bench leapfrog
	$(CARGO) bench --features std --bench heatshrink -- --table
	$(CARGO) bench --features std --bench ipc

# Deterministic Pi figures: QEMU with -icount shift=0 (1 us of system timer = 1000
# guest instructions); prints the kernel's bench table and stress ratios.
bench-pi: setup kernel tool
	@$(TOOL) script tools/bench/pi.vms --qemu $(BUILD)/kernel.img --machine $(MACHINE) \
	  --qemu-arg "-icount shift=0" --session-timeout 1200 -v 2>&1 \
	  | sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\x1b[78]//g' | tr -d '\r' \
	  | grep -E '^( +[0-9]+ +[0-9.]+ +[0-9.]+|mirrored|modular|ratio|hs demo|push\+pop| +chunk|vmcirc> (bench|stress)|[0-9]+ passed)'

clippy:
	$(CARGO) clippy --workspace --features std --all-targets -- -D warnings
	$(CARGO) clippy $(KERNEL_FLAGS) -- -D warnings

fmt:
	$(CARGO) fmt --all

objdump: $(BUILD)/kernel.elf
	$(OBJDUMP) -d $< | less

sdcard: kernel
	@bash tools/sdcard.sh $(BUILD)

# The development loop on a real board: the SD card holds a vmcirc kernel once; each
# new build is sent to the running kernel's `load` command, which starts it.
PORT ?=
BAUD ?= 115200
install: kernel tool
	@[ -n "$(PORT)" ] || { echo "make install: say which serial device: make install PORT=/dev/ttyUSB0"; exit 2; }
	$(TOOL) install $(BUILD)/kernel.img --port $(PORT) --baud $(BAUD)

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
