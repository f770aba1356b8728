package manifest

import (
	"crypto"
	stded25519 "crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp/ed25519"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/secret"
)

// Algorithm is the owner key's primary-key algorithm (RSA, ECDSA, EdDSA...).
func (k *KeySigner) Algorithm() packet.PublicKeyAlgorithm {
	return k.entity.PrimaryKey.PubKeyAlgo
}

// SignDigest signs a digest with the unlocked primary key exactly as an
// OpenPGP card signs with the same key (OpenPGP card spec 3.4, 7.2.10 PSO:
// COMPUTE DIGITAL SIGNATURE): RSA PKCS#1 v1.5 over the DigestInfo, EdDSA
// over the digest bytes as the message. Both are deterministic, so a key
// file and a card holding the same key give the same bytes; package
// ownerauth relies on that (a backup of a card key administers the TPM the
// card administers). ECDSA is not offered: its signatures are randomised.
func (k *KeySigner) SignDigest(h crypto.Hash, digest []byte) ([]byte, error) {
	pk := k.entity.PrivateKey
	if pk == nil || pk.Encrypted {
		return nil, errors.New("the owner key is not unlocked")
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("digest of %d bytes for %v", len(digest), h)
	}
	switch priv := pk.PrivateKey.(type) {
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(rand.Reader, priv, h, digest)
	case *eddsa.PrivateKey:
		if len(priv.D) != stded25519.SeedSize || len(priv.X) != stded25519.PublicKeySize {
			return nil, errors.New("the owner key is an EdDSA key on a curve other than Ed25519")
		}
		seed := stded25519.NewKeyFromSeed(priv.D)
		defer secret.Wipe(seed)
		return stded25519.Sign(seed, digest), nil
	case *ed25519.PrivateKey:
		if len(priv.Key) < stded25519.SeedSize {
			return nil, errors.New("the owner key's Ed25519 secret is too short")
		}
		seed := stded25519.NewKeyFromSeed(priv.Key[:stded25519.SeedSize])
		defer secret.Wipe(seed)
		return stded25519.Sign(seed, digest), nil
	}
	return nil, fmt.Errorf("raw signatures with a %T owner key are not offered (RSA and Ed25519 are)", pk.PrivateKey)
}
