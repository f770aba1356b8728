#!/usr/bin/env bash
# The attestation server's benchmarks, side by side in one run (internal/attest/loadtest):
#
#  1. report verifications per second through the whole report path (decode, token, quote
#     signature, log parse + replay, appraisal against the golden set, one transaction) on
#     SQLite and on PostgreSQL, next to the CPU limit: the signature check alone on the same
#     quotes. Real TPM-signed quotes from 4 swtpm instances, one AK per virtual device.
#  2. 10,000 enrolled devices reporting every 5 minutes against one server process (SQLite,
#     TLS; each report a challenge and a report on its own TLS connection): the server's CPU
#     time over the window, as a share of the 2 cores.
#  3. event-log parse + replay against go-attestation (bench/eventlog-goattest.sh).
#
#   bench/attest.sh                 everything (about 10 minutes on 2 cores)
#   GLINT_BENCH_DEVICES=400 GLINT_BENCH_ROUNDS=5 GLINT_BENCH_FLEET=10000 GLINT_BENCH_WINDOW_S=60
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export GLINT_ATTEST_BENCH=1
echo "== report throughput: SQLite, PostgreSQL, signature check alone"
go test -count=1 -timeout 30m -run '^TestThroughput$' -v ./internal/attest/loadtest/ | sed -n '/report verification on/,/needed for/p' | sed 's/^ *//'
echo
echo "== 10,000 devices every 5 minutes (one server process, SQLite, TLS)"
go test -count=1 -timeout 60m -run '^TestFleet10k$' -v ./internal/attest/loadtest/ | grep -E 'enrolled in|10,000-device load' | sed 's/^ *//'
echo
echo "== event-log parse + replay against go-attestation"
bash "$top/bench/eventlog-goattest.sh" | tail -4
