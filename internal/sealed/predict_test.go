package sealed

import (
	"errors"
	"testing"

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
