#!/usr/bin/env bash
# bench/verify.sh: `glint verify` against Heads' own /boot check on the same tree, side by side
# in one run.
#
#   bash bench/verify.sh [RUNS] [OTHER_GLINT...]   20 timed runs per side by default (about 1 min)
#
# The tree is a Qubes OS 4.2 /boot (BIOS, grub2): 63 MB in 285 files, a 45 MB initramfs, an
# 11 MB dom0 kernel, a 1.1 MB xen.gz, grub.cfg, grubenv and 280 grub modules of 1-40 KiB, of
# random bytes (nothing compresses, nothing dedups), in the page cache.
#
#   heads  what Heads runs before it boots (kexec-select-boot.sh, verify_global_hashes and the
#          tree check): sha256sum kexec*.txt | gpgv kexec.sig; sha256sum -c kexec_hashes.txt;
#          find | sort | cmp kexec_tree.txt. It does not read the TPM.
#   glint  out/glint (make build): glint verify --pubkey owner.asc BOOT: the detached signature
#          over the manifest (Go OpenPGP), the TPM rollback counter (swtpm, TPM 2.0), every
#          file hashed and every path compared, one process.
#   OTHER_GLINT, if given, are more glint binaries (e.g. older builds) run the same way, so a
#   change can be shown before/after in the same run. SIGN_WITH=BINARY signs /boot with
#   another glint (an older one whose manifest format both sides read).
#
# hyperfine times whole processes (start, work, exit); the CPU-time table below it holds
# under load. The breakdown of glint's own time is `go test -bench VerifyQubes ./cmd/glint/`
# (one phase at a time, in process) and its -cpuprofile.
set -euo pipefail
RUNS=${1:-20}
OTHERS=("${@:2}")
top=$(cd "$(dirname "$0")/.." && pwd)
for t in hyperfine swtpm swtpm_setup gpg gpgv sha256sum; do
	command -v "$t" >/dev/null || { echo "bench/verify.sh: $t is not installed (bash scripts/install-deps.sh)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/glint-verifybench-XXXXXX)
cleanup() {
	if [ -f "$T/swtpm.pid" ]; then kill "$(cat "$T/swtpm.pid")" 2>/dev/null || true; fi
	gpgconf --homedir "$T/gnupg" --kill gpg-agent 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

(cd "$top" && make -s build >/dev/null)
GLINT="$top/out/glint"

B="$T/boot"
bash "$top/bench/qubes-boot.sh" "$B"

mkdir "$T/tpm"
swtpm_setup --tpm2 --tpmstate "$T/tpm" --pcr-banks sha1,sha256 >/dev/null
for try in 1 2 3 4 5; do
	PORT=$((20000 + RANDOM % 30000))
	if swtpm socket --tpm2 --tpmstate dir="$T/tpm" --server type=tcp,port=$PORT --ctrl type=tcp,port=$((PORT + 1)) \
		--flags not-need-init,startup-clear --daemon --pid file="$T/swtpm.pid" 2>/dev/null; then
		break
	fi
	if [ $try = 5 ]; then echo "bench/verify.sh: swtpm would not start" >&2; exit 1; fi
done
export GLINT_TPM="swtpm:tcp:127.0.0.1:$PORT"

export GNUPGHOME="$T/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg -q --batch --passphrase '' --quick-gen-key "Bench Owner <owner@example.org>" ed25519 sign never 2>/dev/null
gpg -q --armor --export >"$T/owner.asc"
gpg -q --export >"$T/owner.gpg"
gpg -q --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys >"$T/owner-secret.asc"

# Heads set-up (kexec-sign-config.sh): hash list and tree of every file but kexec* (and glint/,
# so both sides check the same files), signature over `sha256sum kexec*.txt`. Then glint signs
# the same tree (its manifest also covers Heads' files).
(cd "$B" && find ./ -type f ! -path './kexec*' ! -path './glint/*' -print0 | sort -z | xargs -0 sha256sum) >"$B/kexec_hashes.txt"
(cd "$B" && find ./ -type f ! -path './kexec*' ! -path './glint/*' | sort) >"$B/kexec_tree.txt"
(cd "$B" && sha256sum kexec*.txt | gpg -q --batch --detach-sign -a >kexec.sig)
if [ -n "${SIGN_WITH:-}" ]; then
	"$SIGN_WITH" sign --secret-key "$T/owner-secret.asc" "$B" >/dev/null
else
	"$GLINT" sign --yes --secret-key "$T/owner-secret.asc" "$B" >/dev/null
fi

cat >"$T/heads" <<SIDE
#!/bin/bash
set -eo pipefail
cd "$B"
sha256sum kexec*.txt | gpgv -q --keyring "$T/owner.gpg" kexec.sig - 2>/dev/null
sha256sum --quiet -c kexec_hashes.txt
find ./ -type f ! -path './kexec*' ! -path './glint/*' | sort | cmp -s - kexec_tree.txt
SIDE
chmod +x "$T/heads"
sides=("$T/heads" "$GLINT verify --pubkey $T/owner.asc $B")
for o in "${OTHERS[@]}"; do sides+=("$o verify --pubkey $T/owner.asc $B"); done
for side in "${sides[@]}"; do
	if ! $side >/dev/null 2>"$T/err"; then
		echo "bench/verify.sh: '$side' does not pass on the untouched tree:" >&2
		cat "$T/err" >&2
		exit 1
	fi
done
# Each side must also refuse a changed file, or it did not check.
cp "$B/vmlinuz-6.6.48-1.qubes.fc37.x86_64" "$T/orig"
printf x | dd of="$B/vmlinuz-6.6.48-1.qubes.fc37.x86_64" bs=1 seek=5000000 conv=notrunc 2>/dev/null
for side in "$T/heads" "$GLINT verify --pubkey $T/owner.asc $B"; do
	if $side >/dev/null 2>&1; then
		echo "bench/verify.sh: '$side' accepted a changed kernel" >&2
		exit 1
	fi
done
cp "$T/orig" "$B/vmlinuz-6.6.48-1.qubes.fc37.x86_64"
find "$B" -type f -exec cat {} + >/dev/null

echo "/boot: $(find "$B" -type f ! -path '*/glint/*' ! -name 'kexec*' | wc -l) files, $(find "$B" -type f ! -path '*/glint/*' ! -name 'kexec*' -printf '%s\n' | awk '{s += $1} END {print s}') bytes" \
	"(+ Heads' and glint's own files); $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average $(cut -d' ' -f1 /proc/loadavg)"
echo
names=(-n "heads: gpgv + sha256sum -c + tree" "$T/heads" -n "heads: sha256sum -c only" "sha256sum --quiet -c $B/kexec_hashes.txt"
	-n "glint verify" "$GLINT verify --pubkey $T/owner.asc $B")
for o in "${OTHERS[@]}"; do
	names+=(-n "glint verify ($(basename "$o"))" "$o verify --pubkey $T/owner.asc $B")
done
names+=(-n "glint --help (process start)" "$GLINT --help")
cd "$B"
hyperfine -N --warmup 3 --runs "$RUNS" --export-markdown "$T/verify.md" --style basic "${names[@]}" >"$T/hyperfine.txt"
cd "$top"
cat "$T/verify.md"
echo
echo "CPU time per run (user + system of all its processes; holds under load):"
awk '/^Benchmark [0-9]+:/ { sub(/^Benchmark [0-9]+: /, ""); name = $0 }
	/User:/ { match($0, /User: [0-9.]+ ms/); u = substr($0, RSTART + 6, RLENGTH - 9)
		match($0, /System: [0-9.]+ ms/); s = substr($0, RSTART + 8, RLENGTH - 11)
		printf "  %-36s %7.1f ms  (user %s, system %s)\n", name, u + s, u, s }' "$T/hyperfine.txt"
awk '/^Benchmark [0-9]+:/ { sub(/^Benchmark [0-9]+: /, ""); name = $0 }
	/Time \(mean/ { match($0, /[0-9.]+ ms/); t[name] = substr($0, RSTART, RLENGTH - 3) }
	END { h = t["heads: gpgv + sha256sum -c + tree"]; g = t["glint verify"]
		if (h && g) printf "\nglint verify is %.1fx faster than the Heads pipeline (mean wall time, %s ms against %s ms)\n", h / g, g, h }' "$T/hyperfine.txt"
