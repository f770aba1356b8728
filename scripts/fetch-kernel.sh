#!/usr/bin/env bash
# Puts Debian's own signed-off kernel (the one Debian's linux-image-amd64 points to) into
# cache/kernel/vmlinuz without installing it on this machine: the .deb is downloaded with
# apt-get and unpacked with dpkg-deb. The guest machine boots this kernel; glint's payload
# carries it too. Prints the path of vmlinuz. Re-running reuses the cache.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/cache/kernel"
mkdir -p "$dir"
# cache/ holds third-party sources (coreboot has Go files): its own module keeps `go ... ./...` out.
[ -f "$top/cache/go.mod" ] || printf 'module glint.invalid/cache\n' > "$top/cache/go.mod"
if [ -s "$dir/vmlinuz" ] && [ -s "$dir/version" ]; then echo "$dir/vmlinuz"; exit 0; fi
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get update -q >&2
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "$pkg" >&2)
dpkg-deb -x "$tmp"/*.deb "$tmp/x"
ver=${pkg#linux-image-}
cp "$tmp/x/boot/vmlinuz-$ver" "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
cp "$tmp/x/boot/config-$ver" "$dir/config"
# modules the guest may need (dm-crypt lives in modules on Debian) are kept for the OS image
rm -rf "$dir/modules"; mkdir -p "$dir/modules"
cp -a "$tmp/x/lib/modules/$ver" "$dir/modules/"
echo "$ver" > "$dir/version"
echo "$dir/vmlinuz"
