// Package flash writes firmware to the SPI flash chip safely, by driving
// flashrom (the field's tool, Debian's package), and checks signed update
// bundles before anything is written.
//
// The threat is not only an attacker: a firmware update is the one moment
// an owner can brick their own machine or lock themselves out. So every
// update runs the same steps (Update.Run), each shown to the owner and
// each able to stop the update before the chip is touched:
//
//  1. the new image is a coreboot image glint can identify (board from the
//     image's CBFS build_info/config);
//  2. the chip is probed; the image must be exactly the chip's size;
//  3. the chip is read twice and the reads must agree (a loose clip or a
//     bad wire shows here, not after an erase);
//  4. the image must be for the board whose firmware the chip holds;
//  5. internal flashing (-p internal) writes only the flash descriptor's
//     BIOS region (flashrom --ifd -i bios): the descriptor and the ME are
//     locked by the chipset, and a layout that differs from the chip's is
//     refused;
//  6. the owner's CBFS files (glint/*: keys, configuration) are carried
//     from the current firmware into the new image unless --clean;
//  7. the previous contents are kept as a backup with its SHA-256, never
//     overwritten, fsync'd and read back before the write starts;
//  8. a hook re-seals or approves the owner's secrets for the new image's
//     predicted PCR values (so the next boot shows the same TOTP code);
//  9. flashrom writes (and verifies what it wrote);
//  10. glint reads the chip back and compares it with the image itself.
//
// The image written (with the owner files) is kept beside the backup, for
// glint flash verify. A failure before step 9 is an error wrapping
// ErrNotWritten: nothing was written. A failure during or after it names
// the kept backup and the restore command (Restore checks the backup's
// hash before writing it).
// VerifyChip finds a partial image after an interrupted write.
//
// flashrom runs as a subprocess; its output is untrusted text parsed with
// caps (ParseOutput, fuzzed by FuzzParseOutput). The exit status decides
// success; the text only explains. DryRun shows every command without
// writing.
//
// Update bundles (bundle.go, docs/update-bundle.md) are an image with its
// SHA-256 and the publisher's OpenPGP signature, checked against the
// publisher key embedded in the running firmware (CBFS glint/publisher.asc)
// before any step above.
//
// Example (what `glint flash IMAGE` does):
//
//	dev := &flash.Flashrom{Programmer: "internal"}
//	u := &flash.Update{Device: dev, Image: img, Source: "coreboot.rom",
//		BackupDir: "/media/usb/backups", Log: os.Stdout}
//	res, err := u.Run(ctx)
//	if flash.IsNotWritten(err) { /* refused: the chip is untouched */ }
package flash
