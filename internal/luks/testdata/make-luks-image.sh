#!/usr/bin/env bash
# make-luks-image.sh: build a LUKS2 disk image with an ext4 filesystem inside,
# offline (no device-mapper, no root mount), for glint's disk-unlock e2e bench.
#
# Usage: make-luks-image.sh OUT.img PASSPHRASE_FILE [MARKER_TEXT]
#
#   OUT.img          written from scratch (96 MiB)
#   PASSPHRASE_FILE  the recovery passphrase, used verbatim (no newline stripping)
#   MARKER_TEXT      content of /glint-marker inside the filesystem
#                    (default "glint disk unlock marker")
#
# Prints the LUKS UUID on stdout. Fast test KDF (pbkdf2, 1000 iterations): never
# use such an image for real data.
#
# How: mkfs.ext4 -d fills a 64 MiB filesystem from a directory without
# mounting it; `cryptsetup reencrypt --encrypt --reduce-device-size 32M` then
# encrypts it in place, putting the LUKS2 header in the 32 MiB the filesystem
# leaves free (shared/reference/emulation-facts.md, "LUKS2 and a real Debian
# initramfs"). Inside a guest: `cryptsetup open IMG root_crypt` and the
# marker is at /glint-marker.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 OUT.img PASSPHRASE_FILE [MARKER_TEXT]" >&2
	exit 2
fi
out=$1
passfile=$2
marker=${3:-glint disk unlock marker}

for tool in mkfs.ext4 cryptsetup; do
	if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
		echo "$0: $tool not found (apt-get install e2fsprogs cryptsetup-bin)" >&2
		exit 1
	fi
done
export PATH="$PATH:/usr/sbin:/sbin"

if [ ! -s "$passfile" ]; then
	echo "$0: passphrase file $passfile is missing or empty" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
printf '%s\n' "$marker" >"$work/root/glint-marker"
chmod 0644 "$work/root/glint-marker"

rm -f "$out"
truncate -s 96M "$out"
# A 64 MiB filesystem; the last 32 MiB of the file are free for reencrypt.
mkfs.ext4 -q -F -L glint-e2e -E root_owner=0:0 -d "$work/root" "$out" 64M
cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 32M \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$passfile" --batch-mode "$out" >&2
cryptsetup luksUUID "$out"
