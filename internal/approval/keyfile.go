package approval

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/glint-boot/glint/internal/secret"
	"os"

	"github.com/glint-boot/glint/internal/tpm"
)

// KeyFile is an approval key in a PEM file (PKCS#8 "PRIVATE KEY", or "EC
// PRIVATE KEY"): for an owner who keeps a dedicated P-256 approval key on
// an offline stick, and for tests. A key in gpg or on a card: GPGAgent.
type KeyFile struct {
	Path string
	key  crypto.Signer
}

// maxKeyFile bounds a PEM key file (an RSA-4096 PKCS#8 key is ~3.3 KiB).
const maxKeyFile = 16 << 10

func (k *KeyFile) load() error {
	if k.key != nil {
		return nil
	}
	raw, err := readCapped(k.Path, maxKeyFile)
	if err != nil {
		return err
	}
	defer secret.Wipe(raw)
	block, _ := pem.Decode(raw)
	if block == nil {
		return fmt.Errorf("%s: no PEM block", k.Path)
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return fmt.Errorf("%s: a %q PEM block, want PRIVATE KEY", k.Path, block.Type)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", k.Path, err)
	}
	s, ok := parsed.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%s: not a signing key", k.Path)
	}
	if _, err := tpm.ApprovalKeyName(s.Public()); err != nil {
		return fmt.Errorf("%s: %w", k.Path, err)
	}
	k.key = s
	return nil
}

func (k *KeyFile) Public() (crypto.PublicKey, error) {
	if err := k.load(); err != nil {
		return nil, err
	}
	return k.key.Public(), nil
}

func (k *KeyFile) SignDigest(digest []byte) (tpm.SigScheme, []byte, error) {
	if err := k.load(); err != nil {
		return 0, nil, err
	}
	sig, err := k.key.Sign(rand.Reader, digest, crypto.SHA256)
	if err != nil {
		return 0, nil, err
	}
	switch k.key.Public().(type) {
	case *rsa.PublicKey:
		return tpm.SchemeRSASSA, sig, nil
	case *ecdsa.PublicKey:
		return tpm.SchemeECDSA, sig, nil
	}
	return 0, nil, errors.New("unsupported key")
}

func (k *KeyFile) String() string { return "key file " + k.Path }

// WriteKeyFile stores a new key as PKCS#8 PEM, readable by the owner only,
// refusing to overwrite an existing file.
func WriteKeyFile(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
