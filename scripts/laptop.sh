#!/usr/bin/env bash
# `make laptop`: the emulated laptop with its serial console in this terminal (and its screen in
# a window, or on VNC without a display). State is kept in out/laptop between runs; change files
# in out/laptop/boot/ between power-ons to see what glint does. `make laptop-reset` starts anew.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/build-coreboot.sh tpm2 >/dev/null
go test -c -tags e2e -o out/e2e.test ./e2e/
cd e2e
exec env GLINT_LAPTOP=1 ../out/e2e.test -test.run '^TestLaptop$' -test.timeout 0
