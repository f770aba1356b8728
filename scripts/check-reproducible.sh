#!/usr/bin/env bash
# Checks that glint, its kernel, its payload and the ROMs are reproducible: builds them again in
# a fresh clone of this commit, in another directory, with an empty cache of its own, and
# compares the bytes with this checkout's out/ (run `make build payload rom` here first, and
# `make boards` for the boards). Cold: the kernel build alone is about 15 CPU-minutes.
#
#   scripts/check-reproducible.sh            # glint, kernel, payload, the emulated laptop's ROMs
#   scripts/check-reproducible.sh boards     # ... and the four ThinkPad ROMs
#
# Only Debian's unpacked coreboot source is shared with this checkout (copied, when it is here):
# it is an input, fetched and checked by apt, not something the build makes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-kernel}
scratch=$(mktemp -d /tmp/glint-repro.XXXXXX)
clone="$scratch/elsewhere/glint"
mkdir -p "$(dirname "$clone")"
git clone -q "$top" "$clone"
git -C "$clone" checkout -q "$(git -C "$top" rev-parse HEAD)"
export GLINT_CACHE="$scratch/cache"
cd "$clone"
if [ -f "$top/cache/coreboot-src/.unpacked" ]; then
  mkdir -p "$clone/cache" && cp -a "$top/cache/coreboot-src" "$clone/cache/"
fi
make -s build payload >/dev/null
bash scripts/build-kernel.sh >/dev/null
files=(kernel/bzImage glint glint-payload payload.cpio.xz)
for v in tpm2 tpm1; do
  bash scripts/build-coreboot.sh "$v" >/dev/null
  files+=("coreboot-$v.rom")
done
if [ "$what" = boards ]; then
  for b in x230 t430; do for l in stock maximized; do
    bash scripts/build-board.sh "$b" "$l" >/dev/null
    files+=("boards/$b-$l.rom")
  done; done
fi
bad=0
for f in "${files[@]}"; do
  a=$(sha256sum "$top/out/$f" | cut -d' ' -f1)
  b=$(sha256sum "$clone/out/$f" | cut -d' ' -f1)
  if [ "$a" = "$b" ]; then echo "same      $a  $f"; else echo "DIFFERENT $a $b  $f"; bad=1; fi
done
[ "$bad" = 0 ] && rm -rf "$scratch"
exit "$bad"
