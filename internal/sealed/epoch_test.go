package sealed

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

// approvalKeyFile makes a P-256 approval key in a PEM file.
func approvalKeyFile(t *testing.T) (*approval.KeyFile, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	p := filepath.Join(t.TempDir(), "approval.pem")
	must(t, approval.WriteKeyFile(p, k))
	return &approval.KeyFile{Path: p}, k
}

// approveNow signs the PCR values of rec's set as they are now, at epoch.
func approveNow(t *testing.T, s *State, tp tpm.TPM, rec *seal.Record, purpose string, key *approval.KeyFile, epoch *tpm.Epoch) *tpm.Approval {
	t.Helper()
	now, err := tp.ReadPCRs(rec.Bank, rec.PCRList())
	must(t, err)
	a, err := approval.Approve(tpm.PCRPolicy{Bank: rec.Bank, Values: now, Epoch: epoch}, purpose, key)
	must(t, err)
	_, err = approval.Save(s.ApprovalsDir(), a)
	must(t, err)
	return a
}

// The replay the epoch stops (swtpm, TPM 2.0): the owner approved firmware
// 1 once, then updates to firmware 2 with a new approval. The first boot of
// firmware 2 commits its epoch; an attacker who puts firmware 1 back (with
// the approval the owner once made for it, still on /boot or copied) gets
// no code: the sealed-to state and the old approval are of an older epoch,
// and the refusal says so.
func TestEpochRetiresTheFirmwareLeftBehind(t *testing.T) {
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	key, k := approvalKeyFile(t)
	s, tp := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	if _, err := approval.ReadEpoch(tp); !errors.Is(err, approval.ErrNoEpoch) {
		t.Fatalf("a fresh TPM has an approval epoch counter: %v", err)
	}
	sec, err := s.SealNewTOTP() // defines the counter
	must(t, err)
	e0, err := approval.ReadEpoch(tp)
	must(t, err)
	rec, err := LoadTOTP(bootDir)
	must(t, err)
	if e, _ := tpm.AuthorizedBlobEpoch(rec.Blob); e == nil || e.Value != e0.Value {
		t.Fatalf("sealed at set-up without the epoch: %+v", e)
	}

	// Firmware 1 (PCR 2 "fw1"), approved at the epoch of the day.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("fw1")))
	approveNow(t, s, tp, rec, approval.PurposeTOTP, key, e0)
	if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("firmware 1, approved: %v", err)
	}

	// Firmware 2, approved before it is written at the next epoch.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("fw2")))
	approveNow(t, s, tp, rec, approval.PurposeTOTP, key, approval.Next(e0))
	if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("firmware 2, approved: %v", err)
	}
	if e, err := approval.ReadEpoch(tp); err != nil || e.Value != e0.Value+1 {
		t.Fatalf("the first boot of firmware 2 did not commit its epoch: %+v %v", e, err)
	}

	// The attacker puts firmware 1 back: refused, and named.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("fw1")))
	_, err = s.unsealTOTP(t)
	var me *seal.MismatchError
	if !errors.As(err, &me) || !errors.Is(err, tpm.ErrEpochPassed) || !strings.Contains(err.Error(), "older approval epoch") {
		t.Fatalf("firmware 1 put back: %v", err)
	}
	// And the state the secret was sealed to at set-up (before both).
	s, _ = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	if _, err := s.unsealTOTP(t); !errors.Is(err, tpm.ErrEpochPassed) || !strings.Contains(err.Error(), "is the one it was sealed to, but") || !strings.Contains(err.Error(), "older approval epoch") {
		t.Fatalf("the set-up state after the update: %v", err)
	}
	// Firmware 2 still works.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("fw2")))
	if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("firmware 2 after its commit: %v", err)
	}
}

// Records sealed before epochs keep working, and the first boot that
// releases one after the counter exists moves it onto the epoch: from then
// on an approval made before epochs no longer opens it.
func TestEpochMigratesOldRecords(t *testing.T) {
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	key, k := approvalKeyFile(t)
	s, tp := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	// A record as glint sealed it before epochs: the approval key, no
	// epoch, no counter on the TPM.
	sec, err := NewSecret(tp)
	must(t, err)
	vals, predicted, err := s.sealValues(s.Profile.OTP)
	must(t, err)
	old, err := seal.Seal(tp, sec, seal.Request{
		Purpose: PurposeTOTP, Profile: s.Profile, Bank: s.Bank, Values: vals,
		Predicted: predicted, Events: s.Events(), Now: s.now(), ApprovalKey: s.ApprovalKey,
	})
	must(t, err)
	must(t, seal.Save(bootDir, old))
	rec, err := LoadTOTP(bootDir)
	must(t, err)
	if e, _ := tpm.AuthorizedBlobEpoch(rec.Blob); e != nil {
		t.Fatal("sealed to an epoch without a counter")
	}
	// An approval of another state, made before epochs.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("fw2")))
	approveNow(t, s, tp, rec, approval.PurposeTOTP, key, nil)
	if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("an old record with an old approval: %v", err)
	}

	// The counter appears (set-up or an update from the menu defines it);
	// the next boot in the sealed-to state moves the record onto it.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.NVDefine(tpm.NVSpace{Index: approval.EpochIndex, Counter: true}))
	if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("the old record in its sealed-to state: %v", err)
	}
	rec, err = LoadTOTP(bootDir)
	must(t, err)
	if e, _ := tpm.AuthorizedBlobEpoch(rec.Blob); e == nil {
		t.Fatal("the record was not moved onto the epoch")
	}
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("fw2")))
	if _, err := s.unsealTOTP(t); err == nil {
		t.Fatal("an approval made before epochs still opens the moved record")
	}
	// The same code after all of it.
	s, _ = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("the moved record in its sealed-to state: %v", err)
	}
}

// A firmware update without approvals (TPM 1.2, and TPM 2.0 without an
// approval key): the TOTP secret and the disk key (with its PIN) are sealed
// again to the values predicted for the new firmware before it is written;
// the first boot of the new firmware releases the same secret and key, and
// the old firmware no longer does.
func TestResealForNextFirmware(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version12, tpm.Version20} {
		t.Run(v.String(), func(t *testing.T) {
			img := luksImage(t)
			bootDir, tpmDir := t.TempDir(), t.TempDir()
			s, _ := workstation(t, v, tpmDir, bootDir)
			sec, err := s.SealNewTOTP()
			must(t, err)
			drec, err := s.SealDisk(img, []byte(luksPass), []byte("2468"), "")
			must(t, err)

			// The update, from glint's menu in a normal boot: unseal both,
			// predict the new firmware's PCR 2, seal again, write.
			s, tp := workstation(t, v, tpmDir, bootDir)
			trec, err := LoadTOTP(bootDir)
			must(t, err)
			got, err := s.UnsealTOTP(trec)
			must(t, err)
			must(t, s.MeasureDiskHeader(drec, img))
			dkey, err := s.UnsealDisk(drec, []byte("2468"))
			must(t, err)
			cur, err := tp.ReadPCRs(s.Bank, []int{2})
			must(t, err)
			next := map[int][]byte{2: pcr.Extend(s.Bank, cur[2], pcr.Measure(s.Bank, []byte("new coreboot")))}
			if _, err := s.ResealFor(trec, got, nil, next, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ResealFor(drec, dkey, nil, next, nil); err == nil {
				t.Fatal("the disk key was sealed again without its PIN")
			}
			nd, err := s.ResealFor(drec, dkey, []byte("2468"), next, nil)
			must(t, err)
			if !nd.PIN || nd.Extra["uuid"] != drec.Extra["uuid"] || !bytes.Equal(nd.PCRs[pcr.LUKS], drec.PCRs[pcr.LUKS]) {
				t.Fatalf("the new disk record lost what the old one had: %+v", nd)
			}

			// The old firmware, after the write failed or was undone: refused.
			s, _ = workstation(t, v, tpmDir, bootDir)
			if _, err := s.unsealTOTP(t); err == nil {
				t.Fatal("the old firmware still unseals the re-sealed secret")
			}
			// The new firmware: the same code and the same disk key.
			s, tp = workstation(t, v, tpmDir, bootDir)
			must(t, tp.Extend(2, []byte("new coreboot")))
			if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
				t.Fatalf("the new firmware: %v", err)
			}
			nd, err = LoadDisk(bootDir)
			must(t, err)
			must(t, s.MeasureDiskHeader(nd, img))
			key, err := s.UnsealDisk(nd, []byte("2468"))
			must(t, err)
			must(t, luks.TestKey(img, key))
		})
	}
}

// ResealFor with the approval key (TPM 2.0): the secret is sealed to the
// prediction at the next approval epoch; the new firmware's first boot
// commits it, and a kept copy of the record sealed before (the old
// firmware's) no longer opens, although its PCR values are the old
// firmware's exactly: the epoch does for a re-seal what TPM 1.2 cannot.
func TestResealForNextEpoch(t *testing.T) {
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	_, k := approvalKeyFile(t)
	s, _ := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	sec, err := s.SealNewTOTP()
	must(t, err)
	old, err := LoadTOTP(bootDir)
	must(t, err)
	e0, err := tpm.AuthorizedBlobEpoch(old.Blob)
	must(t, err)

	s, tp := workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	got, err := s.UnsealTOTP(old)
	must(t, err)
	cur, err := tp.ReadPCRs(s.Bank, []int{2})
	must(t, err)
	next := map[int][]byte{2: pcr.Extend(s.Bank, cur[2], pcr.Measure(s.Bank, []byte("new coreboot")))}
	nrec, err := s.ResealFor(old, got, nil, next, nil)
	must(t, err)
	if e, err := tpm.AuthorizedBlobEpoch(nrec.Blob); err != nil || e == nil || e.Value != e0.Value+1 {
		t.Fatalf("re-sealed at epoch %+v (%v), want %d", e, err, e0.Value+1)
	}

	// The new firmware: the same secret, and its first boot commits E0+1.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	must(t, tp.Extend(2, []byte("new coreboot")))
	if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("the new firmware: %v", err)
	}
	if e, err := approval.ReadEpoch(tp); err != nil || e.Value != e0.Value+1 {
		t.Fatalf("the counter after the new firmware's first boot: %+v %v", e, err)
	}

	// The old firmware with a kept copy of the old record: refused.
	s, _ = workstation(t, tpm.Version20, tpmDir, bootDir)
	s.ApprovalKey = k.Public()
	if _, err := s.UnsealTOTP(old); !errors.Is(err, tpm.ErrEpochPassed) {
		t.Fatalf("the old record in the old firmware after the update: %v", err)
	}
}
