package boot

import (
	"fmt"
	"io"
	"time"

	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// Workstation returns a Flow for the CLI verbs (glint otp seal/show, glint
// disk seal): the same sealing and explaining code as at boot, with the PCRs
// as they are now taken as the state to seal to (there is no "before the
// boot mode was extended" on a running system).
func Workstation(t tpm.TPM, bootDir string, profile pcr.Profile, cfg ownerconfig.Config, in io.Reader, out io.Writer) (*Flow, error) {
	f := &Flow{
		Con: NewConsole(in, out), J: NewJournal(nil, nil), BootDir: bootDir,
		Config: cfg, Profile: profile, Now: time.Now, OwnerFiles: map[string][]byte{},
	}
	f.OpenDongle = openSystemDongle
	f.tpm = t
	f.bank = tpm.ChooseBank(t)
	vals, err := t.ReadPCRs(f.bank, []int{pcr.BootMode})
	if err != nil {
		return nil, err
	}
	f.startPCRs = vals
	return f, nil
}

// NewTOTPURI seals a fresh TOTP secret, shows its enrollment and returns
// the otpauth URI (for a PNG). With hotp, the same secret is also programmed
// into the owner's USB dongle for HOTP checks (Heads does the same).
func (f *Flow) NewTOTPURI(hotp bool) (string, error) {
	secret, err := f.newOTPSecret()
	if err != nil {
		return "", err
	}
	defer wipe(secret)
	if err := f.SealTOTP(secret); err != nil {
		return "", err
	}
	if hotp {
		if err := f.ProgramDongle(secret); err != nil {
			return "", fmt.Errorf("program the dongle: %w", err)
		}
		f.Con.Printf("HOTP programmed into the dongle (slot \"HEADS Validation\"), counter 0\n")
	}
	if err := f.ShowEnrollment(secret); err != nil {
		return "", err
	}
	return f.totpKey(secret).URI()
}

// TOTPOK says whether the last ShowTOTP produced a code.
func (f *Flow) TOTPOK() bool { return f.totpOK }

// Bank is the PCR bank the flow seals with.
func (f *Flow) Bank() tpm.Alg { return f.bank }

// PredictFromFirmwareLog replaces the "at glint start" values of the PCRs
// glint extends later in the boot (boot mode, LUKS) by a replay of the
// firmware's own events for them. On a running OS those PCRs already hold
// glint's hand-over event, so the current value is not what the next
// normal boot will have; the firmware log (securityfs or coreboot's cbmem)
// says what it will. Without a log the current values stay.
func (f *Flow) PredictFromFirmwareLog() bool {
	evs := f.firmwareEvents()
	if len(evs) == 0 {
		return false
	}
	for _, idx := range []int{pcr.BootMode, pcr.LUKS} {
		v := pcr.Zero(f.bank)
		for _, e := range evs {
			if e.PCR == idx {
				v = pcr.Extend(f.bank, v, e.Digest)
			}
		}
		f.startPCRs[idx] = v
	}
	return true
}
