#!/usr/bin/env bash
# Builds what goes on the SD card's FAT boot partition, and refuses to build a card
# that cannot boot.
#
#   FIRMWARE_DIR=/path/to/firmware/boot tools/sdcard.sh [BUILD]
#
# BUILD (default build) must hold kernel.img. The firmware files the card needs are
# read from tools/config.txt (or $CONFIG): bootcode.bin always, and the start*.elf /
# fixup*.dat pair the firmware will load for that config (the Raspberry Pi config.txt
# documentation, "boot" and "memory" options):
#   gpu_mem=16 (and gpu_mem_256/gpu_mem_512=16)  start_cd.elf + fixup_cd.dat, the cut-down
#                                                firmware (selected only this way)
#   start_x=1 / start_debug=1                    start_x.elf + fixup_x.dat / start_db.elf + fixup_db.dat
#   start_file=... fixup_file=...                those files (never a _cd one: that does not boot)
#   otherwise                                    start.elf + fixup.dat
# gpu_mem between 17 and 31 is refused: the documentation only says what 16 and 32+ do.
#
# Each file must be in FIRMWARE_DIR (a copy of the boot/ folder of
# https://github.com/raspberrypi/firmware, which cannot be bundled here), non-empty,
# and an .elf must be an ELF file; otherwise this prints one `sdcard: error:` line per
# problem, removes any earlier build/sdcard/ and build/sdcard.img (they no longer
# match) and exits 1 without writing anything. On success: build/sdcard/ with
# kernel.img, config.txt and the firmware files, and, when mtools and dosfstools are
# installed, build/sdcard.img (64 MiB, one FAT32 partition) for dd or Raspberry Pi
# Imager ("Use custom").
set -euo pipefail
export PATH="$PATH:/sbin:/usr/sbin"
build=${1:-build}
config=${CONFIG:-$(dirname "$0")/config.txt}
out="$build/sdcard"
errors=()
err() { errors+=("$1"); }

[ -f "$config" ] || { echo "sdcard: error: no config.txt at $config" >&2; exit 1; }
[ -s "$build/kernel.img" ] || err "no kernel image at $build/kernel.img (run make first)"

# The effective value of a config.txt option: the last uncommented `name=value` line
# outside a conditional section other than [all]/[pi0]/[pi1] (the boards this kernel
# runs on), with surrounding blanks and trailing comments removed.
option() {
  awk -v name="$1" '
    BEGIN { on = 1 }
    { line = $0; sub(/#.*/, "", line); gsub(/^[ \t]+|[ \t]+$/, "", line) }
    line ~ /^\[/ {
      s = tolower(line); gsub(/[ \t\[\]]/, "", s)
      on = (s == "all" || s == "pi0" || s == "pi0w" || s == "pi1")
      next
    }
    on && line ~ ("^" name "[ \t]*=") { v = line; sub(/^[^=]*=[ \t]*/, "", v); value = v }
    END { print value }
  ' "$config"
}

gpu_mem=$(option gpu_mem)
gpu_mem_256=$(option gpu_mem_256)
gpu_mem_512=$(option gpu_mem_512)
start_x=$(option start_x)
start_debug=$(option start_debug)
start_file=$(option start_file)
fixup_file=$(option fixup_file)

cut_down=no
for v in "$gpu_mem" "$gpu_mem_256" "$gpu_mem_512"; do
  [ -z "$v" ] && continue
  if ! [[ "$v" =~ ^[0-9]+$ ]]; then
    err "config.txt: gpu_mem value '$v' is not a number"
  elif [ "$v" -eq 16 ]; then
    cut_down=yes
  elif [ "$v" -lt 32 ]; then
    err "config.txt: gpu_mem=$v: the firmware documents 16 (cut-down firmware) and 32 or more (start.elf); use one of those"
  fi
done

if [ -n "$start_file$fixup_file" ]; then
  if [ -z "$start_file" ] || [ -z "$fixup_file" ]; then
    err "config.txt: start_file and fixup_file must be given together (each start*.elf needs its fixup*.dat)"
  fi
  case "$start_file$fixup_file" in
    *cd.elf*|*cd.dat*) err "config.txt: start_file/fixup_file cannot select the cut-down firmware (it does not boot that way); use gpu_mem=16" ;;
  esac
  start=$start_file fixup=$fixup_file
elif [ "$cut_down" = yes ]; then
  start=start_cd.elf fixup=fixup_cd.dat
elif [ "$start_x" = 1 ]; then
  start=start_x.elf fixup=fixup_x.dat
elif [ "$start_debug" = 1 ]; then
  start=start_db.elf fixup=fixup_db.dat
else
  start=start.elf fixup=fixup.dat
fi
needed=(bootcode.bin "$start" "$fixup")

if [ -z "${FIRMWARE_DIR:-}" ]; then
  err "FIRMWARE_DIR is not set: config.txt needs ${needed[*]} from https://github.com/raspberrypi/firmware/tree/master/boot (FIRMWARE_DIR=/path/to/boot make sdcard)"
else
  for f in "${needed[@]}"; do
    p="$FIRMWARE_DIR/$f"
    if [ ! -f "$p" ]; then
      err "missing $f in $FIRMWARE_DIR (config.txt needs ${needed[*]})"
    elif [ ! -s "$p" ]; then
      err "$p is empty"
    elif [[ "$f" == *.elf ]] && [ "$(head -c 4 "$p" | od -An -tx1 | tr -d ' \n')" != 7f454c46 ]; then
      err "$p is not an ELF file (a broken download?)"
    fi
  done
fi

if [ ${#errors[@]} -gt 0 ]; then
  for e in "${errors[@]}"; do echo "sdcard: error: $e" >&2; done
  # An earlier card in $build no longer matches: remove it rather than leave it.
  rm -rf "$out" "$build/sdcard.img"
  echo "sdcard: nothing written: this card would not boot" >&2
  exit 1
fi

rm -rf "$out" "$build/sdcard.img"
mkdir -p "$out"
cp "$build/kernel.img" "$config" "$out/"
[ "$(basename "$config")" = config.txt ] || mv "$out/$(basename "$config")" "$out/config.txt"
for f in "${needed[@]}"; do cp "$FIRMWARE_DIR/$f" "$out/"; done
echo "sdcard: $out/ holds: $(ls "$out" | tr '\n' ' ')"

le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
if command -v mkfs.fat >/dev/null && command -v mcopy >/dev/null; then
  img="$build/sdcard.img"
  truncate -s 64M "$img"
  # MBR with one bootable FAT32 (LBA, type 0x0c) partition from sector 2048.
  sectors=$((64 * 1024 * 1024 / 512 - 2048))
  printf "\x80\x00\x00\x00\x0c\x00\x00\x00$(le32 2048)$(le32 $sectors)" | dd of="$img" bs=1 seek=446 conv=notrunc status=none
  printf '\x55\xaa' | dd of="$img" bs=1 seek=510 conv=notrunc status=none
  mkfs.fat -F 32 -n VMCIRC --offset 2048 "$img" $(( (64*1024*1024/512 - 2048) / 2 )) >/dev/null
  for f in "$out"/*; do mcopy -i "$img@@1M" "$f" ::/; done
  echo "sdcard: $img (FAT32 partition at 1 MiB): dd if=$img of=/dev/sdX bs=4M conv=fsync"
else
  echo "sdcard: install mtools and dosfstools (apt-get install mtools dosfstools) for a ready-to-write build/sdcard.img"
fi
