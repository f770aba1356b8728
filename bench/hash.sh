#!/bin/bash
# bench/hash.sh: glint's /boot hashing against sha256sum on the same tree.
#
#   bash bench/hash.sh [RUNS]
#
# Tree: 2 kernels of 8 MiB, 2 initrds of 60 MiB, 200 files of 1-64 KiB (what
# BenchmarkBuild in internal/manifest uses). The page cache is warmed first,
# so this measures hashing, not the disk. For each tool: best wall time of
# RUNS, MB/s by wall clock, and MB per CPU-second (user+sys), which is the
# per-core efficiency and holds even when other work shares the machine.
set -euo pipefail
RUNS=${1:-5}
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/glint-hashbench-XXXXXX)
trap 'rm -rf "$T"' EXIT

head -c $((8 << 20)) /dev/urandom >"$T/vmlinuz-6.1.0-17-amd64"
head -c $((8 << 20)) /dev/urandom >"$T/vmlinuz-6.1.0-18-amd64"
head -c $((60 << 20)) /dev/urandom >"$T/initrd.img-6.1.0-17-amd64"
head -c $((60 << 20 + 4096)) /dev/urandom >"$T/initrd.img-6.1.0-18-amd64"
mkdir -p "$T/grub/x86_64-efi"
for i in $(seq -w 0 199); do
	head -c $((1024 + RANDOM % (63 * 1024))) /dev/urandom >"$T/grub/x86_64-efi/mod$i.mod"
done
BYTES=$(find "$T" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
find "$T" -type f -exec cat {} + >/dev/null

CGO_ENABLED=0 go build -o "$T.glint" ./cmd/glint
trap 'rm -rf "$T" "$T.glint"' EXIT

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
	printf '%-34s %8.3f s %9.0f MB/s %9.0f MB/cpu-s\n' "$name" "$best" \
		"$(echo "$BYTES / $best / 1000000" | bc -l)" \
		"$(echo "$BYTES / ($bcpu + 0.0001) / 1000000" | bc -l)"
}

seq_sha() { find "$T" -type f -print0 | xargs -0 sha256sum; }
par_sha() { find "$T" -type f -print0 | xargs -0 -P "$(nproc)" -n 4 sha256sum; }

echo "tree: $BYTES bytes in $(find "$T" -type f | wc -l) files; $(nproc) cores; best of $RUNS"
measure "sha256sum (one process)" seq_sha
measure "sha256sum (xargs -P $(nproc))" par_sha
measure "glint manifest hash (1 worker)" "$T.glint" manifest hash -q --workers 1 "$T"
measure "glint manifest hash (all cores)" "$T.glint" manifest hash -q "$T"
echo
echo "single-core SHA-256 limit (crypto/sha256, 1 MiB blocks in memory):"
go test -run XXX -bench 'SHA256$' -benchtime 2000x ./internal/manifest/ | grep Benchmark
