#!/usr/bin/env bash
# `make demo`: the main job on the emulated laptop (coreboot + glint in QEMU, swtpm as the
# TPM, the project's OpenPGP card simulator as the security key). A laptop shipped by a vendor
# is made yours with the re-ownership wizard (menu R); you see the QR code and the TOTP code;
# your firmware's first boot reaches the OS; then a tampered kernel is refused. The console is
# printed as it goes; the transcripts and screenshots are named at the end.
#
# Needs: scripts/install-deps.sh (make demo runs it), out/glint and out/payload.cpio.xz
# (make build payload), and builds the TPM 2.0 coreboot ROM here (cached).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
start=$(date +%s)
printf '\033[1;34m== Building the firmware for the emulated laptop (real coreboot 4.15 with glint as its payload; cached after the first time)\033[0m\n'
bash scripts/build-coreboot.sh tpm2 >/dev/null
GLINT_DEMO=1 GLINT_E2E_SERIAL=1 go test -tags e2e -count=1 -timeout 45m -run '^TestDemo$' -v ./e2e/
echo "make demo: $(( $(date +%s) - start )) s in all (this script: ROM build if needed, Go test build, 5 power-ons)"
