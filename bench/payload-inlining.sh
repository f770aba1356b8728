#!/usr/bin/env bash
# What turning inlining off (-gcflags=all=-l, the payload build: Makefile PAYLOAD_BUILD) costs the
# payload's own work, side by side in one run: the same benchmarks built with and without it,
# alternating, COUNT runs each. Printed: ns/op of each and the ratio (no inlining / inlining).
#
#   bench/payload-inlining.sh          COUNT=5 by default
#
# The benchmarks: a whole normal power-on up to kexec on a real swtpm (internal/boot
# BenchmarkNormalBoot: unseal, TOTP, verify /boot, hash the kernel and initrd, extend, lock),
# event-log parse and replay (internal/eventlog), CBFS parsing and the PCR 2 prediction
# (internal/rom), hashing a /boot tree (internal/manifest).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
count=${COUNT:-5}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$top"
benches=(
  "./internal/boot NormalBoot"
  "./internal/eventlog ParseReplay$"
  "./internal/rom ParseImage|Predict"
  "./internal/manifest Build"
)
for mode in inline noinline; do   # build both once, warm the page cache
  flags=""; [ "$mode" = noinline ] && flags="-gcflags=all=-l"
  for b in "${benches[@]}"; do
    set -- $b
    go test $flags -run '^$' -bench "$2" -benchtime 1x -count 1 "$1" >/dev/null
  done
done
for i in $(seq "$count"); do
  for mode in inline noinline; do
    flags=""; [ "$mode" = noinline ] && flags="-gcflags=all=-l"
    for b in "${benches[@]}"; do
      set -- $b
      go test $flags -run '^$' -bench "$2" -count 1 "$1" 2>/dev/null | grep -E '^Benchmark' | sed "s/^/$mode /" >> "$tmp/raw"
    done
  done
done
awk '{name=$2; sub(/-[0-9]+$/,"",name); for (i=3;i<=NF;i++) if ($(i+1)=="ns/op") {s[$1" "name]+=$i; n[$1" "name]++; names[name]=1}}
  END {printf "%-40s %14s %14s %7s\n", "benchmark", "inline ns/op", "no-inline ns/op", "ratio";
       for (k in names) { a=s["inline "k]/n["inline "k]; b=s["noinline "k]/n["noinline "k];
         printf "%-40s %14.0f %14.0f %7.2f\n", k, a, b, b/a } }' "$tmp/raw" | sort
