package manifest

import (
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/ed25519"
	"github.com/ProtonMail/go-crypto/openpgp/ed448"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/secret"
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
	if k.wiped || pk == nil || pk.Encrypted {
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
	defer secret.Wipe(material)
	h := sha256.New()
	h.Write([]byte("glint owner secret v1\x00"))
	h.Write(pk.PublicKey.Fingerprint)
	h.Write(material)
	return h.Sum(nil), nil
}

// Wipe overwrites the unlocked private key material of the owner key and
// its subkeys and forgets them: call it once the key has signed, before
// glint hands over to the OS. (go-crypto keeps the numbers in big.Ints and
// byte slices; their backing arrays are overwritten in place.)
func (k *KeySigner) Wipe() {
	if k == nil || k.entity == nil {
		return
	}
	wipeKey := func(pk *packet.PrivateKey) {
		if pk == nil {
			return
		}
		switch priv := pk.PrivateKey.(type) {
		case *rsa.PrivateKey:
			wipeInt(priv.D)
			for _, p := range priv.Primes {
				wipeInt(p)
			}
			wipeInt(priv.Precomputed.Dp)
			wipeInt(priv.Precomputed.Dq)
			wipeInt(priv.Precomputed.Qinv)
		case *ecdsa.PrivateKey:
			wipeInt(priv.D)
		case *eddsa.PrivateKey:
			secret.Wipe(priv.D)
		case *ed25519.PrivateKey:
			secret.Wipe(priv.Key)
		case *ed448.PrivateKey:
			secret.Wipe(priv.Key)
		}
		pk.PrivateKey = nil
	}
	k.wiped = true
	wipeKey(k.entity.PrivateKey)
	for i := range k.entity.Subkeys {
		wipeKey(k.entity.Subkeys[i].PrivateKey)
	}
}

func wipeInt(x *big.Int) {
	if x == nil {
		return
	}
	clear(x.Bits())
	x.SetInt64(0)
}
