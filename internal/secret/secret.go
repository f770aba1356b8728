// Package secret is how glint holds secrets in memory: the TOTP/HOTP secret,
// the disk key, PINs and passphrases live in []byte (never in Go strings,
// which cannot be cleared and are copied freely) and are wiped with Wipe as
// soon as they are no longer needed, so a later memory disclosure (a
// crash dump, a kexec'd OS reading glint's old pages) finds zeros.
//
//	pin := []byte(line)
//	defer secret.Wipe(pin)
package secret

import "runtime"

// Wipe overwrites b with zeros. Go may have copied a secret elsewhere (a
// moving GC does not exist in Go today, but a grown slice leaves its old
// array behind), so code that holds keys keeps them in one slice from
// start to end and wipes that.
func Wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}
