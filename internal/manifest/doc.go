// Package manifest is glint's signed description of /boot.
//
// Threat: someone with the disk (evil maid, a compromised OS, a stolen
// laptop returned) replaces the kernel, the initrd or the boot menu in the
// unencrypted /boot, or puts back an older, validly signed /boot with a known
// hole. glint refuses to boot either without telling the owner what changed.
//
// What is stored (format and rules: docs/manifest.md, "glint-manifest 1"):
//
//	/boot/glint/manifest       text: counter, default entry, created time,
//	                           then every file (SHA-256, size), directory and
//	                           symlink under /boot, sorted by path
//	/boot/glint/manifest.sig   armored detached OpenPGP signature by the owner
//
// The manifest carries the value of a TPM NV monotonic counter that `glint
// sign` increments; Verify refuses a manifest whose counter is not the TPM's,
// so an older signed pair put back is a rollback, not a valid /boot.
//
// Steps and where they live:
//
//	Build        build.go   walk + parallel streaming SHA-256, symlink checks
//	Marshal/Parse format.go canonical text; the parser takes untrusted bytes
//	Sign/Signer  sign.go    real gpg (smartcards) or pure Go (initramfs);
//	SignBoot     sign.go    the whole `glint sign`, with the counter
//	Write        store.go   atomic pair write (old or new pair after a power cut)
//	Verify       verify.go  signature in Go, counter, every file: *TamperError
//	TamperReport report.go  the findings in words, for the boot menu and glint verify
//	ReadHeads    heads.go   verify a Heads-signed /boot (kexec*.txt, kexec.sig)
//	ReadExpectedNote note.go unsigned hints written by OS package hooks
//
// Example, the boot flow:
//
//	res, err := manifest.Verify("/boot", ownerKeys, tpm)
//	var te *manifest.TamperError
//	if errors.As(err, &te) {
//		note, _ := manifest.ReadExpectedNote("/boot") // why, if the OS said so
//		// show te.Changed/Added/Removed (+ note), offer to re-sign
//	}
package manifest
