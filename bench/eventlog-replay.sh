#!/usr/bin/env bash
# Replays real firmware event logs with glint and with tpm2_eventlog (tpm2-tools), side by side.
# Both parse the whole log and compute the PCR values it implies; glint also compares them with
# the PCR values the guest recorded (--pcrs), as `glint eventlog replay` does against a TPM.
#
#   bench/eventlog-replay.sh [LOG...]   default: every golden log in internal/eventlog/testdata
#
# Needs hyperfine (scripts/install-deps.sh) and tpm2-tools. The in-process figure (no process
# start-up) comes from `go test -bench ParseReplay ./internal/eventlog/`, printed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
td="$top/internal/eventlog/testdata"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$top" && CGO_ENABLED=0 go build -trimpath -o "$tmp/glint" ./cmd/glint)
logs=("$@")
if [ ${#logs[@]} -eq 0 ]; then logs=("$td"/ovmf-tpm2.bin "$td"/seabios-tpm2.bin "$td"/ovmf-tpm12.bin "$td"/seabios-tpm12.bin); fi
for log in "${logs[@]}"; do
  name=$(basename "$log" .bin)
  pcrs="$td/$name.pcrs"
  bank=sha256; grep -q '^sha256 ' "$pcrs" 2>/dev/null || bank=sha1
  echo "== $name ($(stat -c %s "$log") bytes, bank $bank)"
  glint_cmd="$tmp/glint eventlog replay --bank $bank --pcrs $pcrs $log"
  $glint_cmd >/dev/null   # must pass: the recorded PCRs are what the log replays to
  hyperfine -N --warmup 5 --min-runs 50 --export-markdown "$tmp/$name.md" \
    -n glint "$glint_cmd" -n tpm2_eventlog "tpm2_eventlog $log" >/dev/null
  cat "$tmp/$name.md"; echo
done
echo "== in-process (go test -bench)"
(cd "$top" && go test -run '^$' -bench 'ParseReplay|Parse$|Replay$' -benchmem ./internal/eventlog/ | grep -E '^Benchmark')
