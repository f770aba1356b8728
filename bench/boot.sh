#!/usr/bin/env bash
# bench/boot.sh: one boot's checks, glint against the shell pipeline Heads runs, on the same
# /boot tree and the same swtpm (TPM 2.0, sha1+sha256 banks), side by side in one run.
#
#   bash bench/boot.sh [RUNS]   10 timed runs per side by default; about 30 s, 1 min under load
#                               (NOGO=1 leaves out the go test -bench part at the end)
#
# Each side does what a Heads-class boot does between "firmware done" and kexec:
#   - check the detached OpenPGP signature (owner key) over the /boot hash list, hash every
#     /boot file against it, and look for files added since signing
#   - read the TPM rollback counter and compare it with the signed value
#   - unseal the TOTP secret sealed to PCRs 0,1,2,3,4,7 (sha256) and compute the code
#   - extend PCR 4 ("leaving"), so the secret does not unseal again in this boot
#
#   heads  Heads' own commands (kexec-select-boot.sh, gui_functions.sh, unseal-totp.sh, tpmr.sh):
#          sha256sum kexec*.txt | gpgv kexec.sig; sha256sum -c kexec_hashes.txt; find | cmp
#          kexec_tree.txt; tpm2_nvread + sha256sum -c kexec_rollback.txt; tpm2_unseal of the
#          persistent object 0x81004d47 (under primary 0x81000000) with -p pcr:sha256:0,1,2,3,4,7;
#          oathtool; tpm2_pcrextend 4
#   shell  the same, but with the sealed object kept in files as glint keeps it (no persistent
#          handles): tpm2_createprimary + tpm2_load + tpm2_unseal, with tpm2_flushcontext in
#          between (swtpm has no resource manager and only 3 object slots)
#   glint  out/glint (make build): glint verify --pubkey owner.asc BOOT; glint otp show;
#          glint tpm extend 4 leaving
#
# Before every timed run the TPM is power-cycled (TPM2_Shutdown, swtpm CMD_INIT, TPM2_Startup:
# PCRs reset, NV and persistent objects kept), outside the timing, so each run is a fresh boot.
# TPM commands per side are counted in swtpm's own log (--log level=20: one "SWTPM_IO_Read"
# per command received), which counts every side the same way, and listed by command code.
# /boot is in the page cache: this compares CPU work and TPM round trips, not the disk.
#
# The whole PID-1 flow in one process (no process start-ups; tpm-cmds/op and own-ms/op measured
# inside glint) is `go test -bench NormalBoot ./internal/boot/`, printed at the end.
set -euo pipefail
RUNS=${1:-10}
top=$(cd "$(dirname "$0")/.." && pwd)
for t in hyperfine swtpm swtpm_setup swtpm_ioctl tpm2_unseal gpg gpgv oathtool xxd sha256sum; do
	command -v "$t" >/dev/null || { echo "bench/boot.sh: $t is not installed (bash scripts/install-deps.sh)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/glint-bootbench-XXXXXX)
cleanup() {
	if [ -f "$T/swtpm.pid" ]; then kill "$(cat "$T/swtpm.pid")" 2>/dev/null || true; fi
	gpgconf --homedir "$T/gnupg" --kill gpg-agent 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

(cd "$top" && make -s build >/dev/null)
GLINT="$top/out/glint"

# /boot as Debian 12 leaves it after one kernel install; random bytes (nothing compresses).
B="$T/boot"
mkdir -p "$B/grub"
head -c $((8 << 20)) /dev/urandom >"$B/vmlinuz-6.1.0-28-amd64"
head -c $((40 << 20)) /dev/urandom >"$B/initrd.img-6.1.0-28-amd64"
head -c 4800000 /dev/urandom >"$B/System.map-6.1.0-28-amd64"
head -c 270000 /dev/urandom >"$B/config-6.1.0-28-amd64"
cat >"$B/grub/grub.cfg" <<'CFG'
set default=0
set timeout=5
menuentry 'Debian GNU/Linux' {
  linux /vmlinuz-6.1.0-28-amd64 root=UUID=0b3c7c5e-2b1a-4f2e-9d8c-2f1f6f0f7a11 ro quiet
  initrd /initrd.img-6.1.0-28-amd64
}
CFG

# TPM 2.0 manufactured as swtpmtest does it; TCP, because tpm2-tools' swtpm TCTI speaks only TCP.
mkdir "$T/tpm"
swtpm_setup --tpm2 --tpmstate "$T/tpm" --pcr-banks sha1,sha256 >/dev/null
for try in 1 2 3 4 5; do
	PORT=$((20000 + RANDOM % 30000))
	if swtpm socket --tpm2 --tpmstate dir="$T/tpm" --server type=tcp,port=$PORT --ctrl type=tcp,port=$((PORT + 1)) \
		--flags not-need-init,startup-clear --log file="$T/swtpm.log",level=20 --daemon --pid file="$T/swtpm.pid" 2>/dev/null; then
		break
	fi
	if [ $try = 5 ]; then echo "bench/boot.sh: swtpm would not start" >&2; exit 1; fi
done
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT" GLINT_TPM="swtpm:tcp:127.0.0.1:$PORT"
cat >"$T/powercycle" <<PC
#!/bin/sh
tpm2_shutdown -c 2>/dev/null
swtpm_ioctl --tcp 127.0.0.1:$((PORT + 1)) -i && tpm2_startup -c
PC
chmod +x "$T/powercycle"

# The owner's key: ed25519, as flow_test.go makes it; no passphrase (signing is not timed).
export GNUPGHOME="$T/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg -q --batch --passphrase '' --quick-gen-key "Bench Owner <owner@example.org>" ed25519 sign never 2>/dev/null
gpg -q --armor --export >"$T/owner.asc"
gpg -q --export >"$T/owner.gpg"
gpg -q --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys >"$T/owner-secret.asc"

# Heads set-up (kexec-sign-config.sh -r, seal-totp.sh): hash list and tree of every /boot file
# but kexec* (and glint/, glint's own records, so both sides hash the same files), rollback
# counter, signature over `sha256sum kexec*.txt`; TOTP secret sealed to 0,1,2,3,4,7 under a
# persistent primary, the sealed object made persistent too. Done before glint signs, so
# glint's manifest covers Heads' files and both sides verify the same tree.
H="$T/heads.d"
mkdir "$H"
(cd "$B" && find ./ -type f ! -path './kexec*' ! -path './glint/*' -print0 | sort -z | xargs -0 sha256sum) >"$B/kexec_hashes.txt"
(cd "$B" && find ./ -type f ! -path './kexec*' ! -path './glint/*' | sort) >"$B/kexec_tree.txt"
tpm2_nvdefine -Q 0x01a1b2c3 -C o -s 8 -a "ownerread|authread|authwrite|nt=1"
tpm2_nvincrement -Q 0x01a1b2c3
tpm2_nvread -Q 0x01a1b2c3 -C o -s 8 -o "$H/counter-01a1b2c3"
sha256sum "$H/counter-01a1b2c3" >"$B/kexec_rollback.txt"
(cd "$B" && sha256sum kexec*.txt | gpg -q --batch --detach-sign -a >kexec.sig)
head -c 20 /dev/urandom >"$H/secret"
tpm2_pcrread -Q sha256:0,1,2,3,4,7 -o "$H/pcrs.bin"
tpm2_createpolicy -Q --policy-pcr -l sha256:0,1,2,3,4,7 -f "$H/pcrs.bin" -L "$H/policy.dat"
tpm2_flushcontext -t; tpm2_flushcontext -s
tpm2_createprimary -Q -C o -g sha256 -G ecc -c "$H/primary.ctx"
tpm2_flushcontext -t
tpm2_create -Q -C "$H/primary.ctx" -L "$H/policy.dat" -a "fixedtpm|fixedparent|adminwithpolicy" \
	-i "$H/secret" -u "$H/totp.pub" -r "$H/totp.priv"
tpm2_flushcontext -t
tpm2_evictcontrol -Q -C o -c "$H/primary.ctx" 0x81000000 >/dev/null
tpm2_flushcontext -t
tpm2_load -Q -C 0x81000000 -u "$H/totp.pub" -r "$H/totp.priv" -c "$H/totp.ctx"
tpm2_evictcontrol -Q -C o -c "$H/totp.ctx" 0x81004d47 >/dev/null
tpm2_flushcontext -t
"$T/powercycle"

# glint set-up: signed manifest + rollback counter, TOTP secret sealed (records under /boot/glint).
"$GLINT" sign --yes --secret-key "$T/owner-secret.asc" "$B" >/dev/null
"$GLINT" --boot "$B" otp seal --profile coreboot --account bench >/dev/null

# One boot per side, each a script run by hyperfine. The shell sides stop at the first
# failure, as Heads refuses to boot.
shellside() { # FILE UNSEAL-LINES
	cat >"$1" <<SIDE
#!/bin/bash
set -eo pipefail
cd "$B"
sha256sum kexec*.txt | gpgv -q --keyring "$T/owner.gpg" kexec.sig - 2>/dev/null
sha256sum --quiet -c kexec_hashes.txt
find ./ -type f ! -path './kexec*' ! -path './glint/*' | sort | cmp -s - kexec_tree.txt
tpm2_nvread -Q 0x01a1b2c3 -C o -s 8 -o "$H/counter-01a1b2c3"
sha256sum --quiet -c kexec_rollback.txt
$2
oathtool --totp "\$secret" >/dev/null
tpm2_pcrextend 4:sha256=\$(printf leaving | sha256sum | cut -c1-64)
SIDE
	chmod +x "$1"
}
shellside "$T/heads" 'secret=$(tpm2_unseal -c 0x81004d47 -p pcr:sha256:0,1,2,3,4,7 | xxd -p -c 64)'
shellside "$T/shell" "tpm2_createprimary -Q -C o -g sha256 -G ecc -c $H/prim.ctx; tpm2_flushcontext -t
tpm2_load -Q -C $H/prim.ctx -u $H/totp.pub -r $H/totp.priv -c $H/totp.ctx; tpm2_flushcontext -t
secret=\$(tpm2_unseal -c $H/totp.ctx -p pcr:sha256:0,1,2,3,4,7 | xxd -p -c 64); tpm2_flushcontext -t"
cat >"$T/glint" <<SIDE
#!/bin/bash
set -e
"$GLINT" verify --pubkey "$T/owner.asc" "$B" >/dev/null
"$GLINT" --boot "$B" otp show --profile coreboot >/dev/null
"$GLINT" tpm extend 4 leaving >/dev/null
SIDE
chmod +x "$T/glint"

# TPM commands per side, from swtpm's log. Each side must pass on a fresh boot and fail on a
# second run without a power cycle (PCR 4 was extended), or it did not really unseal.
cmdcodes() { # LINE: the command codes swtpm received after line LINE of its log
	tail -n +"$1" "$T/swtpm.log" | awk '/SWTPM_IO_Read/ { getline; printf "%s%s%s%s\n", $7, $8, $9, $10 }'
}
ccname() { # TPM 2.0 Part 2, 6.5.2 (TPM_CC)
	case $1 in
	0000017A) echo GetCapability ;; 00000144) echo Startup ;; 00000145) echo Shutdown ;;
	00000131) echo CreatePrimary ;; 00000157) echo Load ;; 00000176) echo StartAuthSession ;;
	0000017F) echo PolicyPCR ;; 0000015E) echo Unseal ;; 00000165) echo FlushContext ;;
	00000182) echo PCR_Extend ;; 0000017E) echo PCR_Read ;; 0000014E) echo NV_Read ;;
	00000169) echo NV_ReadPublic ;; 00000161) echo ContextLoad ;; 00000162) echo ContextSave ;;
	00000173) echo ReadPublic ;; 0000017B) echo GetRandom ;; 00000129) echo HierarchyChangeAuth ;;
	0000018A) echo TestParms ;; 00000189) echo PolicyGetDigest ;; *) echo "0x$1" ;;
	esac
}
declare -A CMDS
echo "/boot: $(find "$B" -type f | wc -l) files, $(du -sb "$B" | cut -f1) bytes; swtpm $(swtpm --version | grep -o '[0-9][0-9.]*' | head -1) TPM 2.0;" \
	"$(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
for side in heads shell glint; do
	"$T/powercycle"
	mark=$(($(wc -l <"$T/swtpm.log") + 1))
	if ! "$T/$side" >/dev/null 2>"$T/$side.err"; then
		echo "bench/boot.sh: the $side side failed on a fresh boot:" >&2
		cat "$T/$side.err" >&2
		exit 1
	fi
	codes=$(cmdcodes "$mark")
	CMDS[$side]=$(grep -c . <<<"$codes")
	echo "$side: ${CMDS[$side]} TPM commands per boot:" \
		"$(sort <<<"$codes" | uniq -c | sort -rn | while read -r n c; do printf '%s %s, ' "$n" "$(ccname "$c")"; done | sed 's/, $//')"
	if "$T/$side" >/dev/null 2>&1; then
		echo "bench/boot.sh: the $side side unsealed again after extending PCR 4: it does not really unseal" >&2
		exit 1
	fi
done
echo

# The last two rows split out the /boot hashing step of each side (glint verify also reads the
# counter from the TPM), to show how much of each side it is.
cd "$B"
hyperfine -N --warmup 1 --runs "$RUNS" --prepare "$T/powercycle" --export-markdown "$T/boot.md" \
	-n heads "$T/heads" -n shell "$T/shell" -n glint "$T/glint" \
	-n "heads: sha256sum -c only" "sha256sum --quiet -c kexec_hashes.txt" \
	-n "glint: verify only" "$GLINT verify --pubkey $T/owner.asc $B" --style basic >"$T/hyperfine.txt"
cd "$top"
cat "$T/boot.md"
echo
echo "CPU time per run (user + system of the side and all its processes; holds under load):"
awk '/^Benchmark [0-9]+:/ { sub(/^Benchmark [0-9]+: /, ""); name = $0 }
	/User:/ { match($0, /User: [0-9.]+ ms/); u = substr($0, RSTART + 6, RLENGTH - 9)
		match($0, /System: [0-9.]+ ms/); s = substr($0, RSTART + 8, RLENGTH - 11)
		printf "  %-26s %7.1f ms  (user %s, system %s)\n", name, u + s, u, s }' "$T/hyperfine.txt"
echo
echo "TPM commands per boot (swtpm log): heads ${CMDS[heads]}, shell ${CMDS[shell]}, glint ${CMDS[glint]}"
echo
echo "== the whole PID-1 flow in one process (go test -bench NormalBoot): unseal, verify, read and"
echo "   re-check kernel + initrd, extend PCR 4, lock the platform hierarchy, TPM shutdown, kexec"
[ -n "${NOGO:-}" ] || (cd "$top" && go test -run '^$' -bench 'NormalBoot' -benchtime 5x ./internal/boot/ | grep -E '^Benchmark')
