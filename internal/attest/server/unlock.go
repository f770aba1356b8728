package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// Network-bound disk unlock (Vaultboot's attested disk encryption, clevis
// and tang's idea with the TPM as the client's proof): a device's LUKS key
// is derived from two halves, one sealed in its own TPM to its PCRs, one
// kept here. The server's half leaves only inside a TPM credential
// (tpm.MakeCredential) for the device's EK and enrolled AK, and only in
// answer to a quote with a Trusted verdict from an approved device. A
// stolen machine that cannot reach this server, or that boots anything
// else, never gets it; an administrator revoking the device stops it too.
//
// At rest the halves are encrypted with the server's unlock key (AES-256-GCM,
// the device row as associated data, so a half cannot be moved to another
// device's row).

func (s *Server) releaseUnlock(ctx context.Context, dev *store.Device, purpose wire.Purpose, a *attest.Appraisal, res *wire.ReportResult) error {
	if s.cfg.UnlockKey == nil {
		res.Summary += "\n  disk unlock: this server does not release disk keys (it was started without --unlock-key)"
		return nil
	}
	if a.Verdict != wire.Trusted {
		s.metrics.unlock("refused")
		res.Summary += "\n  disk unlock: refused, the verdict is not trusted"
		return nil
	}
	var fresh []byte
	if purpose == wire.PurposeUnlockSetup {
		half := make([]byte, tpm.CredentialSecretSize)
		rand.Read(half)
		defer secret.Wipe(half)
		var err error
		if fresh, err = s.sealHalf(dev.Row, half); err != nil {
			return err
		}
	}
	sealed, err := s.store.UnlockSecret(ctx, dev.Row, fresh, s.now())
	if errors.Is(err, store.ErrNotFound) {
		s.metrics.unlock("none")
		res.Summary += "\n  disk unlock: this device has no disk-key half here (run glint attest unlock-setup first)"
		return nil
	}
	if err != nil {
		return err
	}
	half, err := s.openHalf(dev.Row, sealed)
	if err != nil {
		return err
	}
	defer secret.Wipe(half)
	cred, err := tpm.MakeCredential(&tpm.EK{Version: tpm.Version(dev.TPMVersion), Public: dev.EKPublic}, dev.AKPublic, half, rand.Reader)
	if err != nil {
		return &refusal{status: http.StatusInternalServerError, metric: "internal", reason: fmt.Sprintf("credential for the disk key: %v", err)}
	}
	res.Credential = &wire.Credential{EKEncrypted: cred.EKEncrypted, Blob: cred.Blob}
	s.metrics.unlock("released")
	s.log.Printf("attest: disk-key half released to %x (%s, %s)", dev.DeviceID[:8], dev.Hostname, purpose)
	return nil
}

func (s *Server) aead() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.cfg.UnlockKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func rowAD(row int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("glint unlock half v1"), uint64(row))
}

func (s *Server) sealHalf(row int64, half []byte) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	return g.Seal(nonce, nonce, half, rowAD(row)), nil
}

func (s *Server) openHalf(row int64, sealed []byte) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("stored disk-key half is truncated")
	}
	half, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], rowAD(row))
	if err != nil {
		return nil, errors.New("stored disk-key half does not decrypt with this server's unlock key (wrong --unlock-key, or the row was moved)")
	}
	return half, nil
}
