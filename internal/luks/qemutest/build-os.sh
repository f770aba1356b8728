#!/usr/bin/env bash
# build-os.sh: the "OS" of glint's disk-unlock bench, made from Debian
# packages only, cached in cache/luks-os/ and rebuilt only when an input
# changes (this script, the kernel, the Debian package versions).
#
#   kernel     cache/kernel/vmlinuz (scripts/fetch-kernel.sh, Debian's own)
#   initrd.img a REAL Debian initramfs: mkinitramfs from initramfs-tools with
#              cryptsetup-initramfs, MODULES=most, zstd, for that kernel. Its
#              /cryptroot/crypttab is what an installed system has:
#              "root_crypt UUID=<uuid> none luks" (ask for the passphrase).
#   disk.img   96 MiB, the whole disk is LUKS2 (pbkdf2, 1000 iterations: a
#              test KDF) holding an ext4 root whose /sbin/init (static
#              busybox) prints GLINT-E2E-LUKS-ROOT-UP and powers off.
#   passphrase the recovery passphrase (no trailing newline; keyslot 0)
#   uuid       the LUKS UUID
#   env        all of the above as shell variables (source it)
#
# Boot it: qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -nographic
#   -no-reboot -kernel $LUKS_OS_KERNEL -initrd $LUKS_OS_INITRD
#   -append "$LUKS_OS_CMDLINE" -drive if=virtio,format=raw,file=COPY-OF-disk.img
# (work on a copy: adding a keyslot changes the header).
#
# Prints the path of the env file. Needs root only for one thing: mkinitramfs
# reads modules from /lib/modules/<ver> (hard-coded), and this machine has
# none, so a depmod'ed copy of cache/kernel/modules/<ver> is bind-mounted
# there in a private mount namespace (and /boot/config-<ver> points to
# cache/kernel/config) for the ~40 s of the build; both are removed after,
# under a lock, and never made over something that already exists.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
out="$top/cache/luks-os"
marker=GLINT-E2E-LUKS-ROOT-UP
mapper=root_crypt

for tool in mkinitramfs cryptsetup mkfs.ext4 depmod zstd flock; do
	command -v "$tool" >/dev/null || {
		echo "build-os.sh: $tool missing (bash scripts/install-deps.sh)" >&2
		exit 1
	}
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || {
	echo "build-os.sh: /bin/busybox is missing or not static (apt-get install busybox-static)" >&2
	exit 1
}

kernel=$(bash "$top/scripts/fetch-kernel.sh")
ver=$(cat "$top/cache/kernel/version")
mods="$top/cache/kernel/modules/$ver"
[ -d "$mods/kernel" ] || { echo "build-os.sh: no modules in $mods" >&2; exit 1; }

# Inputs: a change to any of them rebuilds everything.
pkgver() { dpkg-query -W -f='${Package}=${Version} ' "$@" 2>/dev/null || true; }
stamp=$({
	sha256sum "$0" "$kernel" | cut -d' ' -f1
	echo "$ver"
	pkgver initramfs-tools-core cryptsetup-initramfs cryptsetup-bin busybox-static e2fsprogs klibc-utils udev kmod dracut-core systemd
} | sha256sum | cut -d' ' -f1)
mkdir -p "$out"
# One builder at a time (the test and the bench may start together); the
# second finds the first one's result.
exec 8>"$out/.lock"
flock 8
if [ -s "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
	[ -s "$out/initrd.img" ] && [ -s "$out/disk.img" ] && [ -s "$out/env" ]; then
	echo "$out/env"
	exit 0
fi
work=$(mktemp -d "$out/.build.XXXXXX")
link="/lib/modules/$ver"
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM HUP
t0=$(date +%s.%N)

# --- the root filesystem and its LUKS2 container -----------------------
root="$work/root"
# /run, /dev, /proc, /sys: systemd (dracut) moves its mounts there on switch-root.
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,etc}
cp /bin/busybox "$root/bin/busybox"
cat >"$root/sbin/init" <<EOF
#!/bin/busybox sh
# PID 1 of the bench's root filesystem: proves the LUKS root is mounted.
bb=/bin/busybox
\$bb mount -t proc proc /proc
echo "GLINT-E2E-ROOT-DEV \$(\$bb awk '\$2 == "/" {print \$1}' /proc/mounts | \$bb tail -n 1)"
echo "$marker uptime=\$(\$bb cut -d' ' -f1 /proc/uptime)"
\$bb sync
\$bb poweroff -f
EOF
chmod 0755 "$root/sbin/init" "$root/bin/busybox"
echo "glint LUKS root" >"$root/etc/glint-marker"
# systemd (dracut's initrd) refuses to switch to a root without os-release.
printf 'NAME="glint LUKS bench root"\nID=glint-bench\n' >"$root/etc/os-release"

# The passphrase has no newline: cryptsetup --key-file uses every byte, and
# askpass (typed on the console) strips the newline the typist sends.
printf 'glint-recovery-%s' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/passphrase"
chmod 0600 "$work/passphrase"

truncate -s 96M "$work/disk.img"
# A 64 MiB filesystem filled from the directory without mounting it; the
# last 32 MiB are room for the LUKS2 header reencrypt puts in front.
mkfs.ext4 -q -F -L glint-root -E root_owner=0:0 -d "$root" "$work/disk.img" 64M
cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 32M \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$work/passphrase" --batch-mode "$work/disk.img" >/dev/null
uuid=$(cryptsetup luksUUID "$work/disk.img")
cryptsetup open --test-passphrase --key-file "$work/passphrase" "$work/disk.img"
t1=$(date +%s.%N)

# --- the Debian initramfs -------------------------------------------------
# A private, self-contained config dir (mkinitramfs -d): the host's
# /etc/initramfs-tools is neither read nor changed.
conf="$work/conf"
mkdir -p "$conf"/{conf.d,hooks,scripts}
cat >"$conf/initramfs.conf" <<'EOF'
# Debian 12's defaults (initramfs-tools 0.142), as an installed system has.
MODULES=most
BUSYBOX=auto
KEYMAP=n
COMPRESS=zstd
DEVICE=
NFSROOT=auto
RUNSIZE=10%
FSTYPE=auto
EOF
# MODULES=most already has these; listed so a change of policy cannot drop them.
printf '%s\n' virtio_pci virtio_blk dm_mod dm_crypt ext4 xts algif_skcipher >"$conf/modules"
# Older cryptsetup-initramfs releases read CRYPTSETUP=y (conf-hook) to force
# the hook into the image; 2.6.1 always runs it and ignores the variable.
echo "CRYPTSETUP=y" >"$conf/conf.d/cryptsetup"
# The one thing an installed system has that this machine lacks: a root in
# /etc/crypttab. Debian's hook would write exactly this line for it (the
# device resolved to UUID=, key "none"); the hook runs after Debian's own
# hooks (mkinitramfs runs $CONFDIR/hooks last).
cat >"$conf/hooks/glint-crypttab" <<'EOF'
#!/bin/sh
case "$1" in prereqs) exit 0 ;; esac
mkdir -p "$DESTDIR/cryptroot"
printf '%s UUID=%s none luks\n' "$GLINT_MAPPER" "$GLINT_LUKS_UUID" >"$DESTDIR/cryptroot/crypttab"
EOF
chmod 0755 "$conf/hooks/glint-crypttab"

# Modules as the installed package would have them: depmod'ed. Hard links,
# so the copy costs no space.
modroot="$work/modroot"
mkdir -p "$modroot/lib/modules"
cp -al "$mods" "$modroot/lib/modules/$ver"
depmod -b "$modroot" "$ver"

# mkinitramfs also reads the kernel config from /boot/config-<ver> (to check
# the compressor). The modules are bind-mounted in a private mount namespace
# (a symlink would leak this build's path into the initramfs: copy_file
# follows it), so the host only ever sees an empty /lib/modules/<ver> and a
# symlink /boot/config-<ver>, for the length of the build. The subshell
# holds the lock and undoes its changes on any exit.
(
	flock 9
	made_dir=n made_mnt=n made_cfg=n
	undo() {
		if [ "$made_cfg" = y ]; then rm -f "/boot/config-$ver"; fi
		if [ "$made_mnt" = y ]; then rmdir "$link" 2>/dev/null || true; fi
		if [ "$made_dir" = y ]; then rmdir /lib/modules 2>/dev/null || true; fi
	}
	trap undo EXIT
	trap 'exit 1' INT TERM HUP
	for l in "$link" "/boot/config-$ver"; do
		if [ -e "$l" ] || [ -L "$l" ]; then
			echo "build-os.sh: $l already exists; not touching this machine's files" >&2
			exit 1
		fi
	done
	if [ ! -e /lib/modules ]; then mkdir /lib/modules && made_dir=y; fi
	mkdir "$link" && made_mnt=y
	mkdir -p /boot
	ln -s "$top/cache/kernel/config" "/boot/config-$ver" && made_cfg=y
	GLINT_LUKS_UUID=$uuid GLINT_MAPPER=$mapper CRYPTSETUP=y TMPDIR="$work" \
		unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && exec mkinitramfs -d "$3" -o "$4" "$5"' \
		sh "$modroot/lib/modules/$ver" "$link" "$conf" "$work/initrd.img" "$ver" >"$work/mkinitramfs.log" 2>&1 ||
		{ cat "$work/mkinitramfs.log" >&2; exit 1; }
) 9>/run/lock/glint-lib-modules.lock
t2=$(date +%s.%N)

# --- optional: a dracut initramfs (Fedora/Qubes style) ---------------------
# dracut-core (Debian's dracut without the package that conflicts with
# initramfs-tools) takes the modules directory as an option, so it needs no
# change to the host. Not hostonly, like a distribution's generic initrd:
# it has no crypttab, the volume comes from rd.luks.uuid= on the command
# line and is named luks-<uuid>; systemd-cryptsetup in the initrd unlocks it.
# init=/sbin/init: the bench root has no systemd for the initrd's systemd to
# hand over to (a real Fedora root does).
have_dracut=n
if command -v dracut >/dev/null; then
	mkdir -p "$work/dracut.conf.d"
	dracut --conf /dev/null --confdir "$work/dracut.conf.d" --tmpdir "$work" \
		--no-hostonly --force --kver "$ver" --kmoddir "$modroot/lib/modules/$ver" \
		--add crypt --add-drivers "virtio_pci virtio_blk dm_crypt ext4" \
		--omit "lvm mdraid dmraid plymouth" --compress zstd --no-early-microcode \
		"$work/initrd-dracut.img" >"$work/dracut.log" 2>&1 ||
		{ cat "$work/dracut.log" >&2; exit 1; }
	have_dracut=y
fi
t3=$(date +%s.%N)

# --- publish ---------------------------------------------------------------
# The stamp goes first and comes back last: a run cut short in between
# leaves no stamp, so the next run rebuilds instead of mixing two builds.
rm -f "$out/stamp"
for f in disk.img passphrase initrd.img; do mv "$work/$f" "$out/$f"; done
printf '%s\n' "$uuid" >"$out/uuid"
cp "$work/mkinitramfs.log" "$out/mkinitramfs.log"
rm -f "$out/initrd-dracut.img" "$out/dracut.log"
if [ "$have_dracut" = y ]; then
	chmod 0644 "$work/initrd-dracut.img"
	mv "$work/initrd-dracut.img" "$out/initrd-dracut.img"
	cp "$work/dracut.log" "$out/dracut.log"
fi
cat >"$out/env.tmp" <<EOF
# written by internal/luks/qemutest/build-os.sh; source it
LUKS_OS_KERNEL=$kernel
LUKS_OS_KERNEL_VERSION=$ver
LUKS_OS_INITRD=$out/initrd.img
LUKS_OS_DISK=$out/disk.img
LUKS_OS_PASSFILE=$out/passphrase
LUKS_OS_UUID=$uuid
LUKS_OS_MAPPER=$mapper
LUKS_OS_MARKER=$marker
LUKS_OS_CMDLINE="console=ttyS0 root=/dev/mapper/$mapper ro panic=-1"
EOF
if [ "$have_dracut" = y ]; then
	cat >>"$out/env.tmp" <<EOF
LUKS_OS_DRACUT_INITRD=$out/initrd-dracut.img
LUKS_OS_DRACUT_CMDLINE="console=ttyS0 rd.luks.uuid=$uuid root=/dev/mapper/luks-$uuid ro panic=-1 init=/sbin/init"
EOF
fi
mv "$out/env.tmp" "$out/env"
echo "$stamp" >"$out/stamp"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { printf "build-os.sh: disk %.1f s, initramfs-tools %.1f s, dracut %.1f s\n", b - a, c - b, d - c }' >&2
echo "$out/env"
