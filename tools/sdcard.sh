#!/usr/bin/env bash
# Builds what goes on the SD card's FAT boot partition: build/sdcard/ with
# kernel.img and config.txt, plus the Broadcom firmware when FIRMWARE_DIR points
# at a copy of https://github.com/raspberrypi/firmware/tree/master/boot; and, when
# mtools and dosfstools are installed, build/sdcard.img (a 64 MiB image with one
# FAT32 partition) to write with `dd` or Raspberry Pi Imager ("Use custom").
set -euo pipefail
export PATH="$PATH:/sbin:/usr/sbin"
build=${1:-build}
out="$build/sdcard"
rm -rf "$out"
mkdir -p "$out"
cp "$build/kernel.img" "$out/"
cp "$(dirname "$0")/config.txt" "$out/"
missing=()
for f in bootcode.bin start.elf fixup.dat; do
  if [ -n "${FIRMWARE_DIR:-}" ] && [ -f "$FIRMWARE_DIR/$f" ]; then
    cp "$FIRMWARE_DIR/$f" "$out/"
  else
    missing+=("$f")
  fi
done
echo "sdcard: $out/ holds: $(ls "$out" | tr '\n' ' ')"
if [ ${#missing[@]} -gt 0 ]; then
  echo "sdcard: still needed from the Raspberry Pi firmware (not redistributable here): ${missing[*]}"
  echo "        get them from https://github.com/raspberrypi/firmware/tree/master/boot"
  echo "        and rerun with FIRMWARE_DIR=/path/to/that/boot make sdcard"
fi
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
if command -v mkfs.fat >/dev/null && command -v mcopy >/dev/null; then
  img="$build/sdcard.img"
  rm -f "$img"
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
