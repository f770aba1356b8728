//go:build !payload

package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "otp seal", usage: "[--profile coreboot|uefi] [--hotp] [--account S] [--png FILE]",
		summary: "seal a new TOTP secret to the PCRs and show it for your phone", run: runOTPSeal})
	register(command{name: "otp show", usage: "[--profile coreboot|uefi]",
		summary: "unseal the TOTP secret and show the current code", run: runOTPShow})
}

// sealedState opens the TPM and returns the measured state to seal to on
// this running system: the profile's PCR plan, PCR 4 and 6 as the next
// normal boot will have them (replayed from the firmware's log when there
// is one), the firmware's events for explanations.
func sealedState(e *env, profileName string) (*sealed.State, tpm.TPM, error) {
	profile := pcr.Detect()
	if profileName != "" {
		p, err := pcr.ByName(profileName)
		if err != nil {
			return nil, nil, usageErrorf("%v", err)
		}
		profile = p
	}
	t, err := tpm.Open(e.tpmSpec)
	if err != nil {
		return nil, nil, err
	}
	s := sealed.New(t, profile, e.bootDir)
	if err := s.RecordStart(); err != nil {
		t.Close()
		return nil, nil, err
	}
	s.FirmwareEvents = sealed.ReadFirmwareEvents
	if s.PredictFromFirmwareLog() {
		fmt.Fprintf(e.stderr, "glint: boot-mode and LUKS PCRs predicted from the firmware event log\n")
	}
	// As the boot flow does: the owner's approval key from the running
	// firmware's owner files, so approved firmware updates keep the secret.
	if img, err := rom.FromDevMem(); err == nil {
		if files, err := rom.OwnerFiles(img); err == nil {
			if k, from, err := approval.KeyFromOwnerFiles(files); err == nil {
				s.ApprovalKey = k
				fmt.Fprintf(e.stderr, "glint: sealing so that PCR values approved by %s%s also unseal (docs/firmware-updates.md)\n", rom.OwnerFilePrefix, from)
			}
		}
	}
	return s, t, nil
}

// sealableState is sealedState for the verbs that seal: without a firmware
// log it predicts from the profile (coreboot) or refuses, never sealing to
// the PCR values of a running OS.
func sealableState(e *env, profileName string) (*sealed.State, tpm.TPM, error) {
	s, t, err := sealedState(e, profileName)
	if err != nil {
		return nil, nil, err
	}
	if err := s.PredictForNextBoot(); err != nil {
		t.Close()
		return nil, nil, &exitError{code: 1, err: fmt.Errorf("refusing to seal: %w", err)}
	}
	return s, t, nil
}

func runOTPSeal(e *env, args []string) error {
	fs := commandFlags(e, "otp seal")
	profile := fs.String("profile", "", "platform profile (default: detected)")
	issuer := fs.String("issuer", "glint", "issuer shown in the authenticator app")
	account := fs.String("account", "", "account name shown in the app (default: this machine's model and serial)")
	png := fs.String("png", "", "also write the QR code as a PNG file")
	hotp := fs.Bool("hotp", false, "also program the secret into a Nitrokey Pro / Librem Key for HOTP (admin PIN needed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, t, err := sealableState(e, *profile)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := os.MkdirAll(e.bootDir, 0o755); err != nil {
		return err
	}
	totpSecret, err := sealed.NewSecret(t)
	if err != nil {
		return err
	}
	defer secret.Wipe(totpSecret)
	if *hotp {
		// The dongle first: its admin PIN is checked before anything is
		// written, and the sealed secret is replaced only once the dongle
		// holds the new one, so a mistyped PIN changes nothing anywhere.
		if err := programDongle(e, s, totpSecret); err != nil {
			return fmt.Errorf("program the dongle (nothing was changed: the old secret stays sealed): %w", err)
		}
		fmt.Fprintf(e.stdout, "HOTP programmed into the dongle (slot \"HEADS Validation\"), counter 0\n")
	}
	if err := s.SealTOTP(totpSecret); err != nil {
		if *hotp {
			return fmt.Errorf("seal the new secret: %w (the dongle already holds it: run glint otp seal --hotp again)", err)
		}
		return err
	}
	key := sealed.TOTPKey(*issuer, *account, totpSecret)
	if err := sealed.WriteEnrollment(e.stdout, key); err != nil {
		return err
	}
	if *png == "" {
		return nil
	}
	uri, err := key.URI()
	if err != nil {
		return err
	}
	out, err := os.Create(*png)
	if err != nil {
		return err
	}
	if err := otp.WritePNG(out, uri, 8); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// programDongle writes the secret into the plugged-in dongle, asking for
// its admin PIN on the terminal.
func programDongle(e *env, s *sealed.State, hotpSecret []byte) error {
	dev, err := sealed.OpenDongle()
	if err != nil {
		return fmt.Errorf("open dongle: %w", err)
	}
	defer dev.Close()
	return s.ProgramDongle(dev, hotpSecret, func(tries int) ([]byte, error) {
		return readSecretLine(e, "", fmt.Sprintf("Dongle admin PIN (%d tries left): ", tries))
	})
}

func runOTPShow(e *env, args []string) error {
	fs := commandFlags(e, "otp show")
	profile := fs.String("profile", "", "platform profile (default: detected)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, t, err := sealedState(e, *profile)
	if err != nil {
		return err
	}
	defer t.Close()
	rec, err := sealed.LoadTOTP(e.bootDir)
	if errors.Is(err, seal.ErrNotSealed) {
		return &exitError{code: 1, err: errors.New("no TOTP secret sealed under " + e.bootDir + " (glint otp seal)")}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	totpSecret, err := s.UnsealTOTP(rec)
	if err != nil {
		fmt.Fprintf(e.stdout, "TOTP REFUSED: %s\n", sealed.DescribeTPMError(err))
		return &exitError{code: 1, err: errors.New("no TOTP code: see above")}
	}
	defer secret.Wipe(totpSecret)
	now := time.Now()
	code, err := otp.TOTP(otp.SHA1, totpSecret, now, 30*time.Second, 6)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "TOTP code: %s   at %s UTC (changes in %d s)\n", otp.FormatCode(code, 6), now.UTC().Format("2006-01-02 15:04:05"), 30-now.Unix()%30)
	checkDongle(e, s, totpSecret)
	return nil
}

// checkDongle has a plugged-in dongle check the next HOTP code, as the boot
// does; without a dongle it says nothing.
func checkDongle(e *env, s *sealed.State, hotpSecret []byte) {
	dev, err := sealed.OpenDongle()
	if errors.Is(err, dongle.ErrNoDongle) {
		return
	}
	if err != nil {
		fmt.Fprintf(e.stdout, "HOTP: dongle: %v\n", err)
		return
	}
	defer dev.Close()
	switch v, err := s.CheckHOTP(dev, hotpSecret); {
	case err != nil:
		fmt.Fprintf(e.stdout, "HOTP: %v\n", err)
	default:
		fmt.Fprintf(e.stdout, "HOTP: %s\n", v)
		if v.Valid && v.Offset > 0 {
			fmt.Fprintf(e.stdout, "HOTP: %v\n", otp.CheckVerifyOffset(v.Offset))
		}
	}
}
