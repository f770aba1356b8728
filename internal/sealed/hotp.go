package sealed

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/secret"
)

// HOTPCounterFile holds the HOTP counter under /boot, MAC'd with the
// secret, so only a boot that unsealed the secret can write a valid one.
const HOTPCounterFile = "glint/hotp-counter"

// OpenDongle opens the first supported USB security dongle this machine has
// (hidraw found through sysfs); dongle.ErrNoDongle if none is plugged in.
func OpenDongle() (dongle.Device, error) {
	d, _, err := dongle.Open(os.DirFS("/sys"), "/dev")
	return d, err
}

// HOTPStep names the step of the dongle check that failed.
type HOTPStep int

const (
	// HOTPCounter: the counter file was refused (forged, rolled back,
	// unreadable) or could not be written.
	HOTPCounter HOTPStep = iota + 1
	// HOTPCode: no code could be computed from the secret.
	HOTPCode
	// HOTPDongle: the dongle did not answer.
	HOTPDongle
)

// HOTPError is a dongle check that could not reach a verdict.
type HOTPError struct {
	Step HOTPStep
	Err  error
}

func (e *HOTPError) Error() string { return e.Err.Error() }
func (e *HOTPError) Unwrap() error { return e.Err }

// CheckHOTP sends the next HOTP code of secret to the owner's dongle, which
// compares it with its own copy and lights green or red: the same proof as
// TOTP without looking at a phone. The verdict says how many codes the
// dongle's look-ahead skipped (codes computed that it never saw), where the
// dongle tells. The counter under /boot moves on first, so a code is never
// shown twice. An error is a *HOTPError. It needs only BootDir and Writable
// of s: without a TPM the boot flow checks the firmware image's hash this
// way (ROMSecret).
func (s *State) CheckHOTP(dev dongle.Device, hotpSecret []byte) (dongle.Verification, error) {
	var counter uint64
	err := s.writable(func() error {
		var rerr error
		counter, rerr = otp.ReserveCounter(filepath.Join(s.BootDir, HOTPCounterFile), hotpSecret, 0)
		return rerr
	})
	if err != nil {
		return dongle.Verification{}, &HOTPError{HOTPCounter, err}
	}
	code, err := otp.HOTP(otp.SHA1, hotpSecret, counter, 6)
	if err != nil {
		return dongle.Verification{}, &HOTPError{HOTPCode, err}
	}
	v, err := (&dongle.Client{Dev: dev}).Verify(code)
	if err != nil {
		return dongle.Verification{}, &HOTPError{HOTPDongle, err}
	}
	return v, nil
}

// ProgramDongle writes secret into the dongle's HOTP slot ("HEADS
// Validation", counter 0) and starts the counter file at 0. With no admin
// PIN tries left it says so (dongle.ErrPINLocked) before asking; adminPIN is
// asked for the PIN given the tries left (a wrong one burns one) and it is
// checked before anything is written. Callers program the dongle before
// they replace the sealed secret, so a mistyped PIN leaves the phone, the
// machine and the dongle agreeing. The PIN is wiped after use.
func (s *State) ProgramDongle(dev dongle.Device, hotpSecret []byte, adminPIN func(triesLeft int) ([]byte, error)) error {
	c := &dongle.Client{Dev: dev}
	tries, err := c.AdminTries()
	if err != nil {
		return fmt.Errorf("dongle: %w", err)
	}
	pin, err := adminPIN(tries)
	if err != nil {
		return err
	}
	defer secret.Wipe(pin)
	session, err := c.Login(pin)
	if err != nil {
		return err
	}
	defer session.Close()
	if err := session.Program(hotpSecret, 0); err != nil {
		return err
	}
	return s.writable(func() error {
		return otp.WriteCounter(filepath.Join(s.BootDir, HOTPCounterFile), hotpSecret, 0)
	})
}
