#!/usr/bin/env bash
# Idempotent set-up for vmcirc, used by `make run`, `make test` and CI:
#  - the pinned nightly from rust-toolchain.toml (with rust-src, llvm-tools,
#    rustfmt, clippy), through rustup;
#  - qemu-system-arm (Debian/Ubuntu package), through apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null 2>&1; then
  echo "setup: rustup is required (https://rustup.rs): curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
  exit 1
fi
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$channel" rustc --version >/dev/null 2>&1 \
   || ! rustup component list --toolchain "$channel" --installed 2>/dev/null | grep -q '^rust-src' \
   || ! rustup component list --toolchain "$channel" --installed 2>/dev/null | grep -q '^llvm-tools'; then
  echo "setup: installing Rust $channel (pinned in rust-toolchain.toml)"
  rustup toolchain install
fi

if ! command -v qemu-system-arm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: qemu-system-arm is missing; install it as root: apt-get install -y qemu-system-arm" >&2
    exit 1
  fi
  echo "setup: installing qemu-system-arm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null
fi
if ! qemu-system-arm -M help | grep -q '^raspi0'; then
  echo "setup: this qemu-system-arm has no raspi0 machine (need QEMU >= 5.1)" >&2
  exit 1
fi
