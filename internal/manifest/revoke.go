package manifest

import (
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Revocation of owner keys.
//
// RFC 9580, 5.2.3.31 ("Reason for Revocation") splits revocations into hard
// ones (no reason given, key compromised), which void every signature the
// key ever made, and soft ones (superseded, retired), which void only
// signatures made after the revocation. The date of a signature is what its
// signer wrote into it, though: whoever holds a retired or stolen owner key
// can date a manifest signature a day before the revocation. glint
// therefore treats every revocation of an owner key, primary or signing
// subkey, as hard: once the keyring in the firmware carries it, nothing
// that key signed verifies, whatever date the signature claims.
// (go-crypto alone honours soft revocations only from their date on.)

// RevokedKeyError is a manifest signature made by a revoked owner key.
type RevokedKeyError struct {
	// KeyID is the key that made the signature; Owner is the owner's
	// primary key (equal to KeyID unless a signing subkey signed).
	KeyID, Owner uint64
	// Subkey: the signing subkey is revoked (the owner key itself may be
	// fine). Otherwise the owner's primary key is revoked, and with it every
	// subkey.
	Subkey     bool
	Reason     packet.ReasonForRevocation
	ReasonText string    // the owner's free-text explanation, untrusted for display
	RevokedAt  time.Time // the revocation signature's date
	// SignedAt is the date the manifest signature claims.
	SignedAt time.Time
}

func (e *RevokedKeyError) Error() string {
	what := fmt.Sprintf("owner key %016X", e.Owner)
	if e.Subkey {
		what = fmt.Sprintf("signing subkey %016X of owner key %016X", e.KeyID, e.Owner)
	}
	reason := reasonName(e.Reason)
	if e.ReasonText != "" {
		reason += fmt.Sprintf(": %q", printableText(e.ReasonText))
	}
	return fmt.Sprintf("the manifest is signed by %s, which was revoked on %s (%s). glint treats every revocation of an owner key as hard (RFC 9580, 5.2.3.31): a signature's date (here %s) is what its signer claims, so nothing this key signed is accepted. If you revoked it, sign /boot with a current owner key; if you did not, someone who has the key signed this /boot",
		what, e.RevokedAt.UTC().Format(time.DateOnly), reason, e.SignedAt.UTC().Format(time.DateOnly))
}

func reasonName(r packet.ReasonForRevocation) string {
	switch r {
	case packet.NoReason:
		return "no reason given"
	case packet.KeySuperseded:
		return "key superseded"
	case packet.KeyCompromised:
		return "key compromised"
	case packet.KeyRetired:
		return "key retired"
	}
	return fmt.Sprintf("reason code %d", uint8(r))
}

// printableText keeps a revocation's free text from driving the console.
func printableText(s string) string {
	const maxText = 200
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxText {
		s = s[:maxText] + "…"
	}
	return s
}

// revocationOf returns a *RevokedKeyError if key (as found by the issuer of
// a signature) or its owner key carries a revocation. The revocations were
// checked to be signed by the owner key when the keyring was read
// (go-crypto refuses a keyring with a forged one).
func revocationOf(key openpgp.Key, signedAt time.Time) *RevokedKeyError {
	e := key.Entity
	if e == nil || e.PrimaryKey == nil || key.PublicKey == nil {
		return nil
	}
	mk := func(sig *packet.Signature, subkey bool) *RevokedKeyError {
		r := &RevokedKeyError{KeyID: key.PublicKey.KeyId, Owner: e.PrimaryKey.KeyId, Subkey: subkey,
			Reason: packet.NoReason, ReasonText: sig.RevocationReasonText, RevokedAt: sig.CreationTime, SignedAt: signedAt}
		if sig.RevocationReason != nil {
			r.Reason = *sig.RevocationReason
		}
		return r
	}
	if len(e.Revocations) > 0 {
		return mk(e.Revocations[0], false)
	}
	if key.PublicKey.KeyId != e.PrimaryKey.KeyId {
		for _, sk := range e.Subkeys {
			if sk.PublicKey != nil && sk.PublicKey.KeyId == key.PublicKey.KeyId && len(sk.Revocations) > 0 {
				return mk(sk.Revocations[0], true)
			}
		}
	}
	return nil
}
