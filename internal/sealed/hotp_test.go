package sealed

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/otp/dongle/dongletest"
	"github.com/glint-boot/glint/internal/tpm"
)

// plugged keeps the simulated dongle "plugged in" across Close calls. The
// simulator is written from the Nitrokey Pro protocol notes (no dongle can
// be attached here); it cannot show the LED, touch or firmware timing.
type plugged struct{ *dongletest.Sim }

func (plugged) Close() error { return nil }

// glint otp seal --hotp, then two boots' checks: the dongle accepts each
// code once, and a counter file edited to replay an old code is refused.
func TestHOTPWithDongle(t *testing.T) {
	sim := dongletest.New()
	sim.BusyPolls = 0
	bootDir, tpmDir := t.TempDir(), t.TempDir()

	s, _ := workstation(t, tpm.Version20, tpmDir, bootDir)
	sec, err := s.SealNewTOTP()
	must(t, err)
	var asked int
	err = s.ProgramDongle(plugged{sim}, sec, func(tries int) ([]byte, error) {
		asked = tries
		return []byte("12345678"), nil // the factory admin PIN
	})
	if err != nil {
		t.Fatalf("program the dongle: %v", err)
	}
	if c, ok := sim.SlotCounter(); !ok || c != 0 || asked != 3 {
		t.Fatalf("dongle slot not programmed at counter 0 (ok=%v, counter=%d), PIN asked with %d tries left", ok, c, asked)
	}
	// A mistyped admin PIN writes nothing; with no tries left the owner
	// is told before being asked.
	other := bytes.Repeat([]byte{9}, 20)
	if err := s.ProgramDongle(plugged{sim}, other, func(int) ([]byte, error) { return []byte("wrong"), nil }); !errors.Is(err, dongle.ErrWrongPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if got := sim.SlotSecret(); bytes.Equal(got[:20], other) {
		t.Fatal("a wrong PIN programmed the dongle")
	}
	sim.AdminRetries = 0
	askedLocked := false
	err = s.ProgramDongle(plugged{sim}, other, func(int) ([]byte, error) { askedLocked = true; return []byte("12345678"), nil })
	if !errors.Is(err, dongle.ErrPINLocked) || askedLocked {
		t.Fatalf("no tries left: %v, asked=%v", err, askedLocked)
	}
	sim.AdminRetries = 3

	check := func() (bool, error) {
		s, _ := workstation(t, tpm.Version20, tpmDir, bootDir) // power cycle
		sec, err := s.unsealTOTP(t)
		must(t, err)
		v, err := s.CheckHOTP(plugged{sim}, sec)
		return v.Valid, err
	}
	for i := 0; i < 2; i++ {
		if ok, err := check(); !ok || err != nil {
			t.Fatalf("boot %d: dongle did not accept the code: %v, %v", i, ok, err)
		}
	}
	// An attacker who edits the counter (to replay an old code) without the
	// secret is caught by the counter's MAC.
	path := filepath.Join(bootDir, HOTPCounterFile)
	b, _ := os.ReadFile(path)
	must(t, os.WriteFile(path, bytes.Replace(b, []byte("counter 2"), []byte("counter 0"), 1), 0o644))
	ok, err := check()
	if he, isHOTP := err.(*HOTPError); ok || !isHOTP || he.Step != HOTPCounter {
		t.Fatalf("edited counter: ok %v, err %v; want a refused counter", ok, err)
	}
}
