#!/usr/bin/env bash
# Unpacks Debian bookworm's own coreboot source package (4.15) once into cache/coreboot-src and
# prints its path. apt-get source runs with a private sources list, so the host's apt
# configuration is left alone. Used by build-coreboot.sh (the emulated laptop) and
# build-board.sh (ThinkPad X230/T430).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/cache"
src="$cache/coreboot-src"
mkdir -p "$cache"
# cache/ holds third-party sources (coreboot has Go files): its own module keeps `go ... ./...` out.
[ -f "$cache/go.mod" ] || printf 'module glint.invalid/cache\n' > "$cache/go.mod"
if [ ! -f "$src/.unpacked" ]; then
  apt="$cache/apt-coreboot"
  mkdir -p "$apt/lists/partial" "$apt/dl"
  echo "deb-src http://deb.debian.org/debian bookworm main" > "$apt/sources.list"
  opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$apt/lists" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -q >&2
  rm -rf "$apt/dl"/*
  (cd "$apt/dl" && apt-get "${opts[@]}" source -q --download-only coreboot >&2)
  rm -rf "$src.tmp"
  dpkg-source -x "$apt/dl"/coreboot_*.dsc "$src.tmp" >&2
  # coreboot's build system makes every warning an error and offers no Kconfig switch for it;
  # newer host compilers warn where 4.15 did not expect it.
  sed -i 's/-Werror\b/-Wno-error/g' "$src.tmp/Makefile.inc"
  touch "$src.tmp/.unpacked"
  rm -rf "$src"; mv "$src.tmp" "$src"
fi
echo "$src"
