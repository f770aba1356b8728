#!/usr/bin/env bash
# Builds a real coreboot 4.15 ROM for the emulated laptop (QEMU q35) with glint as its payload:
#   scripts/build-coreboot.sh tpm2|tpm1   ->  out/coreboot-tpm2.rom | out/coreboot-tpm1.rom
#
# Source: Debian bookworm's own coreboot source package (apt-get source with a private sources
# list, so the host's apt configuration is left alone), unpacked once into cache/coreboot-src.
# The payload is glint's own kernel (scripts/build-kernel.sh, the one users flash) with
# out/payload.cpio.xz (the glint initramfs, `make payload`) as its initrd.
# GLINT_PAYLOAD_KERNEL=debian puts Debian's generic kernel (scripts/fetch-kernel.sh) there
# instead, with a payload that carries its modules (mkpayload -modules).
#
# Reproducible: BUILD_TIMELESS=1 removes build dates from the image, so the same inputs give
# the same bytes in any directory, and so the same PCR 2 value in the guest.
# Cached: the ROM is rebuilt only when the hash of (.config, kernel, initrd, this script) changes.
set -euo pipefail
variant=${1:-tpm2}
case "$variant" in tpm2|tpm1) ;; *) echo "usage: $0 tpm2|tpm1" >&2; exit 2 ;; esac

top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/cache"
out="$top/out"
initrd="${GLINT_PAYLOAD:-$out/payload.cpio.xz}"
rom="$out/coreboot-$variant.rom"
mkdir -p "$out" "$cache"

case "${GLINT_PAYLOAD_KERNEL:-glint}" in
  glint) kernel=$(bash "$top/scripts/build-kernel.sh") ;;
  debian) kernel=$(bash "$top/scripts/fetch-kernel.sh") ;;
  *) echo "build-coreboot: GLINT_PAYLOAD_KERNEL is glint or debian" >&2; exit 2 ;;
esac
[ -s "$initrd" ] || { echo "build-coreboot: $initrd missing: run 'make payload' first" >&2; exit 1; }

# --- 1. Debian's coreboot source package, fetched once (scripts/coreboot-source.sh) ---------
src=$(bash "$top/scripts/coreboot-source.sh")

# --- 2. The configuration ---------------------------------------------------------------
# Payload files are copied next to the tree with fixed names so that the .config (and with it
# the ROM) does not depend on where this checkout lives.
work="$cache/coreboot-build-$variant"
mkdir -p "$work"
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd"
if [ "$variant" = tpm2 ]; then tpm="CONFIG_TPM2=y"; else tpm="CONFIG_TPM1=y"; fi
cat > "$work/defconfig" <<EOF
CONFIG_VENDOR_EMULATION=y
CONFIG_BOARD_EMULATION_QEMU_X86_Q35=y
CONFIG_ANY_TOOLCHAIN=y
CONFIG_COREBOOT_ROMSIZE_KB_16384=y
$tpm
CONFIG_TPM_MEASURED_BOOT=y
CONFIG_PAYLOAD_LINUX=y
CONFIG_PAYLOAD_FILE="payload/vmlinuz"
CONFIG_LINUX_INITRD="payload/initrd"
CONFIG_LINUX_COMMAND_LINE="console=tty0 console=ttyS0,115200 quiet panic=-1"
EOF

key=$( { cat "$work/defconfig" "$0"; sha256sum "$work/vmlinuz" "$work/initrd" | cut -d' ' -f1; } | sha256sum | cut -d' ' -f1)
# The kernel and initrd in the ROM's fallback/payload, kept beside it in this checkout's out/
# (the build tree in the shared cache belongs to whichever checkout built last): the e2e bench
# re-adds them to change the image (e2e row 8).
keep_payload() {
  mkdir -p "$rom.payload"
  cp "$kernel" "$rom.payload/vmlinuz"
  cp "$initrd" "$rom.payload/initrd"
}
if [ -s "$rom" ] && [ -f "$rom.key" ] && [ "$(cat "$rom.key")" = "$key" ]; then
  keep_payload
  echo "build-coreboot: $rom up to date" >&2
  echo "$rom"; exit 0
fi

# A private copy of the tree per variant: the two variants can build in parallel and one
# variant's objects never leak into the other.
tree="$work/tree"
if [ ! -f "$tree/.copied" ]; then
  rm -rf "$tree"; cp -a "$src" "$tree"; touch "$tree/.copied"
fi
mkdir -p "$tree/payload"
cp "$work/vmlinuz" "$tree/payload/vmlinuz"
cp "$work/initrd" "$tree/payload/initrd"

start=$(date +%s)
cd "$tree"
rm -rf build
# xcompile caches which compilers were found; regenerate it each time (cheap) so a later
# gcc-multilib install is picked up.
rm -f .xcompile
make -s BUILD_TIMELESS=1 defconfig KBUILD_DEFCONFIG="$work/defconfig" >&2
make BUILD_TIMELESS=1 -j"${JOBS:-2}" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
# The image is 16 MiB, but the laptops glint targets have 12 MiB of flash for coreboot + kernel
# + initramfs (the rest is the Intel descriptor and ME): report what CBFS holds against that.
used=0
while IFS=$'\t' read -r _ _ type _ _ total; do
  [ "$type" = null ] || used=$((used + total))
done < <(./build/cbfstool build/coreboot.rom print -k | tail -n +2)
budget=$((12 * 1024 * 1024))
echo "build-coreboot: $variant: CBFS files $used bytes of a 12 MiB budget ($((budget - used)) left)" >&2
if [ "$used" -gt "$budget" ]; then
  echo "build-coreboot: WARNING: coreboot + kernel + glint payload exceed 12 MiB of flash; shrink glint or the module list" >&2
  # the emulated flash is 16 MiB, so the bench still runs; GLINT_FLASH_STRICT=1 (release builds) refuses
  if [ -n "${GLINT_FLASH_STRICT:-}" ]; then exit 1; fi
fi
cp build/coreboot.rom "$rom.tmp"
sync "$rom.tmp"
mv "$rom.tmp" "$rom"
echo "$key" > "$rom.key"
keep_payload
echo "build-coreboot: $variant built in $(( $(date +%s) - start )) s" >&2
echo "$rom"
