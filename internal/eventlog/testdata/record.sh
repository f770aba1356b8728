#!/usr/bin/env bash
# Records real firmware event logs for internal/eventlog's golden tests by booting QEMU (TCG)
# with an swtpm and a tiny busybox initramfs that prints the log and the PCR values on the
# serial console.
#
#   record.sh ovmf            OVMF (-bios OVMF.fd), TPM 2.0      -> ovmf-tpm2.*
#   record.sh seabios         QEMU's default SeaBIOS, TPM 2.0    -> seabios-tpm2.*
#   record.sh seabios-tpm12   SeaBIOS with a TPM 1.2 swtpm       -> seabios-tpm12.*
#   record.sh ovmf-tpm12      OVMF with a TPM 1.2 swtpm          -> ovmf-tpm12.*
#   record.sh coreboot ROM [tpm2|tpm12]
#                             a coreboot 4.15 ROM; its log lives in cbmem, not securityfs, so
#                             the host dumps guest RAM with the QEMU monitor (pmemsave) while
#                             the guest waits, and `go run ./internal/eventlog/testdata/cbmemdump`
#                             keeps only the bytes the coreboot-table walk reads (a sparse image)
#                             The ROM's payload is swapped (in a copy, with cbfstool) for the
#                             kernel + this initramfs; KEEP_ROM=path keeps that booted copy.
#                                                        -> coreboot-<tpm>.mem, .pcrs, .serial,
#                             .predicted.json (glint's PCR 2 prediction for the booted ROM)
#   record.sh all             ovmf, seabios, seabios-tpm12, ovmf-tpm12, and coreboot for each
#                             out/coreboot-*.rom or cache/coreboot/*.rom
#
# Outputs (in this directory): NAME.bin (binary_bios_measurements), NAME.pcrs ("bank index hex"
# lines from /sys/class/tpm/tpm0/pcr-BANK/N, or the TPM 1.2 "pcrs" file), NAME.yaml
# (`tpm2_eventlog NAME.bin`, the second opinion the tests compare with), NAME.serial (console).
# Needs: qemu-system-x86_64, swtpm, busybox-static, cpio, tpm2-tools; the kernel from
# scripts/fetch-kernel.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
kernel=${GLINT_KERNEL:-$("$top/scripts/fetch-kernel.sh")}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

mkinitrd() { # $1 = output cpio.gz
  local r="$work/root"
  rm -rf "$r"; mkdir -p "$r"/{bin,proc,sys,dev,tmp}
  cp "$(command -v busybox)" "$r/bin/busybox"
  cat >"$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t securityfs securityfs /sys/kernel/security
echo GLINT-REC-BEGIN
f=/sys/kernel/security/tpm0/binary_bios_measurements
if [ -r "$f" ]; then
  echo GLINT-LOG-BEGIN
  base64 "$f"
  echo GLINT-LOG-END
fi
for d in /sys/class/tpm/tpm0/pcr-*; do
  [ -d "$d" ] || continue
  bank=${d##*pcr-}
  i=0
  while [ $i -lt 24 ]; do echo "GLINT-PCR $bank $i $(cat $d/$i)"; i=$((i+1)); done
done
# TPM 1.2: "PCR-00: 3A 3F ..." in the device's pcrs file
for p in /sys/class/tpm/tpm0/pcrs /sys/class/tpm/tpm0/device/pcrs; do
  [ -r "$p" ] || continue
  sed -n 's/^PCR-\([0-9]*\): *//p' "$p" | { i=0; while read -r line; do echo "GLINT-PCR sha1 $i $(echo $line | tr -d ' ')"; i=$((i+1)); done; }
  break
done
if grep -q glint.dump /proc/cmdline; then
  echo GLINT-WAIT-DUMP
  sleep 600
fi
echo GLINT-REC-END
poweroff -f
EOF
  chmod +x "$r/init"
  (cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$1"
}

# boot NAME TPMVER(2|12) FIRMWARE-ARGS... ; leaves $work/NAME.serial
boot() {
  local name=$1 ver=$2; shift 2
  local d="$work/$name"; mkdir -p "$d/tpm"
  local tpmflag=--tpm2
  [ "$ver" = 12 ] && tpmflag=""
  swtpm socket $tpmflag --tpmstate dir="$d/tpm" --ctrl type=unixio,path="$d/swtpm.sock" \
    --log file="$d/swtpm.log",level=1 --terminate &
  for _ in $(seq 50); do [ -S "$d/swtpm.sock" ] && break; sleep 0.1; done
  local append="console=ttyS0 panic=-1 quiet"
  local dump=0
  if [ "${DUMP:-0}" = 1 ]; then append="$append glint.dump"; dump=1; fi
  timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 1 -m "${MEM:-1024}" \
    -nographic -no-reboot -monitor unix:"$d/mon.sock",server,nowait \
    "$@" \
    -chardev socket,id=chrtpm,path="$d/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
    -device tpm-tis,tpmdev=tpm0 \
    -kernel "$kernel" -initrd "$work/init.cpio.gz" -append "$append" \
    -serial file:"$d/serial" -display none </dev/null &
  local qpid=$!
  if [ $dump = 1 ]; then
    for _ in $(seq 600); do grep -q GLINT-WAIT-DUMP "$d/serial" 2>/dev/null && break; sleep 0.5; done
    grep -q GLINT-WAIT-DUMP "$d/serial" || { echo "record: guest never reached the dump point" >&2; kill $qpid; return 1; }
    # pmemsave writes guest-physical memory; the coreboot tables and cbmem sit below 4 GiB.
    # HMP parses the size as an expression: quote the path or its "/" divides.
    printf 'pmemsave 0 %d "%s"\nquit\n' $(( ${MEM:-1024} * 1024 * 1024 )) "$work/$name.ram" |
      socat - UNIX-CONNECT:"$d/mon.sock" >/dev/null 2>&1 ||
      python3 - "$d/mon.sock" "$work/$name.ram" "${MEM:-1024}" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.3)
s.sendall(b'pmemsave 0 %d "%s"\n' % (int(sys.argv[3]) << 20, sys.argv[2].encode()))
# pmemsave is synchronous: the next prompt means the file is written.
buf = b""
deadline = time.time() + 120
while buf.count(b"(qemu)") < 2 and time.time() < deadline:
    buf += s.recv(65536)
s.sendall(b"quit\n"); time.sleep(0.5)
PY
  fi
  wait $qpid || true
  wait || true
  cp "$d/serial" "$work/$name.serial"
}

# extract NAME: serial console -> NAME.bin, NAME.pcrs
extract() {
  local name=$1 s="$work/$1.serial"
  tr -d '\r' <"$s" >"$s.clean"
  if grep -q GLINT-LOG-BEGIN "$s.clean"; then
    sed -n '/GLINT-LOG-BEGIN/,/GLINT-LOG-END/p' "$s.clean" | sed '1d;$d' | base64 -d >"$here/$name.bin"
    tpm2_eventlog "$here/$name.bin" >"$here/$name.yaml" 2>"$work/$name.yaml.err" ||
      { echo "record: tpm2_eventlog could not read $name.bin: $(cat "$work/$name.yaml.err")" >&2; rm -f "$here/$name.yaml"; }
  else
    echo "record: $name: the firmware left no event log in securityfs" >&2
  fi
  grep '^GLINT-PCR ' "$s.clean" | cut -d' ' -f2- | awk '!seen[$0]++' >"$here/$name.pcrs"
  cp "$s.clean" "$here/$name.serial"
  echo "record: $name: $(stat -c %s "$here/$name.bin" 2>/dev/null || echo no) log bytes, $(wc -l <"$here/$name.pcrs") PCR values"
}

record() {
  case $1 in
  ovmf) boot ovmf-tpm2 2 -bios /usr/share/ovmf/OVMF.fd; extract ovmf-tpm2 ;;
  seabios) boot seabios-tpm2 2; extract seabios-tpm2 ;;
  seabios-tpm12) boot seabios-tpm12 12; extract seabios-tpm12 ;;
  ovmf-tpm12) boot ovmf-tpm12 12 -bios /usr/share/ovmf/OVMF.fd; extract ovmf-tpm12 ;;
  coreboot)
    local rom=$2 ver=${3:-tpm2} n
    n=coreboot-$ver
    local v=2; [ "$ver" = tpm12 ] && v=12
    # coreboot boots its own payload, not QEMU's -kernel: swap the ROM's payload (in a copy)
    # for the Debian kernel with this script's initramfs. PCR 2 then measures that payload,
    # and the log says so; the ROM's other measurements are untouched.
    cp "$rom" "$work/$n.rom"
    cbfstool "$work/$n.rom" remove -n fallback/payload
    cbfstool "$work/$n.rom" add-payload -n fallback/payload -f "$kernel" -I "$work/init.cpio.gz" \
      -C "console=ttyS0 panic=-1 quiet glint.dump"
    DUMP=1 MEM=${MEM:-512} boot "$n" $v -bios "$work/$n.rom"
    extract "$n"
    rm -f "$here/$n.bin" "$here/$n.yaml" # coreboot 4.15 leaves securityfs empty; its log is in cbmem
    (cd "$top" && go run ./internal/eventlog/testdata/cbmemdump "$work/$n.ram" "$here/$n.mem" \
      "$work/$n.rom" "$here/$n.predicted.json")
    sha256sum "$rom" | cut -d' ' -f1 >"$here/$n.rom.sha256"
    # coreboot prints each measurement on the console: "PCR-2 <digest> SHA256 [name]"
    grep -a 'PCR-[0-9]' "$here/$n.serial" >"$here/$n.console-measurements" || true
    if [ -n "${KEEP_ROM:-}" ]; then cp "$work/$n.rom" "$KEEP_ROM"; fi
    ;;
  all)
    for f in ovmf seabios seabios-tpm12 ovmf-tpm12; do record $f; done
    for rom in "$top"/out/coreboot-*.rom "$top"/cache/coreboot/*.rom; do
      [ -f "$rom" ] || continue
      record coreboot "$rom" "$(case $rom in *tpm1*) echo tpm12 ;; *) echo tpm2 ;; esac)"
    done
    return ;;
  *) echo "usage: record.sh ovmf|seabios|seabios-tpm12|ovmf-tpm12|coreboot ROM [tpm2|tpm12]|all" >&2; exit 2 ;;
  esac
}

mkinitrd "$work/init.cpio.gz"
record "$@"
