#!/usr/bin/env bash
# Runs every native Go fuzz target briefly (FUZZTIME, default 3s each): CI
# catches a parser that panics on the first mutations of its real seeds.
# Longer runs on demand: FUZZTIME=10m scripts/fuzz-short.sh ./internal/eventlog
set -euo pipefail
fuzztime=${FUZZTIME:-3s}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
n=0
for pkg in $(go list "${pkgs[@]}"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u || true)
  for t in $targets; do
    echo "fuzz $pkg $t ($fuzztime)"
    go test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg" > /tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
    n=$((n+1))
  done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz-short: $n targets ran for $fuzztime each, no failures"
