#!/usr/bin/env bash
# Puts Debian's Xen hypervisor (the xen-4.17-amd64.gz that a Qubes-style
# grub.cfg's multiboot2 line names) into cache/xen/ without installing it: the
# .deb is downloaded with apt-get and unpacked with dpkg-deb. The kexec tests
# parse its Multiboot2 header and ELF and build kexec segments from it.
# Prints the path of the .gz. Re-running reuses the cache.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
dir="$top/cache/xen"
mkdir -p "$dir"
if [ -s "$dir/xen.gz" ]; then echo "$dir/xen.gz"; exit 0; fi
pkg=$(apt-cache search --names-only '^xen-hypervisor-4\.[0-9]+-amd64$' 2>/dev/null | awk '{print $1}' | sort -V | tail -1)
if [ -z "$pkg" ]; then
  apt-get update -q >&2
  pkg=$(apt-cache search --names-only '^xen-hypervisor-4\.[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "$pkg" >&2)
dpkg-deb -x "$tmp"/*.deb "$tmp/x"
gz=$(ls "$tmp"/x/boot/xen-*.gz | head -1)
cp "$gz" "$dir/xen.gz.tmp" && mv "$dir/xen.gz.tmp" "$dir/xen.gz"
echo "$pkg $(basename "$gz")" > "$dir/version"
echo "$dir/xen.gz"
