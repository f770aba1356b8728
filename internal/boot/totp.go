package boot

import (
	"errors"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// ShowTOTP unseals the TOTP secret and prints the current code, or says in
// words why it cannot. With the owner's dongle plugged in, the HOTP check
// follows.
func (f *Flow) ShowTOTP() {
	f.totpOK = false
	if f.platformErr != nil {
		f.Con.Banner(red, "TOTP WITHHELD: the TPM platform hierarchy could not be locked")
		f.Con.Printf("TOTP: unavailable: %v\n", f.platformErr)
		return
	}
	if f.tpm == nil {
		f.Con.Banner(yellow, "NO TPM: no TOTP code; this machine cannot prove its firmware is unchanged")
		f.romHOTP()
		return
	}
	now := f.now()
	if err := otp.CheckClock(now, f.BuildTime); err != nil {
		f.Con.Banner(yellow, "CLOCK WRONG: no TOTP code shown")
		f.Con.Printf("TOTP: unavailable: %v\n", err)
		f.Con.Printf("Set the clock from the menu (t), then refresh (o).\n")
		return
	}
	rec, err := sealed.LoadTOTP(f.BootDir)
	if err != nil {
		if errors.Is(err, seal.ErrNotSealed) {
			f.Con.Printf("TOTP: unavailable: no TOTP secret sealed yet (menu: r)\n")
		} else {
			f.Con.Printf("TOTP: unavailable: %v\n", err)
		}
		return
	}
	totpSecret, err := f.state.UnsealTOTP(rec)
	if err != nil {
		switch {
		case errors.Is(err, tpm.ErrCleared):
			f.Con.Banner(red, "TOTP REFUSED: the TPM was cleared or replaced since sealing")
		case errors.Is(err, tpm.ErrLockout):
			f.Con.Banner(red, "TOTP REFUSED: the TPM is in dictionary-attack lockout")
			if st, serr := f.tpm.LockoutStatus(); serr == nil {
				f.Con.Printf("%s\n", st.Explain())
			}
		default:
			f.Con.Banner(red, "TOTP REFUSED: the measured boot state changed")
		}
		f.Con.Printf("TOTP: unavailable: %v\n", sealed.DescribeTPMError(err))
		f.problems = append(f.problems, "TOTP secret did not unseal")
		return
	}
	defer secret.Wipe(totpSecret)
	code, err := otp.TOTP(otp.SHA1, totpSecret, now, 30*time.Second, 6)
	if err != nil {
		f.Con.Printf("TOTP: unavailable: %v\n", err)
		return
	}
	left := 30 - now.Unix()%30
	f.Con.Printf("TOTP code: %s   at %s UTC (changes in %d s)\n", otp.FormatCode(code, 6), now.UTC().Format("2006-01-02 15:04:05"), left)
	f.Con.Printf("Compare it with your phone. A different code means this machine's firmware or configuration changed.\n")
	f.totpOK = true
	f.checkHOTP(totpSecret)
}

// checkHOTP has the owner's USB security dongle check the next HOTP code of
// the unsealed secret: its LED turns green or red. Runs only when a dongle
// is plugged in.
func (f *Flow) checkHOTP(hotpSecret []byte) {
	if f.Machine == nil {
		return
	}
	dev, err := f.Machine.Dongle()
	if err != nil {
		if !errors.Is(err, dongle.ErrNoDongle) {
			f.Con.Printf("HOTP: dongle: %v\n", err)
		}
		return
	}
	defer dev.Close()
	v, err := f.state.CheckHOTP(dev, hotpSecret)
	var he *sealed.HOTPError
	switch {
	case errors.As(err, &he) && he.Step == sealed.HOTPCounter:
		f.Con.Banner(red, "HOTP: counter file refused")
		f.Con.Printf("HOTP: %v\n", err)
	case errors.As(err, &he) && he.Step == sealed.HOTPDongle:
		f.Con.Banner(red, "HOTP: the dongle did not answer")
		f.Con.Printf("HOTP: %v\n", err)
	case err != nil:
		f.Con.Printf("HOTP: %v\n", err)
	case v.Valid && v.Offset > 0:
		// Codes were computed that the dongle never saw: someone else
		// used the secret, or boots ran without the dongle.
		f.Con.Banner(yellow, "HOTP: "+v.String())
		f.Con.Printf("HOTP: %v\n", otp.CheckVerifyOffset(v.Offset))
	case v.Valid:
		f.Con.Banner(green, "HOTP: "+v.String())
	default:
		f.Con.Banner(red, "HOTP: INVALID: the dongle's LED is red")
		f.Con.Printf("HOTP: the dongle does not know this code: this machine's measurements or its HOTP counter changed, or the dongle was re-programmed for another machine\n")
		f.problems = append(f.problems, "HOTP code refused by the dongle")
	}
}

// romHOTP is the no-TPM fallback (Heads' secret_from_rom_hash): the HOTP
// secret is the firmware image's hash (sealed.ROMSecret), so the dongle
// still turns red when the flash changes. It proves much less than a sealed
// secret, and the screen says so.
func (f *Flow) romHOTP() {
	if f.Firmware == nil || f.Machine == nil {
		return
	}
	img, err := f.Firmware.Image()
	if err != nil {
		f.J.Logf("no-TPM HOTP: read firmware image: %v", err)
		return
	}
	hotpSecret := sealed.ROMSecret(img)
	defer secret.Wipe(hotpSecret)
	f.Con.Printf("NO TPM: HOTP below is derived from the firmware image hash; it shows a reflash, but not a clever attacker who reads the flash first\n")
	f.checkHOTP(hotpSecret)
}

// checkPhoneCode helps when the phone shows another code although nothing
// was changed: most often the RTC runs on local time (a dual-boot with
// Windows), which shifts every code by whole hours. It finds the offset for
// which glint's code equals the phone's, and tells the owner how to fix it.
func (f *Flow) checkPhoneCode() {
	if f.tpm == nil || f.mode != "" {
		f.Con.Printf("the TOTP secret is not available in this boot\n")
		return
	}
	rec, err := sealed.LoadTOTP(f.BootDir)
	if err != nil {
		f.Con.Printf("%v\n", err)
		return
	}
	totpSecret, err := f.state.UnsealTOTP(rec)
	if err != nil {
		f.Con.Printf("the TOTP secret does not unseal, so the clock is not the problem: %v\n", err)
		return
	}
	defer secret.Wipe(totpSecret)
	code, err := f.Con.Prompt("Code on your phone now: ")
	if err != nil {
		return
	}
	hint, err := otp.PossibleLocalTimeRTC(f.totpKey(totpSecret), f.now(), strings.TrimSpace(code))
	if err != nil {
		f.Con.Printf("no clock offset explains that code (%v): the phone has another secret for this machine, or this machine was changed\n", err)
		return
	}
	f.Con.Printf("%s\n", hint)
}

// totpKey labels the TOTP secret for the phone, as the owner configured.
func (f *Flow) totpKey(totpSecret []byte) otp.Key {
	return sealed.TOTPKey(f.Config.TOTPIssuer, f.Config.TOTPAccount, totpSecret)
}

// showEnrollment prints the otpauth URI and its QR code for the phone.
func (f *Flow) showEnrollment(totpSecret []byte) error {
	return sealed.WriteEnrollment(f.Con.out, f.totpKey(totpSecret))
}
