#!/usr/bin/env bash
# Builds coreboot 4.15 (Debian's source package) for a real ThinkPad with glint's kernel and
# payload:
#
#   scripts/build-board.sh x230|t430 stock|maximized   ->  out/boards/<board>-<layout>.rom
#
# The image is the whole 12 MiB flash with coreboot's CBFS in the BIOS region of the layout in
# boards/layout-<layout>.txt and 0xff elsewhere: no descriptor, ME or GbE (those stay the
# owner's own). Flash only its BIOS region (flashrom --ifd -i bios, or -l boards/layout-*.txt
# -i bios); a "maximized" image first needs the owner's descriptor edited so that the BIOS
# region starts at 0x21000 (glint rom, from their backup).
#
# Inputs: boards/<board>.defconfig, the kernel (scripts/build-kernel.sh), the glint initramfs
# (out/payload.cpio.xz, `make payload`), the microcode (scripts/fetch-microcode.sh), Debian's
# coreboot source (scripts/coreboot-source.sh) and this script. Reproducible (BUILD_TIMELESS=1,
# fixed file names in a tree outside the checkout) and cached by the hash of all of them in
# ${GLINT_CACHE:-$HOME/.cache/glint}/boards/.
set -euo pipefail
board=${1:-}; layout=${2:-}
case "$board" in x230|t430) ;; *) echo "usage: $0 x230|t430 stock|maximized" >&2; exit 2 ;; esac
case "$layout" in
  stock) cbfs_size=0x700000 ;;      # BIOS region 0x500000-0xbfffff: Lenovo's descriptor
  maximized) cbfs_size=0xBDF000 ;;  # BIOS region 0x21000-0xbfffff: ME shrunk to 0x3000-0x20fff
  *) echo "usage: $0 x230|t430 stock|maximized" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
cache="${GLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glint}/boards"
out="$top/out/boards"
rom="$out/$board-$layout.rom"
mkdir -p "$cache" "$out"

kernel=$(bash "$top/scripts/build-kernel.sh")
initrd="${GLINT_PAYLOAD:-$top/out/payload.cpio.xz}"
[ -s "$initrd" ] || { echo "build-board: $initrd missing: run 'make payload' first" >&2; exit 1; }
ucode=$(bash "$top/scripts/fetch-microcode.sh")
src=$(bash "$top/scripts/coreboot-source.sh")

work="$cache/$board-$layout"
mkdir -p "$work"
{
  cat "$top/boards/$board.defconfig"
  echo "CONFIG_CBFS_SIZE=$cbfs_size"
  ucfiles=""
  for f in "$ucode"/microcode-*.bin; do ucfiles="$ucfiles payload/$(basename "$f")"; done
  echo "CONFIG_CPU_UCODE_BINARIES=\"${ucfiles# }\""
  echo 'CONFIG_PAYLOAD_FILE="payload/bzImage"'
  echo 'CONFIG_LINUX_INITRD="payload/initrd"'
} > "$work/defconfig.new"
key=$( { cat "$work/defconfig.new" "$0"; cat "$src/.version" 2>/dev/null || head -1 "$src/debian/changelog";
        sha256sum "$kernel" "$initrd" "$ucode"/microcode-*.bin | cut -d' ' -f1; } | sha256sum | cut -d' ' -f1)
if [ -s "$work/coreboot.rom" ] && [ "$(cat "$work/key" 2>/dev/null)" = "$key" ]; then
  cp "$work/coreboot.rom" "$rom"
  echo "build-board: $rom up to date" >&2; echo "$rom"; exit 0
fi
mv "$work/defconfig.new" "$work/defconfig"

# A private copy of the tree per board and layout, at a path that does not depend on the
# checkout; the payload files get fixed names inside it.
tree="$work/tree"
if [ ! -f "$tree/.copied" ]; then
  rm -rf "$tree"; cp -a "$src" "$tree"; touch "$tree/.copied"
fi
mkdir -p "$tree/payload"
cp "$kernel" "$tree/payload/bzImage"
cp "$initrd" "$tree/payload/initrd"
cp "$ucode"/microcode-*.bin "$tree/payload/"

start=$(date +%s)
cd "$tree"
rm -rf build .xcompile
make -s BUILD_TIMELESS=1 defconfig KBUILD_DEFCONFIG="$work/defconfig" >&2
# Every option we set must have survived Kconfig (a missing dependency drops it silently).
bad=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qxF "$line" .config || { echo "build-board: $line did not survive: $(grep "^${line%%=*}=" .config || echo unset)" >&2; bad=1; } ;;
    "# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}; grep -q "^$sym=y" .config && { echo "build-board: $sym is set" >&2; bad=1; } ;;
  esac
done < "$work/defconfig"
[ "$bad" = 0 ] || exit 1
make BUILD_TIMELESS=1 -j"${JOBS:-2}" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
cp build/coreboot.rom "$work/coreboot.rom.tmp"
mv "$work/coreboot.rom.tmp" "$work/coreboot.rom"
echo "$key" > "$work/key"
cp "$work/coreboot.rom" "$rom"
echo "build-board: $board $layout built in $(( $(date +%s) - start )) s" >&2
echo "$rom"
