package approval

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
)

// The approval key's public half lives with the owner's files in the
// firmware (CBFS glint/*, measured into PCR 7 like every owner file), where
// set-up reads it to seal with tpm.Authorizer.SealAuthorized:
//
//	approval.pem  a PEM "PUBLIC KEY" (PKIX): a dedicated key kept offline
//	approval.asc  an OpenPGP key: its first signing-capable RSA or P-256 (sub)key
//	owner.asc     else the owner's own key, if it has such a (sub)key
//
// With none of them the owner has no approval key and secrets are sealed to
// PCR values alone (the TPM 1.2 way: re-seal before an update).
const (
	ApprovalPEMFile = "approval.pem"
	ApprovalPGPFile = "approval.asc"
)

// ErrNoApprovalKey: the owner files name no key the TPM can verify.
var ErrNoApprovalKey = errors.New("no approval key (RSA-2048 or NIST P-256) among the owner files")

// KeyFromOwnerFiles finds the approval key in the owner files (named
// without the glint/ prefix) and says which file it came from.
func KeyFromOwnerFiles(files map[string][]byte) (crypto.PublicKey, string, error) {
	if raw, ok := files[ApprovalPEMFile]; ok {
		k, err := parsePEMPublic(raw)
		if err != nil {
			return nil, ApprovalPEMFile, fmt.Errorf("%s: %w", ApprovalPEMFile, err)
		}
		return k, ApprovalPEMFile, nil
	}
	for _, name := range []string{ApprovalPGPFile, "owner.asc"} {
		raw, ok := files[name]
		if !ok {
			continue
		}
		el, err := manifest.ReadKeyring(raw)
		if err != nil {
			if name == ApprovalPGPFile {
				return nil, name, fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		now := time.Now()
		for _, e := range el {
			var keys []*packet.PublicKey
			if id := e.PrimaryIdentity(); id == nil || id.SelfSignature == nil || id.SelfSignature.FlagSign {
				keys = append(keys, e.PrimaryKey)
			}
			for _, sk := range e.Subkeys {
				if sk.Sig != nil && sk.Sig.FlagSign && !sk.Revoked(now) {
					keys = append(keys, sk.PublicKey)
				}
			}
			for _, k := range keys {
				if pub, err := stdKey(k); err == nil {
					return pub, name, nil
				}
			}
		}
		if name == ApprovalPGPFile {
			return nil, name, fmt.Errorf("%s: %w", name, ErrNoApprovalKey)
		}
	}
	return nil, "", ErrNoApprovalKey
}

// maxPEMPublic bounds an approval.pem (an RSA-4096 PKIX key is ~800 bytes).
const maxPEMPublic = 8 << 10

func parsePEMPublic(untrusted []byte) (crypto.PublicKey, error) {
	if len(untrusted) > maxPEMPublic {
		return nil, fmt.Errorf("%d bytes, more than a public key", len(untrusted))
	}
	block, _ := pem.Decode(untrusted)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New(`no PEM "PUBLIC KEY" block (openssl pkey -pubout writes one)`)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	if _, err := tpm.ApprovalKeyName(k); err != nil {
		return nil, err
	}
	return k, nil
}

// PEMPublic encodes an approval key for glint/approval.pem.
func PEMPublic(k crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
