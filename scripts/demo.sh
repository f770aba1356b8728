#!/usr/bin/env bash
# `make demo`: the main job on the emulated laptop (real coreboot + glint in QEMU, swtpm as the
# TPM, the project's OpenPGP card simulator as the security key behind QEMU's USB CCID reader).
# A laptop shipped by a vendor is made yours with the re-ownership wizard (menu R); you see the
# QR code and the TOTP code; your firmware's first boot reaches the OS; then a tampered kernel
# is refused. The console is printed as it goes; the transcripts and screenshots are named at
# the end, and the last line says whether every step did what it should.
#
# Needs: scripts/install-deps.sh (make demo runs it), out/glint and out/payload.cpio.xz
# (make build payload); builds the TPM 2.0 coreboot ROM here (cached after the first time).
# The quick demo without the emulated laptop (software TPM only): make demo-swtpm.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
start=$(date +%s)
printf '\033[1;34m== Building the firmware for the emulated laptop (real coreboot 4.15 with glint as its payload; about 3 minutes the first time, cached after)\033[0m\n'
if ! bash scripts/build-coreboot.sh tpm2 >/dev/null; then
	echo "make demo: FAILED: the coreboot ROM did not build (run: bash scripts/build-coreboot.sh tpm2)" >&2
	exit 1
fi
mkdir -p out
GLINT_DEMO=1 GLINT_E2E_SERIAL=1 go test -tags e2e -count=1 -timeout 30m -run '^TestDemo$' -v ./e2e/ 2>&1 | tee out/demo.log
rc=${PIPESTATUS[0]}
took=$(( $(date +%s) - start ))
# a skipped test (a tool missing) passes go test: only a passed TestDemo is a demo
if [ "$rc" -eq 0 ] && ! grep -q -- '--- PASS: TestDemo' out/demo.log; then
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	printf '\033[1;31mmake demo: FAILED after %d s: a step did not show what it should (the --- FAIL or SKIP lines above say which); the transcripts are in out/e2e/demo/*.log\033[0m\n' "$took" >&2
	exit "$rc"
fi
printf '\033[1;32mmake demo: OK in %d s: the laptop is yours, your code matched, the tampered kernel was refused\033[0m\n' "$took"
