package sealed

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// TestSealFromOSWithoutLogNeverToTheOS: on a running OS with no readable
// firmware log, PCR 4 holds glint's hand-over event. Sealing to it (what
// the CLI did) released the secret to the OS at every boot. Now the
// coreboot profile predicts PCR 4 and 6 as zero (its firmware extends
// neither), so the secret unseals at the next boot's glint and not in the
// OS; the UEFI profile, whose firmware measures into PCR 4, refuses.
func TestSealFromOSWithoutLogNeverToTheOS(t *testing.T) {
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	s, tp := workstation(t, tpm.Version20, tpmDir, bootDir)
	must(t, tp.Extend(pcr.BootMode, []byte(pcr.ModeLeaving))) // the OS after glint
	must(t, s.RecordStart())

	u := New(tp, pcr.UEFI, bootDir)
	must(t, u.RecordStart())
	if err := u.PredictForNextBoot(); !errors.Is(err, ErrUnpredictable) {
		t.Fatalf("UEFI without a log: %v", err)
	}

	if err := s.PredictForNextBoot(); err != nil {
		t.Fatal(err)
	}
	sec, err := s.SealNewTOTP()
	must(t, err)
	// In the OS (this boot, PCR 4 = hand-over): refused.
	if _, err := s.unsealTOTP(t); err == nil {
		t.Fatal("the secret sealed from the OS unseals in the OS")
	}
	// At the next boot, in glint (PCR 4 untouched): released.
	s, _ = workstation(t, tpm.Version20, tpmDir, bootDir)
	got, err := s.unsealTOTP(t)
	if err != nil || string(got) != string(sec) {
		t.Fatalf("next boot: %v", err)
	}
}

// TestFindLUKSByUUIDNotByRecord: the sealed record's device path is
// unsigned. An attacker points it at a copy of the good header on another
// disk; glint finds the volume by UUID, as the OS will, and with the copy
// attached the UUID is on two devices: no disk key.
func TestFindLUKSByUUIDNotByRecord(t *testing.T) {
	img := luksImage(t)
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	s, _ := workstation(t, tpm.Version20, tpmDir, bootDir)
	rec, err := s.SealDisk(img, []byte(luksPass), nil, "root_crypt")
	must(t, err)
	copyDisk := filepath.Join(t.TempDir(), "attacker.img")
	raw, err := os.ReadFile(img)
	must(t, err)
	must(t, os.WriteFile(copyDisk, raw[:16<<20], 0o600))
	rec.Extra["device"] = copyDisk // the unsigned record, edited

	if dev, err := FindLUKSAmong(rec, []string{img}); err != nil || dev != img {
		t.Fatalf("the real volume alone: %q, %v", dev, err)
	}
	var ae *luks.AmbiguousUUIDError
	if _, err := FindLUKSAmong(rec, []string{img, copyDisk}); !errors.As(err, &ae) {
		t.Fatalf("the copied header attached too: %v", err)
	}
	if _, err := FindLUKSAmong(rec, []string{copyDisk + "-missing"}); !errors.Is(err, luks.ErrNoVolume) {
		t.Fatalf("no volume: %v", err)
	}
}
