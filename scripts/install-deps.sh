#!/usr/bin/env bash
# Installs every system package glint's build, demo and tests need (Debian 12 / Ubuntu 22.04+).
# Idempotent: packages already present are skipped by apt-get. Run as root (or with sudo).
set -euo pipefail

pkgs=(
  # TPM: software TPM 2.0/1.2, tools used as a second opinion in tests
  swtpm swtpm-tools tpm2-tools
  # the emulated laptop
  qemu-system-x86 qemu-utils ovmf seabios
  # firmware tools
  flashrom coreboot-utils
  # OpenPGP card tests: a real pcscd with vsmartcard's vpcd driver in front of glint's card
  # simulator, and gpg's scdaemon for the cross-check (internal/card)
  pcscd vsmartcard-vpcd scdaemon
  # disk, keys, codes
  cryptsetup-bin gnupg oathtool e2fsprogs cpio zstd lz4 bzip2
  # guest disks for the end-to-end bench: partition tables, the owner's vfat key stick
  fdisk dosfstools mtools
  # building coreboot 4.15 from Debian's source package
  build-essential gcc-multilib acpica-tools flex bison zlib1g-dev dpkg-dev xz-utils
  # building glint's payload kernel from Debian's linux-source package (objtool needs libelf)
  bc libelf-dev
  # the guest OS pieces (a real Debian initramfs that unlocks LUKS with an injected key)
  busybox-static initramfs-tools-core cryptsetup-initramfs kmod
  # ... and a dracut one (Fedora/Qubes style); dracut-core does not conflict with initramfs-tools
  dracut-core
  # ISO images for the signed USB/ISO boot tests (internal/iso9660, internal/isoboot)
  xorriso
  # the attestation server's test suite runs on SQLite (built in) and on a private PostgreSQL cluster;
  # its dashboard is tested in headless Chromium through chromedriver
  postgresql chromium chromium-driver
  # benchmarks (bench/*.sh compare glint with reference tools side by side)
  hyperfine
  # images for the README
  imagemagick
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
