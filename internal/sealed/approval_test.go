package sealed

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

// No lock-out on TPM 2.0 (docs/firmware-updates.md): a TOTP secret sealed
// with the owner's approval key survives a firmware change the owner
// approved, with no re-seal; an unapproved change is refused and named.
func TestTOTPSurvivesApprovedFirmwareUpdate(t *testing.T) {
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyFile := filepath.Join(t.TempDir(), "approval.pem")
	must(t, approval.WriteKeyFile(keyFile, k))
	s, _ := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	sec, err := s.SealNewTOTP()
	must(t, err)
	rec, err := LoadTOTP(bootDir)
	must(t, err)
	if !tpm.IsAuthorizedBlob(rec.Blob) {
		t.Fatal("sealed without the approval key")
	}

	// Power cycle into "the new firmware": coreboot measures another payload.
	s, tp := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("new payload")))
	_, err = s.unsealTOTP(t)
	var me *seal.MismatchError
	if !errors.As(err, &me) || len(me.Changed) != 1 || me.Changed[0].Index != 2 {
		t.Fatalf("unapproved firmware: %v", err)
	}
	// The owner approves exactly this state at the next approval epoch
	// (as glint flash --approval-key does from the prediction before
	// writing; sealing defined the counter).
	now, err := tp.ReadPCRs(rec.Bank, rec.PCRList())
	must(t, err)
	a, err := approval.Approve(tpm.PCRPolicy{Bank: rec.Bank, Values: now, Epoch: nextEpoch(t, tp)}, approval.PurposeTOTP, &approval.KeyFile{Path: keyFile})
	must(t, err)
	_, err = approval.Save(s.ApprovalsDir(), a)
	must(t, err)
	got, err := s.unsealTOTP(t)
	if err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("approved firmware: %v", err)
	}
}

// The disk key too: sealed with the approval key, refused after an
// unapproved firmware change, released after the owner approved the new
// values (PCR 6 as the header measurement leaves it).
func TestDiskKeySurvivesApprovedFirmwareUpdate(t *testing.T) {
	img := luksImage(t)
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyFile := filepath.Join(t.TempDir(), "approval.pem")
	must(t, approval.WriteKeyFile(keyFile, k))
	s, _ := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	rec, err := s.SealDisk(img, []byte(luksPass), nil, "")
	must(t, err)
	if !tpm.IsAuthorizedBlob(rec.Blob) {
		t.Fatal("sealed without the approval key")
	}
	s, tp := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("new payload")))
	var me *seal.MismatchError
	if _, err := s.UnsealDiskOn(img, nil); !errors.As(err, &me) {
		t.Fatalf("unapproved firmware: %v", err)
	}
	now, err := tp.ReadPCRs(rec.Bank, rec.PCRList())
	must(t, err)
	a, err := approval.Approve(tpm.PCRPolicy{Bank: rec.Bank, Values: now, Epoch: nextEpoch(t, tp)}, approval.PurposeDisk, &approval.KeyFile{Path: keyFile})
	must(t, err)
	_, err = approval.Save(s.ApprovalsDir(), a)
	must(t, err)
	// UnsealDiskOn measured the header into PCR 6 already; unseal again.
	key, err := s.UnsealDisk(rec, nil)
	if err != nil {
		t.Fatalf("approved firmware: %v", err)
	}
	if err := luks.TestKey(img, key); err != nil {
		t.Fatal(err)
	}
}

// nextEpoch is the approval epoch an update is approved at: one past the
// counter (glint flash reads it on the machine).
func nextEpoch(t *testing.T, tp tpm.TPM) *tpm.Epoch {
	t.Helper()
	now, err := approval.ReadEpoch(tp)
	must(t, err)
	return approval.Next(now)
}
