// Package luks is glint's side of disk unlocking: it reads and measures
// LUKS headers, manages the keyslot that holds glint's disk unlock key (DUK)
// through the real cryptsetup, and builds the small cpio that hands the key
// to the OS initrd. Sealing the key to the TPM is package sealed's job (its
// disk half uses this package); the boot flow calls it before kexec.
//
// # The threat
//
// An attacker with the disk (evil maid, a border search, a stolen laptop
// returned) can rewrite the LUKS header without knowing any passphrase:
// swap in a complete header of their own (with a cipher_null keyslot, any
// passphrase opens it, so the OS boots the attacker's plaintext root), point
// the data segment elsewhere, downgrade a cipher, or plant reencryption
// metadata so that the next legitimate unlock decrypts the disk in place
// (CVE-2021-4122). If glint unsealed and injected the DUK regardless, the
// machine would unlock attacker-chosen metadata with no human looking.
//
// So glint measures the header into PCR 6 before it unseals the DUK (the
// DUK is sealed to PCR 6 among others), and keeps a Summary of the header
// beside the sealed key. Any change makes the TPM refuse, and Compare says
// what changed ("keyslot 3 added", "UUID changed", "segment 0 cipher changed
// from aes-xts-plain64 to cipher_null-ecb") before the owner types a
// passphrase into a possibly tampered system.
//
// # What is measured, and why all of it
//
// Measure hashes (SHA-256) every byte from the start of the device to the
// end of the keyslot area: both LUKS2 header copies with their JSON and the
// whole keyslot area (LUKS2: 2*hdr_size + keyslots_size, normally 16 MiB;
// LUKS1: the phdr up to the end of the last key-material area), zero padded
// to 4 KiB. That is byte for byte the file `cryptsetup luksHeaderBackup`
// writes, so `sha256sum` of a backup made on any Linux gives the same value
// (tested), and it is what Heads measures.
//
// Measuring only the JSON would be smaller, and a new keyslot does not give
// an attacker the volume key. But the keyslot area is what cryptsetup reads
// before it has decided anything, and measuring all of it removes the need
// to reason about which bytes matter: restoring an old header backup (with
// a passphrase the owner revoked), overwriting key material, or hiding data
// in unused header space all change the digest. The cost is deliberate: any
// passphrase change made from the OS, even the owner's, needs a reseal, and
// the mismatch message names the slot so the owner recognises their own
// change. The encrypted data after the keyslot area is not measured.
//
// The digest alone decides; the Summary only explains. The Summary comes
// from the same header, parsed the way cryptsetup would (the copy with the
// higher seqid when both are valid, the secondary when the primary is
// damaged), so that its explanation matches what cryptsetup will act on.
//
// # Parsing untrusted headers
//
// ParseHeader reads LUKS1 (LUKS1 On-Disk Format Specification 1.2.3) and
// LUKS2 (LUKS2 On-Disk Format Specification 1.1.x) headers from bytes an
// attacker controls. hdr_size must be one of the nine sizes the spec allows
// (16 KiB to 4 MiB), both copies' checksums are verified, the JSON is capped
// by the header size, keyslot and token counts by 32, keyslot areas must lie
// inside the keyslot area, and every failure is a *HeaderError{Offset,
// Field, Err} wrapping ErrNotLUKS, ErrTruncated, ErrTooLarge, ErrFormat,
// ErrChecksum or ErrUnsupported. Fuzz targets sit beside the parser, seeded
// with headers made by cryptsetup (testdata/, regenerate with -update).
//
// # Keyslots
//
// AddKey, KillSlot and TestKey run the real cryptsetup: writing LUKS
// metadata is cryptsetup's job. Secrets travel through pipes only (the
// existing passphrase on stdin with --key-file=-, the new key on a pipe the
// child sees as /proc/self/fd/3), never argv, never a file. glint's slot is
// 31 on LUKS2 and 7 on LUKS1, as in Heads. glint never overwrites an active
// slot, never touches a slot a LUKS2 token references (systemd-cryptenroll's
// TPM2 token, clevis), and never removes the last slot or one whose own
// passphrase is the only authorisation offered.
//
// # Handing the key to the OS
//
// BuildKeyCpio makes a deterministic newc archive with /secret.key (0400)
// and a crypttab; WriteInitrd appends it to the OS initrd after padding to
// 512 bytes, and the kernel's later copy of a file wins. For initramfs-tools
// (Debian, Ubuntu) the crypttab is /cryptroot/crypttab with
// "NAME UUID=<uuid> /secret.key luks,keyscript=/bin/cat": cryptroot runs
// "/bin/cat /secret.key" and pipes the key to cryptsetup, which works with
// every cryptsetup-initramfs version and was proven in QEMU with a real
// Debian initramfs. Heads writes "/secret.key luks,discard" without the
// keyscript; whether cryptroot then reads the key file depends on its
// version, so glint does not rely on it. For dracut (Fedora, Qubes) the
// file is /etc/crypttab, read by systemd-cryptsetup-generator. ReadInitrd
// reads the OS initrd (cpio, gzip, zstd, xz, bzip2, lz4) to detect the
// generator and keep the OS's own mapper names (root_crypt): the kernel
// command line and fstab refer to them. MergeCrypttab does the rewrite.
//
// # Example
//
//	m, err := luks.Measure("/dev/nvme0n1p3")      // before unsealing
//	// extend m.Digest into PCR 6; unseal; on failure:
//	err = luks.Compare(stored, m)                  // *ChangedError names the change
//	info, _ := luks.ReadInitrd(osInitrd)           // best effort
//	tab := luks.MergeCrypttab(info.Crypttab, []string{m.Summary.UUID})
//	cpio, err := luks.BuildKeyCpio(key, tab, info.Style)
//	defer secret.Wipe(cpio)
//	luks.WriteInitrd(kexecInitrd, osInitrdFile, cpio)
package luks
