//go:build payload

package main

import (
	"errors"

	"github.com/glint-boot/glint/internal/manifest"
)

// The payload build (go build -tags payload, `make payload`) is the glint that runs as /init
// from the flash chip. It leaves out the verbs that only make sense on a workstation or in the
// installed OS, to keep the payload small (docs/kernel.md has the figures): attest, card, disk,
// own, otp (their files carry //go:build !payload). The boot flow itself has everything the
// payload does (attestation, the card, the re-ownership wizard, the sealed secrets); the
// recovery shell keeps the inspection and repair verbs: verify, eventlog, pcrs, boot, rom,
// host, flash, iso, manifest, policy, rootfs, tpm, sign.

// cardFlags and cardSigner stand in for card.go's: `glint sign --card` needs the card verbs.
type cardFlags struct{ reader, pinFile, adminPINFile *string }

func cardSigner(*env, cardFlags, string) (manifest.Signer, func(), error) {
	return nil, nil, errors.New("this is the payload build of glint, which has no card verbs: sign with the card on a workstation (glint sign --card), or with a key file here (--secret-key)")
}
