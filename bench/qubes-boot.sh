#!/usr/bin/env bash
# bench/qubes-boot.sh DIR: fill DIR like Qubes OS 4.2's /boot (BIOS install, grub2): 285 files,
# 63 MB, of random bytes. Used by bench/verify.sh; sizes are those of a Qubes 4.2.3 dom0.
#
#   initramfs-6.6.48-1.qubes.fc37.x86_64.img   45 000 000 bytes (dracut, all of dom0's drivers)
#   vmlinuz-6.6.48-1.qubes.fc37.x86_64         11 000 000
#   xen-4.17.4.gz                               1 100 000
#   grub2/grub.cfg, grub2/grubenv               (text)
#   grub2/i386-pc/*.mod                         280 modules of 1-40 KiB, 5.9 MB in all
set -euo pipefail
B=$1
mkdir -p "$B/grub2/i386-pc"
head -c 45000000 /dev/urandom >"$B/initramfs-6.6.48-1.qubes.fc37.x86_64.img"
head -c 11000000 /dev/urandom >"$B/vmlinuz-6.6.48-1.qubes.fc37.x86_64"
head -c 1100000 /dev/urandom >"$B/xen-4.17.4.gz"
# Module sizes spread evenly over 1-40 KiB, fixed (not $RANDOM), so every run hashes the same
# amount: sum = 280 * 20.5 KiB = 5.9 MB.
for i in $(seq 0 279); do
	head -c $((1024 + (i * 39 * 1024) / 279)) /dev/urandom >"$B/grub2/i386-pc/mod$(printf %03d "$i").mod"
done
cat >"$B/grub2/grub.cfg" <<'CFG'
set default="0"
set timeout=5
menuentry 'Qubes, with Xen hypervisor' --class qubes --class gnu-linux --class gnu --class os --class xen {
	insmod part_msdos
	insmod ext2
	multiboot2 /xen-4.17.4.gz placeholder console=none dom0_mem=min:1024M dom0_mem=max:4096M ucode=scan smt=off gnttab_max_frames=2048 gnttab_max_maptrack_frames=4096
	module2 /vmlinuz-6.6.48-1.qubes.fc37.x86_64 placeholder root=/dev/mapper/qubes_dom0-root ro rd.luks.uuid=luks-3d1c1a4e rd.lvm.lv=qubes_dom0/root rhgb quiet
	module2 --nounzip /initramfs-6.6.48-1.qubes.fc37.x86_64.img
}
CFG
printf '# GRUB Environment Block\n%s' "$(head -c 994 /dev/zero | tr '\0' '#')" >"$B/grub2/grubenv"
