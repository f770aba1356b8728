#!/usr/bin/env bash
# Event-log parse + replay: glint and go-attestation (the field's reference verifier) on the same
# logs, in one run, interleaved (-count 5). Both parse the whole log and replay it against the same
# PCR values. "glint" is what the attestation server does for each report (ParseForReplay +
# Verify); "glint-described" also decodes every event into text for people, which
# go-attestation never does. Logs: OVMF (recorded from the emulated laptop), coreboot's
# measurements in the TCG format newer coreboot writes, a 2,000-event log (sha1 + sha256).
# go-attestation is a test dependency only (internal/eventlog/goattest_bench_test.go).
#
#   bench/eventlog-goattest.sh        prints the raw benchmark lines and a table of medians
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp); trap 'rm -f "$out"' EXIT
(cd "$top" && go test -run '^$' -bench 'ParseReplayVsGoAttestation' -benchmem -count "${COUNT:-5}" ./internal/eventlog/) | grep '^Benchmark' | tee "$out"
echo
awk '
  { split($1, p, "/"); lg = p[2]; who = p[3]; sub(/-[0-9]+$/, "", who)
    ns[lg, who, ++n[lg, who]] = $3; allocs[lg, who] = $(NF-1); logs[lg] = 1; whos[who] = 1 }
  function median(lg, who,   k, m, i, j, t, a) {
    m = n[lg, who]; for (i = 1; i <= m; i++) a[i] = ns[lg, who, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((m + 1) / 2)] }
  END {
    printf "%-12s %14s %14s %16s %10s %14s\n", "log", "glint us", "go-attest us", "glint-described", "speed-up", "allocs g/ga"
    for (lg in logs) {
      g = median(lg, "glint"); ga = median(lg, "go-attestation"); gd = median(lg, "glint-described")
      printf "%-12s %14.1f %14.1f %16.1f %9.2fx %8d/%d\n", lg, g / 1000, ga / 1000, gd / 1000, ga / g, allocs[lg, "glint"], allocs[lg, "go-attestation"]
    }
  }' "$out"
