#!/usr/bin/env bash
# Tests for tools/sdcard.sh: a card is written only when the firmware files that
# config.txt selects are there and plausible; every refusal names what is missing and
# writes nothing. Runs in a temporary directory with fake firmware files (the real
# firmware cannot be bundled). `make test-host` runs it; prints `N passed, N failed`.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# A build dir with a kernel and a firmware dir with the given files (ELF magic for
# .elf files, a few bytes otherwise).
setup() {
  rm -rf "$tmp/build" "$tmp/fw"
  mkdir -p "$tmp/build" "$tmp/fw"
  printf 'kernel' >"$tmp/build/kernel.img"
  for f in "$@"; do
    case "$f" in
      *.elf) printf '\x7fELF\x01\x01' >"$tmp/fw/$f" ;;
      *) printf 'data' >"$tmp/fw/$f" ;;
    esac
  done
}

# check NAME EXPECTED_EXIT PATTERN [ENV...]: runs sdcard.sh with the env, expects the
# exit status and PATTERN in its output; a refusal must leave nothing written.
check() {
  local name=$1 want=$2 pattern=$3
  shift 3
  local out status
  out=$(env "$@" bash "$here/sdcard.sh" "$tmp/build" 2>&1)
  status=$?
  local ok=1
  [ "$status" -eq "$want" ] || ok=0
  grep -qE -- "$pattern" <<<"$out" || ok=0
  if [ "$want" -ne 0 ] && [ -e "$tmp/build/sdcard" ]; then ok=0; fi
  if [ $ok -eq 1 ]; then
    pass=$((pass + 1)); echo "  ok    $name"
  else
    fail=$((fail + 1)); echo "  FAIL  $name (exit $status, wanted $want and /$pattern/):"; sed 's/^/        /' <<<"$out"
  fi
}

# The shipped config: gpu_mem=16, so the cut-down firmware.
setup bootcode.bin start_cd.elf fixup_cd.dat
check "shipped config with start_cd.elf + fixup_cd.dat writes the card" 0 "holds: .*start_cd.elf" FIRMWARE_DIR="$tmp/fw"
[ -f "$tmp/build/sdcard/fixup_cd.dat" ] && [ -f "$tmp/build/sdcard/config.txt" ] && [ -f "$tmp/build/sdcard/kernel.img" ] \
  && { pass=$((pass + 1)); echo "  ok    the card holds kernel.img, config.txt and the firmware"; } \
  || { fail=$((fail + 1)); echo "  FAIL  the card lacks a file"; }

setup bootcode.bin start.elf fixup.dat
mkdir -p "$tmp/build/sdcard"
check "shipped config with only start.elf is refused, naming the _cd files (and an old card is removed)" 1 "missing start_cd.elf.*needs bootcode.bin start_cd.elf fixup_cd.dat" FIRMWARE_DIR="$tmp/fw"

setup bootcode.bin start_cd.elf
check "a missing fixup file is named" 1 "missing fixup_cd.dat" FIRMWARE_DIR="$tmp/fw"

setup start_cd.elf fixup_cd.dat
check "a missing bootcode.bin is named" 1 "missing bootcode.bin" FIRMWARE_DIR="$tmp/fw"

setup bootcode.bin start_cd.elf fixup_cd.dat
check "no FIRMWARE_DIR: refused, with the files to fetch" 1 "FIRMWARE_DIR is not set.*start_cd.elf"

setup bootcode.bin fixup_cd.dat
printf 'HTML' >"$tmp/fw/start_cd.elf"
check "a start file that is not ELF is refused" 1 "not an ELF file" FIRMWARE_DIR="$tmp/fw"

setup bootcode.bin start_cd.elf fixup_cd.dat
: >"$tmp/fw/bootcode.bin"
check "an empty file is refused" 1 "bootcode.bin is empty" FIRMWARE_DIR="$tmp/fw"

setup bootcode.bin start_cd.elf fixup_cd.dat
rm "$tmp/build/kernel.img"
check "no kernel image is refused" 1 "no kernel image" FIRMWARE_DIR="$tmp/fw"

# Other configs select other firmware.
printf 'kernel=kernel.img\ngpu_mem=64\n' >"$tmp/c64.txt"
setup bootcode.bin start.elf fixup.dat
check "gpu_mem=64 needs start.elf + fixup.dat" 0 "holds: .*start.elf" FIRMWARE_DIR="$tmp/fw" CONFIG="$tmp/c64.txt"
setup bootcode.bin start_cd.elf fixup_cd.dat
check "gpu_mem=64 with only the _cd files is refused" 1 "missing start.elf" FIRMWARE_DIR="$tmp/fw" CONFIG="$tmp/c64.txt"

printf 'gpu_mem=24\n' >"$tmp/c24.txt"
setup bootcode.bin start.elf fixup.dat start_cd.elf fixup_cd.dat
check "gpu_mem=24 is refused as undocumented" 1 "gpu_mem=24" FIRMWARE_DIR="$tmp/fw" CONFIG="$tmp/c24.txt"

printf 'gpu_mem=64\n[pi4]\ngpu_mem=16\n[all]\n# gpu_mem=16\n' >"$tmp/cf.txt"
setup bootcode.bin start.elf fixup.dat
check "a [pi4] section and comments do not count" 0 "holds: .*fixup.dat" FIRMWARE_DIR="$tmp/fw" CONFIG="$tmp/cf.txt"

printf 'gpu_mem_512=16\n' >"$tmp/c512.txt"
setup bootcode.bin start.elf fixup.dat
check "gpu_mem_512=16 selects the cut-down firmware too" 1 "missing start_cd.elf" FIRMWARE_DIR="$tmp/fw" CONFIG="$tmp/c512.txt"

printf 'start_file=start_cd.elf\nfixup_file=fixup_cd.dat\n' >"$tmp/ccd.txt"
setup bootcode.bin start_cd.elf fixup_cd.dat
check "start_file cannot select the cut-down firmware" 1 "cannot select the cut-down" FIRMWARE_DIR="$tmp/fw" CONFIG="$tmp/ccd.txt"

printf 'start_x=1\n' >"$tmp/cx.txt"
setup bootcode.bin start_x.elf fixup_x.dat
check "start_x=1 needs start_x.elf + fixup_x.dat" 0 "holds: .*start_x.elf" FIRMWARE_DIR="$tmp/fw" CONFIG="$tmp/cx.txt"

echo "sdcard.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
