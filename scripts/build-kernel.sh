#!/usr/bin/env bash
# Builds glint's payload kernel: the Linux that coreboot (or OVMF in the bench) starts with
# glint's initramfs, from Debian's own Linux source package and the configuration fragment in
# kernel/glint.config. Prints the path of the result, out/kernel/bzImage, with
# out/kernel/config and out/kernel/release beside it.
#
#   scripts/build-kernel.sh            # build (or reuse the cached build)
#   GLINT_CACHE=/some/dir scripts/build-kernel.sh
#
# Source: the package and version pinned in kernel/source (apt-get download; the .deb must have
# the sha256 written there). If Debian no longer offers that version, the newest linux-source-6.1
# is used with a warning: it still builds, but its bytes will not match the published hashes.
#
# Reproducible: build date, user, host and build number are fixed (KBUILD_BUILD_*), no debug
# info, no module signing keys, no version control suffix; the same inputs give the same bytes in
# any directory.
#
# Cached by its inputs: the build is keyed by the hash of the configuration fragment, the source
# package version, this script and the compiler version, and kept in
# ${GLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glint}/kernel/<key>/ outside the checkout, so a
# fresh clone on the same machine, and `make test` with nothing changed, reuse it. The build
# tree is kept too, so a configuration change rebuilds only what changed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache="${GLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glint}/kernel"
out="$top/out/kernel"
fragment="$top/kernel/glint.config"
mkdir -p "$cache" "$out"

read -r pkg ver debsum < <(grep -v '^#' "$top/kernel/source" | head -1)
tools="$(gcc --version | head -1); $(ld --version | head -1)"

# --- 1. the source package ---------------------------------------------------------------------
deb="$cache/dl/${pkg}_${ver}_all.deb"
if [ ! -s "$deb" ]; then
  mkdir -p "$cache/dl"
  if ! apt-cache show "$pkg=$ver" >/dev/null 2>&1; then apt-get update -q >&2 || true; fi
  if ! apt-cache show "$pkg=$ver" >/dev/null 2>&1; then
    newest=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
    if [ -z "$newest" ] || [ "$newest" = "(none)" ]; then
      echo "build-kernel: Debian offers no $pkg package here (is 'main' in the apt sources?)" >&2; exit 1
    fi
    echo "build-kernel: WARNING: $pkg $ver is gone from the archive; building $newest instead." >&2
    echo "build-kernel: WARNING: the kernel (and every ROM) will not match the published hashes; pin $newest in kernel/source." >&2
    ver=$newest; debsum=""
    deb="$cache/dl/${pkg}_${ver}_all.deb"
  fi
  if [ ! -s "$deb" ]; then
    tmp=$(mktemp -d "$cache/dl/tmp.XXXXXX")
    (cd "$tmp" && apt-get download -q "$pkg=$ver" >&2)
    mv "$tmp"/*.deb "$deb.part"; rmdir "$tmp"
    mv "$deb.part" "$deb"
  fi
fi
if [ -n "$debsum" ]; then
  got=$(sha256sum "$deb" | cut -d' ' -f1)
  if [ "$got" != "$debsum" ]; then
    echo "build-kernel: $deb has sha256 $got, kernel/source says $debsum; delete it and retry" >&2; exit 1
  fi
fi

key=$( { echo "$pkg $ver"; cat "$fragment" "$0"; echo "$tools"; } | sha256sum | cut -d' ' -f1)
done_dir="$cache/$key"
if [ -s "$done_dir/bzImage" ]; then
  cp "$done_dir/bzImage" "$done_dir/config" "$done_dir/release" "$out/"
  echo "$ver" > "$out/source-version"
  echo "$out/bzImage"; exit 0
fi

# One build at a time in the shared tree (two checkouts may run make rom together); the one
# that waited may find the other's result.
exec 9>"$cache/.build.lock"
flock 9
if [ -s "$done_dir/bzImage" ]; then
  cp "$done_dir/bzImage" "$done_dir/config" "$done_dir/release" "$out/"
  echo "$ver" > "$out/source-version"
  echo "$out/bzImage"; exit 0
fi

src="$cache/src-$ver"
if [ ! -f "$src/.unpacked" ]; then
  rm -rf "$src" "$src.tmp"; mkdir -p "$src.tmp"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$pkg.tar.xz" | tar -xJ -C "$src.tmp" --strip-components=1
  touch "$src.tmp/.unpacked"
  mv "$src.tmp" "$src"
fi

# --- 2. configure and build ------------------------------------------------------------------
build="$cache/build-$ver"
mkdir -p "$build"
export KBUILD_BUILD_TIMESTAMP="1970-01-01 00:00:00 UTC" KBUILD_BUILD_USER=glint \
  KBUILD_BUILD_HOST=glint KBUILD_BUILD_VERSION=1 LOCALVERSION=
start=$(date +%s)
make -s -C "$src" O="$build" KCONFIG_ALLCONFIG="$fragment" allnoconfig >&2
# Every line of the fragment must have survived: Kconfig silently drops a symbol whose
# dependencies are not met.
bad=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) want=$line ;;
    "# CONFIG_"*" is not set") want=$line ;;
    *) continue ;;
  esac
  if [ "${want:0:1}" = "#" ]; then
    sym=${want#\# }; sym=${sym%% *}
    grep -q "^$sym=" "$build/.config" && { echo "build-kernel: $sym is set, glint.config wants it off" >&2; bad=1; }
  else
    grep -qxF "$want" "$build/.config" || { echo "build-kernel: glint.config asks for $want, the kernel config has: $(grep "^${want%%=*}=\|^# ${want%%=*} " "$build/.config" || echo nothing)" >&2; bad=1; }
  fi
done < "$fragment"
[ "$bad" = 0 ] || { echo "build-kernel: fix kernel/glint.config (a dependency is missing)" >&2; exit 1; }

# The kernel's xz (scripts/xz_wrap.sh: the x86 filter, LZMA2 preset 6, 32 MiB dictionary) with
# lc=4, four literal context bits: 5 KB less bzImage. The boot decompressor (lib/xz) takes any
# lc+lp <= 4. Only the kernel image's own call is changed; make does not see the difference in
# its command line, so the compressed image is made again every time.
cat >"$build/xz-lc4" <<'XZ'
#!/bin/sh
for a in "$@"; do
  shift
  case "$a" in --lzma2=,dict=32MiB) a=--lzma2=lc=4,dict=32MiB ;; esac
  set -- "$@" "$a"
done
exec xz "$@"
XZ
chmod +x "$build/xz-lc4"
rm -f "$build/arch/x86/boot/compressed/vmlinux.bin.xz"
if ! make -C "$src" O="$build" -j"${JOBS:-2}" XZ="$build/xz-lc4" bzImage >"$build/build.log" 2>&1; then
  tail -40 "$build/build.log" >&2; exit 1
fi
release=$(make -s -C "$src" O="$build" kernelrelease)
mkdir -p "$done_dir.tmp"
cp "$build/arch/x86/boot/bzImage" "$done_dir.tmp/bzImage"
cp "$build/.config" "$done_dir.tmp/config"
echo "$release" > "$done_dir.tmp/release"
rm -rf "$done_dir"; mv "$done_dir.tmp" "$done_dir"
cp "$done_dir/bzImage" "$done_dir/config" "$done_dir/release" "$out/"
echo "$ver" > "$out/source-version"
echo "build-kernel: $release built in $(( $(date +%s) - start )) s: $(stat -c %s "$out/bzImage") bytes" >&2
echo "$out/bzImage"
