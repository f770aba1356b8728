#!/bin/bash
# bench/rootfs.sh: glint's root file system hashing (glint rootfs hash,
# what glint rootfs sign and the boot-time check run) against sha256sum on
# the same tree, in the same run.
#
#   bash bench/rootfs.sh [RUNS] [FILES]        # default 2 runs, 100000 files
#
# Tree: FILES files (default 100,000, about 5 GB) in 1,000 directories under
# usr/: nine in ten of 1-32 KiB, one in ten of 100-700 KiB, the mix of a
# Debian /usr (many small files, the bytes in fewer large ones). The page
# cache is warmed first, so this measures hashing and file-system calls,
# not the disk. For each tool: best wall time of RUNS, files/s and MB/s by
# wall clock, and MB per CPU-second (user+sys). Needs ~5 GB of disk under
# /tmp (or $TMPDIR); the tree is deleted at the end. Run it under `heavy`.
set -euo pipefail
RUNS=${1:-2}
FILES=${2:-100000}
cd "$(dirname "$0")/.."
T=$(mktemp -d "${TMPDIR:-/tmp}/glint-rootfsbench-XXXXXX")
trap 'rm -rf "$T"' EXIT

python3 - "$T" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20)
block = rnd.randbytes(1 << 20)
for i in range(n):
    d = os.path.join(root, "usr", "d%04d" % (i % 1000))
    if i < 1000:
        os.makedirs(d)
    size = rnd.randint(100 << 10, 700 << 10) if i % 10 == 0 else rnd.randint(1 << 10, 32 << 10)
    off = rnd.randint(0, len(block) - size)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(i.to_bytes(8, "little") + block[off:off + size - 8])
EOF
BYTES=$(find "$T" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
NF=$(find "$T" -type f | wc -l)
find "$T" -type f -print0 | xargs -0 cat >/dev/null

CGO_ENABLED=0 go build -trimpath -o "$T.glint" ./cmd/glint
trap 'rm -rf "$T" "$T.glint" "$T.list"' EXIT
"$T.glint" rootfs hash --root "$T" --dirs usr -o "$T.list" 2>/dev/null

measure() { # name command...
	local name=$1 best="" bcpu=""
	shift
	for _ in $(seq "$RUNS"); do
		local t0 c0 t1 c1
		t0=$(date +%s.%N)
		c0=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
		"$@" >/dev/null 2>&1
		t1=$(date +%s.%N)
		c1=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
		local wall cpu
		wall=$(echo "$t1 - $t0" | bc -l)
		cpu=$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then best=$wall; fi
		if [ -z "$bcpu" ] || [ "$(echo "$cpu < $bcpu" | bc -l)" = 1 ]; then bcpu=$cpu; fi
	done
	printf '%-40s %8.2f s %9.0f files/s %7.0f MB/s %7.0f MB/cpu-s\n' "$name" "$best" \
		"$(echo "$NF / $best" | bc -l)" \
		"$(echo "$BYTES / $best / 1000000" | bc -l)" \
		"$(echo "$BYTES / ($bcpu + 0.0001) / 1000000" | bc -l)"
}

seq_sha() { find "$T/usr" -type f -print0 | xargs -0 sha256sum; }
par_sha() { find "$T/usr" -type f -print0 | xargs -0 -P "$(nproc)" -n 256 sha256sum; }

echo "tree: $BYTES bytes in $NF files; $(nproc) cores; best of $RUNS; page cache warm"
measure "sha256sum (find | xargs, one process)" seq_sha
measure "sha256sum (find | xargs -P $(nproc))" par_sha
measure "glint rootfs hash (1 worker)" "$T.glint" rootfs hash --root "$T" --dirs usr --workers 1
measure "glint rootfs hash (default workers)" "$T.glint" rootfs hash --root "$T" --dirs usr
measure "glint rootfs hash --fast-from (unchanged)" "$T.glint" rootfs hash --root "$T" --dirs usr --fast-from "$T.list"
