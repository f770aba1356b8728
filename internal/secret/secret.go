// Package secret is how glint holds secrets in memory: the TOTP/HOTP secret,
// the disk key, PINs and passphrases live in []byte (never in Go strings,
// which cannot be cleared and are copied freely) and are wiped with Wipe as
// soon as they are no longer needed, so a later memory disclosure (a
// crash dump, a kexec'd OS reading glint's old pages) finds zeros.
//
//	pin := []byte(line)
//	defer secret.Wipe(pin)
package secret

// Wipe overwrites b with zeros.
func Wipe(b []byte) {
	clear(b)
}
