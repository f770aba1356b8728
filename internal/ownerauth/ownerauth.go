// Package ownerauth says where the secret behind the TPM's owner and lockout
// authorisations comes from, whether the owner's key is a passphrase-protected
// key file or lives on an OpenPGP card (Nitrokey, YubiKey, Librem Key) that
// never gives its private key away.
//
// Threat: the TPM's owner and lockout authorisations stop code that runs
// after glint (a forced boot, the OS, a root shell) from deleting the
// rollback counter, resetting the PIN lockout or clearing the TPM (package
// tpm, owner.go). They must come back whenever the owner is present and be
// stored nowhere an attacker can read them. tpm.DeriveHierarchyAuth turns
// an owner secret and the TPM's identity into them; this package makes the
// owner secret.
//
// # The three methods
//
// Signature (RSA and Ed25519 keys, on a card or in a file): the owner key
// signs a challenge bound to this TPM,
//
//	challenge = SHA-256("glint TPM owner challenge v1" 0x00 || identity)
//	secret    = SHA-256("glint owner secret v2" 0x00 || signature)
//
// RSA PKCS#1 v1.5 and Ed25519 signatures are deterministic (RFC 8017 8.2,
// RFC 8032 5.1.6): the same key over the same challenge always gives the
// same bytes, so the secret comes back whenever the card (and its user PIN)
// or the key file (and its passphrase) is there, and a key file that is the
// backup of a card key (the wizard's "generate in memory, copy to the card"
// path) gives exactly the card's secret. Forging the signature without the
// key is forging RSA or Ed25519; the owner's ordinary signatures (the /boot
// manifest, published anywhere) are over other digests and reveal nothing
// about this one. The identity in the challenge makes every machine's
// signature different, so a value sniffed on one machine's USB or TPM bus
// opens that machine only.
//
// KeyMaterial (ECDSA keys in a file): SHA-256 over a label and the private
// scalar (manifest.KeySigner.OwnerSecret). ECDSA signatures are randomised,
// so a signature cannot be the secret.
//
// Passphrase (ECDSA keys on a card, such as a Nitrokey 3's NIST P-256):
// the card's signatures are randomised and the OpenPGP card offers no other
// deterministic operation on the signing key, so the wizard makes a TPM
// owner passphrase (Diceware words) that the owner writes down; it is asked
// whenever the TPM must be administered. Sealing the authorisations to the
// boot state was rejected for the reason package tpm gives (a firmware
// update would leave a TPM nobody can administer), and TPM2_PolicySigned
// with the card's key was rejected because TPM 1.2 has nothing like it and
// a hierarchy authorisation cannot be a policy on either family.
//
// The method is a function of the key's algorithm and where the private
// key is, nothing else, so the wizard that takes the TPM and the boot
// menu's administration later always agree:
//
//	m := ownerauth.MethodOf(alg, onCard)
//	secret, err := ownerauth.FromSigner(cardSigner, id)   // Signature
//	auth, err := tpm.DeriveHierarchyAuth(secret, id)
package ownerauth

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// Method is how the owner secret is made.
type Method int

const (
	// Signature: a deterministic signature over a TPM-bound challenge (RSA,
	// Ed25519; card or key file).
	Signature Method = iota + 1
	// KeyMaterial: the private key itself (ECDSA key files).
	KeyMaterial
	// Passphrase: a TPM owner passphrase the owner keeps (ECDSA on a card).
	Passphrase
)

func (m Method) String() string {
	switch m {
	case Signature:
		return "signature of the owner key over a challenge bound to this TPM"
	case KeyMaterial:
		return "the owner key's private material"
	case Passphrase:
		return "the TPM owner passphrase"
	}
	return "unknown method"
}

// MethodOf returns the method for an owner key of algorithm alg whose
// private key is on a card (onCard) or in a key file.
func MethodOf(alg packet.PublicKeyAlgorithm, onCard bool) (Method, error) {
	switch alg {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoEd25519:
		return Signature, nil
	case packet.PubKeyAlgoECDSA:
		if onCard {
			return Passphrase, nil
		}
		return KeyMaterial, nil
	}
	return 0, fmt.Errorf("owner keys of OpenPGP algorithm %d cannot administer the TPM: use RSA, Ed25519 or NIST P-256", alg)
}

// DigestSigner makes a raw signature over a digest: card.Signer (on the
// card, user PIN asked) and manifest.KeySigner (an unlocked key file).
type DigestSigner interface {
	SignDigest(h crypto.Hash, digest []byte) ([]byte, error)
}

// Challenge is what the owner key signs for the TPM with identity id.
func Challenge(id *tpm.Identity) []byte {
	h := sha256.New()
	h.Write([]byte("glint TPM owner challenge v1\x00"))
	h.Write([]byte(id.String()))
	return h.Sum(nil)
}

// ErrNotDeterministic means two signatures of the same challenge differed:
// the key (or the card's implementation of it) cannot make the secret.
var ErrNotDeterministic = errors.New("the owner key gave two different signatures of the same challenge, so it cannot be the source of the TPM's authorisations (ECDSA, or a card that randomises RSA or EdDSA): use a TPM owner passphrase")

// FromSigner is the Signature method: the owner secret for the TPM with
// identity id. The caller wipes it.
func FromSigner(s DigestSigner, id *tpm.Identity) ([]byte, error) {
	if id == nil {
		return nil, errors.New("owner secret: no TPM identity")
	}
	sig, err := s.SignDigest(crypto.SHA256, Challenge(id))
	if err != nil {
		return nil, fmt.Errorf("owner secret: sign the TPM challenge: %w", err)
	}
	defer secret.Wipe(sig)
	return secretOf(sig), nil
}

// CheckDeterministic signs the challenge twice and fails with
// ErrNotDeterministic if the signatures differ. The wizard runs it once
// when it takes the TPM, so a card that randomises is found before the TPM
// depends on it.
func CheckDeterministic(s DigestSigner, id *tpm.Identity) error {
	a, err := FromSigner(s, id)
	if err != nil {
		return err
	}
	defer secret.Wipe(a)
	b, err := FromSigner(s, id)
	if err != nil {
		return err
	}
	defer secret.Wipe(b)
	if !bytes.Equal(a, b) {
		return ErrNotDeterministic
	}
	return nil
}

func secretOf(sig []byte) []byte {
	h := sha256.New()
	h.Write([]byte("glint owner secret v2\x00"))
	h.Write(sig)
	return h.Sum(nil)
}

// MinPassphraseLen is the shortest TPM owner passphrase accepted: the
// wizard's are five Diceware words or more.
const MinPassphraseLen = 16

// FromPassphrase is the Passphrase method: the owner secret from the TPM
// owner passphrase of the owner key with fingerprint fpr (so two owners'
// equal passphrases still differ). The caller wipes it.
func FromPassphrase(passphrase, fpr []byte) ([]byte, error) {
	if len(passphrase) < MinPassphraseLen {
		return nil, fmt.Errorf("a TPM owner passphrase has at least %d characters", MinPassphraseLen)
	}
	h := sha256.New()
	h.Write([]byte("glint TPM owner passphrase v1\x00"))
	h.Write(fpr)
	h.Write([]byte{0})
	h.Write(passphrase)
	return h.Sum(nil), nil
}

// Auth derives the TPM's owner and lockout authorisations from an owner
// secret (tpm.DeriveHierarchyAuth) and wipes the secret.
func Auth(ownerSecret []byte, id *tpm.Identity) (tpm.HierarchyAuth, error) {
	defer secret.Wipe(ownerSecret)
	return tpm.DeriveHierarchyAuth(ownerSecret, id)
}

// FromKeyFile is the owner secret of an unlocked key file: the Signature
// method for RSA and Ed25519 keys, KeyMaterial for ECDSA. The caller wipes
// it.
func FromKeyFile(k *manifest.KeySigner, id *tpm.Identity) ([]byte, error) {
	m, err := MethodOf(k.Algorithm(), false)
	if err != nil {
		return nil, err
	}
	if m == KeyMaterial {
		return k.OwnerSecret()
	}
	return FromSigner(k, id)
}

// FromCard is the owner secret of a card key: the Signature method for RSA
// and Ed25519 keys (the card signs; its user PIN is asked through the
// signer's prompt); for ECDSA keys the TPM owner passphrase, asked through
// passphrase. The caller wipes it.
func FromCard(s *card.Signer, id *tpm.Identity, passphrase func() ([]byte, error)) ([]byte, error) {
	pub := s.Key().Public
	m, err := MethodOf(pub.PubKeyAlgo, true)
	if err != nil {
		return nil, err
	}
	if m == Signature {
		return FromSigner(s, id)
	}
	if passphrase == nil {
		return nil, errors.New("the owner key on the card is an ECDSA key: the TPM owner passphrase is needed and no way to ask for it was given")
	}
	p, err := passphrase()
	if err != nil {
		return nil, err
	}
	defer secret.Wipe(p)
	return FromPassphrase(p, pub.Fingerprint)
}
