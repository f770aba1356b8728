#!/usr/bin/env bash
# The quick demo on a software TPM (swtpm), no emulated laptop: what glint does at every boot,
# shown from the command line. Needs scripts/install-deps.sh to have run.
#   1. read the PCRs                      4. sign a /boot with a real OpenPGP key
#   2. seal a TOTP secret (QR code)       5. verify it, then tamper with it
#   3. show the code, then "change the    6. the refusal names the changed file
#      firmware" and see the refusal
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
glint="$top/out/glint"
[ -x "$glint" ] || make -C "$top" build >/dev/null
work=$(mktemp -d)
cleanup() { [ -f "$work/swtpm.pid" ] && kill "$(cat "$work/swtpm.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

step "Starting a software TPM 2.0 (swtpm) in $work"
mkdir -p "$work/tpm"
swtpm_setup --tpm2 --tpmstate "$work/tpm" --pcr-banks sha1,sha256 --create-config-files skip-if-exist >/dev/null 2>&1 || true
swtpm_setup --tpm2 --tpmstate "$work/tpm" --pcr-banks sha1,sha256 --overwrite >/dev/null
port=$((20000 + RANDOM % 20000))
swtpm socket --tpm2 --tpmstate dir="$work/tpm" --server type=tcp,port=$port \
  --ctrl type=tcp,port=$((port + 1)) --flags not-need-init,startup-clear \
  --daemon --pid file="$work/swtpm.pid"
export GLINT_TPM="swtpm:tcp:127.0.0.1:$port"
boot="$work/boot"
mkdir -p "$boot/grub"

step "glint pcrs: the measurements so far (a fresh TPM: all zero)"
"$glint" pcrs --bank sha256 | head -8

step "glint otp seal: a TOTP secret sealed to PCRs 0-4 and 7; scan the QR code with your phone"
"$glint" --boot "$boot" otp seal --profile coreboot --account "demo laptop"

step "glint otp show: the TPM releases the secret, glint shows the code"
"$glint" --boot "$boot" otp show --profile coreboot

step "Someone reflashes the firmware: coreboot would measure different code into PCR 2"
"$glint" tpm extend 2 "evil firmware"
echo "glint otp show now:"
"$glint" --boot "$boot" otp show --profile coreboot || echo "(exit status $?: refused, and PCR 2 is named)"

step "Signing /boot with the owner's OpenPGP key (a real gpg key in a temporary keyring)"
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key "Demo Owner <owner@example.org>" ed25519 sign never 2>/dev/null
gpg --armor --export > "$work/owner.asc"
head -c 2000000 /dev/urandom > "$boot/vmlinuz-6.1.0-demo"
head -c 3000000 /dev/urandom > "$boot/initrd.img-6.1.0-demo"
printf 'menuentry "Debian GNU/Linux" {\n  linux /vmlinuz-6.1.0-demo root=/dev/sda2 ro quiet\n  initrd /initrd.img-6.1.0-demo\n}\n' > "$boot/grub/grub.cfg"
"$glint" sign --yes --gpg-home "$GNUPGHOME" "$boot"

step "glint verify: signature, every file, and the TPM rollback counter"
"$glint" verify --pubkey "$work/owner.asc" "$boot"

step "An evil maid adds a kernel argument in grub.cfg"
sed -i 's/quiet/quiet init=\/bin\/evil/' "$boot/grub/grub.cfg"
"$glint" verify --pubkey "$work/owner.asc" "$boot" || echo "(exit status $?: refused, and the changed file is named)"

step "Done. Next: 'make e2e' boots the emulated laptop (coreboot + glint in QEMU) through every tamper case."
