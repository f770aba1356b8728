package manifest

import (
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/ed25519"
	"github.com/ProtonMail/go-crypto/openpgp/ed448"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
)

// Fingerprint is the signing key's primary-key fingerprint, so a caller can
// check the key is one of the owner keys before using it.
func (k *KeySigner) Fingerprint() []byte {
	return k.entity.PrimaryKey.Fingerprint
}

// OwnerSecret returns a secret only whoever unlocked this owner key has:
// SHA-256 over a fixed label and the owner's primary key's private
// material. It is the input of tpm.DeriveHierarchyAuth, so the TPM's owner
// and lockout authorisations come back whenever the owner unlocks the key
// in glint's menu and are stored nowhere. The key itself never leaves this
// process; the caller wipes the result after use.
func (k *KeySigner) OwnerSecret() ([]byte, error) {
	pk := k.entity.PrivateKey
	if pk == nil || pk.Encrypted {
		return nil, errors.New("owner secret: the owner key is not unlocked")
	}
	var material []byte
	switch priv := pk.PrivateKey.(type) {
	case *rsa.PrivateKey:
		material = priv.D.Bytes()
	case *ecdsa.PrivateKey:
		material = priv.D.Bytes()
	case *eddsa.PrivateKey:
		material = append([]byte(nil), priv.D...)
	case *ed25519.PrivateKey:
		material = append([]byte(nil), priv.Key...)
	case *ed448.PrivateKey:
		material = append([]byte(nil), priv.Key...)
	default:
		return nil, fmt.Errorf("owner secret: keys of type %T are not supported; use an RSA, ECDSA or EdDSA owner key", pk.PrivateKey)
	}
	defer wipeBytes(material)
	h := sha256.New()
	h.Write([]byte("glint owner secret v1\x00"))
	h.Write(pk.PublicKey.Fingerprint)
	h.Write(material)
	return h.Sum(nil), nil
}

func wipeBytes(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
