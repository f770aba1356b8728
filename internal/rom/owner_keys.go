package rom

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/manifest"
)

// Owner keys in the firmware image: glint verifies the owner's signature on
// /boot with the public keys in CBFS glint/owner.asc. A key that cannot
// verify (no signing-capable key, expired, revoked) would lock the owner
// out on the next boot, so glint refuses to put one into an image; so is a
// secret key, which must never sit in flash.

// ErrUnusableKey: a key in the owner key file cannot verify signatures.
var ErrUnusableKey = errors.New("unusable owner key")

// OwnerKey describes one key of an owner key file.
type OwnerKey struct {
	Fingerprint string // 40 (v4) or 64 (v6) hex digits
	UserIDs     []string
	Algorithm   string
	Created     time.Time
	Expires     time.Time // zero: never
	// SigningKey is the key ID glint verifies with (the primary or a
	// signing subkey), "" when there is none.
	SigningKey string
	// Problem says why the key cannot verify; "" when it can.
	Problem string
}

// CheckOwnerKeys reads an owner key file (armored or binary OpenPGP public
// keys) and says for each key whether glint can verify with it at now. It
// returns ErrUnusableKey (wrapped, with the reasons) when any key cannot, or
// when the file holds secret key material.
func CheckOwnerKeys(untrusted []byte, now time.Time) ([]OwnerKey, error) {
	// The boot reads the first armored block only (manifest.ReadKeyring):
	// keys in a second block would look installed and never be used.
	if n := bytes.Count(untrusted, []byte("-----BEGIN PGP ")); n > 1 {
		return nil, fmt.Errorf("%w: the file holds %d armored blocks and glint reads only the first; export all owner keys into one block: gpg --armor --export KEYID1 KEYID2 > owner.asc", ErrUnusableKey, n)
	}
	el, err := manifest.ReadKeyring(untrusted)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnusableKey, err)
	}
	var keys []OwnerKey
	var problems []string
	for _, e := range el {
		k := describeKey(e, now)
		if e.PrivateKey != nil {
			return nil, fmt.Errorf("%w: %s is a SECRET key; the firmware image holds public keys only (export it with: gpg --armor --export %s > owner.asc)", ErrUnusableKey, k.Fingerprint, k.Fingerprint)
		}
		for _, sk := range e.Subkeys {
			if sk.PrivateKey != nil {
				return nil, fmt.Errorf("%w: %s carries a SECRET subkey; the firmware image holds public keys only (gpg --armor --export %s > owner.asc)", ErrUnusableKey, k.Fingerprint, k.Fingerprint)
			}
		}
		if k.Problem != "" {
			problems = append(problems, fmt.Sprintf("%s (%s): %s", k.Fingerprint, firstOr(k.UserIDs, "no user ID"), k.Problem))
		}
		keys = append(keys, k)
	}
	if len(problems) > 0 {
		return keys, fmt.Errorf("%w: glint could not verify your signatures with it, and the machine would refuse to boot: %s", ErrUnusableKey, strings.Join(problems, "; "))
	}
	return keys, nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func describeKey(e *openpgp.Entity, now time.Time) OwnerKey {
	pk := e.PrimaryKey
	k := OwnerKey{Fingerprint: fmt.Sprintf("%X", pk.Fingerprint), Created: pk.CreationTime, Algorithm: algorithmName(pk)}
	for name := range e.Identities {
		k.UserIDs = append(k.UserIDs, cName([]byte(name)))
	}
	sort.Strings(k.UserIDs)
	sig, _ := e.PrimarySelfSignature()
	if sig != nil && sig.KeyLifetimeSecs != nil && *sig.KeyLifetimeSecs != 0 {
		k.Expires = pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
	}
	switch {
	case len(e.Revocations) > 0:
		// Every revocation is hard for glint (package manifest, revoke.go).
		k.Problem = "revoked"
		if r := e.Revocations[0]; r.RevocationReasonText != "" {
			k.Problem += ": " + cName([]byte(r.RevocationReasonText))
		}
	case sig == nil:
		k.Problem = "no valid self-signature"
	case pk.KeyExpired(sig, now) || sig.SigExpired(now):
		k.Problem = "expired on " + k.Expires.UTC().Format("2006-01-02") + " (extend it with gpg --quick-set-expire " + k.Fingerprint + " 2y, then export it again)"
	}
	if k.Problem != "" {
		return k
	}
	sk, ok := e.SigningKey(now)
	if !ok || len(sk.Revocations) > 0 {
		k.Problem = "no signing key that is valid now (its signing subkey expired or was revoked, or the key only certifies and encrypts): add one with gpg --quick-add-key " + k.Fingerprint + " ed25519 sign, then export it again"
		return k
	}
	k.SigningKey = fmt.Sprintf("%016X", sk.PublicKey.KeyId)
	return k
}

func algorithmName(pk *packet.PublicKey) string {
	bits, _ := pk.BitLength()
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
		return fmt.Sprintf("RSA %d", bits)
	case packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoEd25519:
		return "Ed25519"
	case packet.PubKeyAlgoEd448:
		return "Ed448"
	case packet.PubKeyAlgoECDSA:
		return fmt.Sprintf("ECDSA %d", bits)
	}
	return fmt.Sprintf("algorithm %d", pk.PubKeyAlgo)
}
