#!/usr/bin/env bash
# Extracts the CPU microcode the boards need from Debian's intel-microcode package (component
# non-free-firmware, which the host's apt sources may lack: a private sources list is used, so
# the host's apt configuration is left alone). Prints the path of a directory holding the files
# named in boards/microcode, in that order, as microcode-N.bin.
#
# The package version and the .deb's sha256 are pinned in boards/microcode. If Debian no longer
# offers that version, the newest is used with a warning (the ROM hashes will then differ from
# the published ones).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache="${GLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glint}/microcode"
mkdir -p "$cache"
mapfile -t lines < <(grep -v '^#' "$top/boards/microcode" | sed '/^$/d')
read -r pkg ver debsum <<<"${lines[0]}"
files=("${lines[@]:1}")

apt="$cache/apt"
opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o APT::Sandbox::User=root)
deb="$cache/${pkg}_${ver}_amd64.deb"
if [ ! -s "$deb" ]; then
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  printf 'deb http://deb.debian.org/debian bookworm non-free-firmware\ndeb http://deb.debian.org/debian-security bookworm-security non-free-firmware\n' > "$apt/sources.list"
  apt-get "${opts[@]}" update -q >&2
  if ! apt-cache "${opts[@]}" show "$pkg=$ver" >/dev/null 2>&1; then
    newest=$(apt-cache "${opts[@]}" policy "$pkg" | awk '/Candidate:/{print $2}')
    [ -n "$newest" ] && [ "$newest" != "(none)" ] || { echo "fetch-microcode: Debian offers no $pkg" >&2; exit 1; }
    echo "fetch-microcode: WARNING: $pkg $ver is gone; using $newest: board ROM hashes will differ from the published ones" >&2
    ver=$newest; debsum=""; deb="$cache/${pkg}_${ver}_amd64.deb"
  fi
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  (cd "$tmp" && apt-get "${opts[@]}" download -q "$pkg=$ver" >&2)
  mv "$tmp"/*.deb "$deb"; rmdir "$tmp"
fi
if [ -n "$debsum" ]; then
  got=$(sha256sum "$deb" | cut -d' ' -f1)
  [ "$got" = "$debsum" ] || { echo "fetch-microcode: $deb has sha256 $got, boards/microcode says $debsum" >&2; exit 1; }
fi
dir="$cache/$ver"
if [ ! -f "$dir/.done" ]; then
  rm -rf "$dir"; mkdir -p "$dir"
  i=0
  for f in "${files[@]}"; do
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./lib/firmware/intel-ucode/$f" > "$dir/microcode-$i.bin"
    [ -s "$dir/microcode-$i.bin" ] || { echo "fetch-microcode: $f is not in $pkg $ver" >&2; exit 1; }
    i=$((i + 1))
  done
  echo "$pkg $ver" > "$dir/version"
  touch "$dir/.done"
fi
echo "$dir"
