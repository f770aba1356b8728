#!/usr/bin/env bash
# Records coreboot 4.15's own measurement log (the cbmem "TCPA" log, which coreboot 4.15 does
# not hand to Linux's securityfs) from the bench's real ROMs, as test data for
# internal/eventlog:
#
#   e2e/record-coreboot-log.sh          # both out/coreboot-tpm2.rom and out/coreboot-tpm1.rom
#
# The event-log package owns the recorder (internal/eventlog/testdata/record.sh: boots the ROM
# with its payload swapped for a busybox initramfs that prints the PCRs and waits, dumps guest
# RAM with the QEMU monitor's pmemsave, keeps the bytes the coreboot-table walk reads, and
# saves the serial "PCR-2 ..." lines and the final PCR values). This script builds the ROMs if
# needed and runs it for each, so the data always comes from the ROMs this bench boots.
#
# Outputs: internal/eventlog/testdata/coreboot-{tpm2,tpm12}.{mem,pcrs,serial,rom.sha256,...}
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s rom
rec=internal/eventlog/testdata/record.sh
[ -x "$rec" ] || [ -f "$rec" ] || { echo "record-coreboot-log: $rec missing (internal/eventlog)" >&2; exit 1; }
bash "$rec" coreboot out/coreboot-tpm2.rom tpm2
bash "$rec" coreboot out/coreboot-tpm1.rom tpm12
ls -l internal/eventlog/testdata/coreboot-tpm2.* internal/eventlog/testdata/coreboot-tpm12.*
