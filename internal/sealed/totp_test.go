package sealed

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

func TestTOTPSealUnseal(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			bootDir, tpmDir := t.TempDir(), t.TempDir()
			s, _ := workstation(t, v, tpmDir, bootDir)
			if _, err := s.unsealTOTP(t); !errors.Is(err, seal.ErrNotSealed) {
				t.Fatalf("nothing sealed yet: %v, want ErrNotSealed", err)
			}
			sec, err := s.SealNewTOTP()
			must(t, err)
			if len(sec) != 20 {
				t.Fatalf("secret of %d bytes, want 20", len(sec))
			}
			s, tp := workstation(t, v, tpmDir, bootDir) // power cycle
			got, err := s.unsealTOTP(t)
			if err != nil || !bytes.Equal(got, sec) {
				t.Fatalf("unseal after power cycle: %v", err)
			}
			// A recovery shell extends PCR 4 first: refused, and PCR 4 named
			// as the predicted boot mode.
			must(t, tp.Extend(pcr.BootMode, []byte(pcr.ModeRecovery)))
			_, err = s.unsealTOTP(t)
			var me *seal.MismatchError
			if !errors.As(err, &me) || len(me.Changed) != 1 || me.Changed[0].Index != pcr.BootMode || !me.Changed[0].Predicted {
				t.Fatalf("after the recovery shell: %v", err)
			}
		})
	}
}

// On a running OS PCR 4 holds glint's hand-over event. Sealed from there
// with the firmware's log replayed, the secret unseals at the next boot;
// sealed without it, not (which is why the CLI predicts).
func TestTOTPSealedFromTheOS(t *testing.T) {
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	s, tp := workstation(t, tpm.Version20, tpmDir, bootDir)
	must(t, tp.Extend(2, []byte("payload")))
	must(t, tp.Extend(pcr.BootMode, []byte(pcr.ModeLeaving)))
	// coreboot's log: PCR 2 only (the firmware leaves PCR 4 alone).
	s.FirmwareEvents = func(bank tpm.Alg) []eventlog.EventRecord {
		return []eventlog.EventRecord{{PCR: 2, Type: eventlog.EvCorebootMeasurement, Description: "FMAP: COREBOOT CBFS: fallback/payload", Alg: bank, Digest: pcr.Measure(bank, []byte("payload"))}}
	}
	if !s.PredictFromFirmwareLog() {
		t.Fatal("no prediction from a log")
	}
	if !bytes.Equal(s.Start[pcr.BootMode], pcr.Zero(s.Bank)) || !bytes.Equal(s.Start[pcr.LUKS], pcr.Zero(s.Bank)) {
		t.Fatalf("PCRs 4 and 6 predicted as %x, %x; want zero", s.Start[pcr.BootMode], s.Start[pcr.LUKS])
	}
	sec, err := s.SealNewTOTP()
	must(t, err)

	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir) // next power-on
	must(t, tp.Extend(2, []byte("payload")))
	got, err := s.unsealTOTP(t)
	if err != nil || !bytes.Equal(got, sec) {
		t.Fatalf("next boot: %v", err)
	}
	// The record keeps the firmware's events, so a changed payload is
	// named by the event.
	s, tp = workstation(t, tpm.Version20, tpmDir, bootDir)
	must(t, tp.Extend(2, []byte("payload v2")))
	s.FirmwareEvents = func(bank tpm.Alg) []eventlog.EventRecord {
		return []eventlog.EventRecord{{PCR: 2, Type: eventlog.EvCorebootMeasurement, Description: "FMAP: COREBOOT CBFS: fallback/payload", Alg: bank, Digest: pcr.Measure(bank, []byte("payload v2"))}}
	}
	if _, err := s.unsealTOTP(t); err == nil || !strings.Contains(err.Error(), "fallback/payload changed") {
		t.Fatalf("changed payload: %v", err)
	}
}

func TestROMSecret(t *testing.T) {
	a, b := ROMSecret([]byte("image")), ROMSecret([]byte("image!"))
	if len(a) != 20 || bytes.Equal(a, b) {
		t.Fatalf("ROM secrets %x, %x", a, b)
	}
}

// unsealTOTP loads the record and unseals it, as the boot does.
func (s *State) unsealTOTP(t *testing.T) ([]byte, error) {
	t.Helper()
	rec, err := LoadTOTP(s.BootDir)
	if err != nil {
		return nil, err
	}
	return s.UnsealTOTP(rec)
}
