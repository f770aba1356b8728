// Package qemutest proves glint's disk-key injection against the real thing:
// Debian 12's kernel and REAL initramfs images, unmodified (mkinitramfs from
// initramfs-tools with cryptsetup-initramfs; dracut from dracut-core), unlock
// a real LUKS2 root in a QEMU (TCG) guest.
//
// build-os.sh makes and caches the parts in cache/luks-os/ (the end-to-end
// bench reuses them; `source cache/luks-os/env`): the initramfs images, a
// disk whose LUKS2 volume holds an ext4 root whose /sbin/init prints
// GLINT-E2E-LUKS-ROOT-UP, the recovery passphrase and the LUKS UUID.
//
// Every boot uses the OS initrd exactly as its generator wrote it; what glint
// adds is appended after it. The disk is a copy with a fresh random key in
// keyslot 31, added by luks.AddKey.
//
// TestDebianInitramfsUnlock (initramfs-tools, mapper root_crypt):
//
//   - passphrase: nothing appended. The initramfs asks "Please unlock disk
//     root_crypt:" and the passphrase typed on the serial console opens the
//     root: what the owner sees when glint withholds the key.
//   - glint-key: luks.ReadInitrd learns the style and crypttab of the Debian
//     initrd, luks.MergeCrypttab + luks.BuildKeyCpio make the key cpio, and
//     kexec.WriteInitrd appends it exactly as glint's kexec does (4-byte
//     padding). The root comes up with no prompt.
//   - boot-flow: the cpio internal/boot builds today (one luks.KeyEntry with
//     the recorded mapper name, StyleBoth), appended with luks.WriteInitrd
//     (512-byte padding, Heads' layout). The root comes up with no prompt.
//   - wrong-key: the cpio carries a different random key. With
//     keyscript=/bin/cat, cryptroot retries that key and gives up; it never
//     asks for the passphrase (asserted, so a change is noticed).
//   - proposed-fallback: a keyscript glint does not ship yet (see
//     fallbackKeyscript) tries the key once, then asks for the passphrase.
//
// TestDracutUnlock (dracut + systemd, not hostonly, rd.luks.uuid=, mapper
// luks-<uuid>): passphrase, glint-key (StyleDracut: /etc/crypttab) and
// wrong-key, where systemd-cryptsetup falls back to the prompt by itself.
//
// Run (about 2 minutes on 2 cores, plus ~45 s once to build the cache, which
// needs root: mkinitramfs only reads modules from /lib/modules):
//
//	go test -tags qemu -count=1 -v ./internal/luks/qemutest/
//
// Skips with a message when qemu-system-x86_64, mkinitramfs, cryptsetup or
// busybox-static are missing (TestDracutUnlock also when dracut-core is).
// Serial logs are kept in the test's temp dir and their tail printed on
// failure; GLINT_QEMU_KEEP=DIR copies logs and initrds there.
package qemutest
