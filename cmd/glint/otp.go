package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/glint-boot/glint/internal/boot"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "otp seal", usage: "[--profile coreboot|uefi] [--hotp] [--account S] [--png FILE]",
		summary: "seal a new TOTP secret to the PCRs and show it for your phone", run: runOTPSeal})
	register(command{name: "otp show", usage: "[--profile coreboot|uefi]",
		summary: "unseal the TOTP secret and show the current code", run: runOTPShow})
}

// otpFlow opens the TPM and returns the sealing flow shared with the boot.
func otpFlow(e *env, profileName, issuer, account string) (*boot.Flow, tpm.TPM, error) {
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
	cfg := ownerconfig.Default()
	if issuer != "" {
		cfg.TOTPIssuer = issuer
	}
	cfg.TOTPAccount = account
	f, err := boot.Workstation(t, e.bootDir, profile, cfg, e.stdin, e.stdout)
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	f.FirmwareEvents = func() []eventlog.EventRecord { return firmwareEvents(f.Bank()) }
	if f.PredictFromFirmwareLog() {
		fmt.Fprintf(e.stderr, "glint: boot-mode and LUKS PCRs predicted from the firmware event log\n")
	}
	return f, t, nil
}

func runOTPSeal(e *env, args []string) error {
	fs := commandFlags(e, "otp seal")
	profile := fs.String("profile", "", "platform profile (default: detected)")
	issuer := fs.String("issuer", "", "issuer shown in the authenticator app (default glint)")
	account := fs.String("account", "", "account name shown in the app (default: this machine's model and serial)")
	png := fs.String("png", "", "also write the QR code as a PNG file")
	hotp := fs.Bool("hotp", false, "also program the secret into a Nitrokey Pro / Librem Key for HOTP (admin PIN needed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	f, t, err := otpFlow(e, *profile, *issuer, *account)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := os.MkdirAll(e.bootDir, 0o755); err != nil {
		return err
	}
	uri, err := f.NewTOTPURI(*hotp)
	if err != nil {
		return err
	}
	if *png != "" {
		out, err := os.Create(*png)
		if err != nil {
			return err
		}
		if err := otp.WritePNG(out, uri, 8); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
	return nil
}

func runOTPShow(e *env, args []string) error {
	fs := commandFlags(e, "otp show")
	profile := fs.String("profile", "", "platform profile (default: detected)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	f, t, err := otpFlow(e, *profile, "", "")
	if err != nil {
		return err
	}
	defer t.Close()
	f.ShowTOTP()
	if !f.TOTPOK() {
		if _, err := seal.Load(e.bootDir, boot.PurposeTOTP); errors.Is(err, seal.ErrNotSealed) {
			return &exitError{code: 1, err: errors.New("no TOTP secret sealed under " + e.bootDir + " (glint otp seal)")}
		}
		return &exitError{code: 1, err: errors.New("no TOTP code: see above")}
	}
	return nil
}
