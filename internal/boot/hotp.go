package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
)

// HOTPCounterFile holds the HOTP counter under /boot (MAC'd with the
// secret, so only a boot that unsealed the secret can write a valid one).
const HOTPCounterFile = "glint/hotp-counter"

// openSystemDongle opens the first supported dongle this machine has
// (hidraw found through sysfs), for the boot flow and the CLI alike.
func openSystemDongle() (dongle.Device, error) {
	d, _, err := dongle.Open(os.DirFS("/sys"), "/dev")
	return d, err
}

// checkHOTP sends the next HOTP code of the unsealed secret to the owner's
// USB security dongle, which compares it with its own copy and lights green
// or red: the same proof as TOTP without looking at a phone. Runs only when
// a dongle is plugged in.
func (f *Flow) checkHOTP(secret []byte) {
	if f.OpenDongle == nil {
		return
	}
	dev, err := f.OpenDongle()
	if err != nil {
		if !errors.Is(err, dongle.ErrNoDongle) {
			f.Con.Printf("HOTP: dongle: %v\n", err)
		}
		return
	}
	defer dev.Close()
	path := filepath.Join(f.BootDir, HOTPCounterFile)
	var counter uint64
	err = f.withWritableBoot(func() error {
		var rerr error
		counter, rerr = otp.ReserveCounter(path, secret, 0)
		return rerr
	})
	if err != nil {
		f.Con.Banner(red, "HOTP: counter file refused")
		f.Con.Printf("HOTP: %v\n", err)
		return
	}
	code, err := otp.HOTP(otp.SHA1, secret, counter, 6)
	if err != nil {
		f.Con.Printf("HOTP: %v\n", err)
		return
	}
	ok, err := dongle.Verify(dev, code)
	switch {
	case err != nil:
		f.Con.Banner(red, "HOTP: the dongle did not answer")
		f.Con.Printf("HOTP: %v\n", err)
	case ok:
		f.Con.Banner(green, "HOTP: VALID: the dongle's LED is green")
	default:
		f.Con.Banner(red, "HOTP: INVALID: the dongle's LED is red")
		f.Con.Printf("HOTP: the dongle does not know this code: this machine's measurements or its HOTP counter changed, or the dongle was re-programmed for another machine\n")
		f.problems = append(f.problems, "HOTP code refused by the dongle")
	}
}

// ProgramDongle writes secret into the dongle's HOTP slot (admin PIN
// needed; a wrong one burns one of the card's admin tries) and starts the
// counter file at 0.
func (f *Flow) ProgramDongle(secret []byte) error {
	if f.OpenDongle == nil {
		return errors.New("no dongle support")
	}
	dev, err := f.OpenDongle()
	if err != nil {
		return fmt.Errorf("open dongle: %w", err)
	}
	defer dev.Close()
	info, err := dongle.GetInfo(dev)
	if err != nil {
		return fmt.Errorf("dongle info: %w", err)
	}
	pin, err := f.Con.PromptSecret(fmt.Sprintf("Dongle admin PIN (%d tries left): ", info.AdminRetries))
	if err != nil {
		return err
	}
	pb := []byte(pin)
	defer wipe(pb)
	if err := dongle.Program(dev, pb, secret, 0); err != nil {
		return err
	}
	return f.withWritableBoot(func() error {
		return otp.WriteCounter(filepath.Join(f.BootDir, HOTPCounterFile), secret, 0)
	})
}
