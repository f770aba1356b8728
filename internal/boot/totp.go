package boot

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

// PurposeTOTP names the sealed TOTP record.
const PurposeTOTP = "totp"

// otpPolicy returns the PCR values to seal the OTP secret to: the PCRs as
// they are now, except the boot-mode PCR, which is sealed at the value it had
// when glint started (a normal boot has extended nothing into it yet), so the
// secret never unseals after a recovery shell or forced boot in any boot.
func (f *Flow) otpPolicy(set []int) (map[int][]byte, []int, error) {
	vals, err := f.tpm.ReadPCRs(f.bank, set)
	if err != nil {
		return nil, nil, fmt.Errorf("read PCRs: %w", err)
	}
	var predicted []int
	if start, ok := f.startPCRs[pcr.BootMode]; ok {
		if _, want := vals[pcr.BootMode]; want {
			vals[pcr.BootMode] = start
			predicted = append(predicted, pcr.BootMode)
		}
	}
	return vals, predicted, nil
}

// sealEvents is the event list kept beside a sealed record: the firmware
// log (if any) and glint's own measurements so far.
func (f *Flow) sealEvents() []eventlog.EventRecord {
	return append(append([]eventlog.EventRecord(nil), f.firmwareEvents()...), f.events...)
}

// newOTPSecret draws 20 bytes (RFC 4226's recommended 160 bits) from the TPM
// RNG mixed with the kernel's, so neither alone decides the secret.
func (f *Flow) newOTPSecret() ([]byte, error) {
	a, err := f.tpm.Random(20)
	if err != nil {
		return nil, fmt.Errorf("TPM random: %w", err)
	}
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	for i := range b {
		b[i] ^= a[i]
	}
	return b, nil
}

// SealTOTP seals secret to the OTP PCR set and stores the record on /boot.
func (f *Flow) SealTOTP(secret []byte) error {
	vals, predicted, err := f.otpPolicy(f.Profile.OTP)
	if err != nil {
		return err
	}
	rec, err := seal.Seal(f.tpm, secret, seal.Request{
		Purpose: PurposeTOTP, Profile: f.Profile, Bank: f.bank, Values: vals,
		Predicted: predicted, Events: f.sealEvents(), Now: f.Now(),
	})
	if err != nil {
		return err
	}
	return seal.Save(f.BootDir, rec)
}

// totpKey labels the enrollment for the phone.
func (f *Flow) totpKey(secret []byte) otp.Key {
	account := f.Config.TOTPAccount
	if account == "" {
		account = otp.MachineAccount(readSysfs("/proc/sys/kernel/hostname"), readSysfs("/sys/class/dmi/id/product_name"), readSysfs("/sys/class/dmi/id/product_serial"))
	}
	return otp.Key{Type: otp.TypeTOTP, Issuer: f.Config.TOTPIssuer, Account: account, Secret: secret}
}

// ShowEnrollment prints the otpauth URI and its QR code for the phone.
func (f *Flow) ShowEnrollment(secret []byte) error {
	uri, err := f.totpKey(secret).URI()
	if err != nil {
		return err
	}
	f.Con.Printf("Scan this with your authenticator app (or type the URI in):\n")
	var qr bytes.Buffer
	if err := otp.RenderHalfBlocks(&qr, uri); err == nil {
		f.Con.Printf("%s", qr.String())
	}
	f.Con.Printf("%s\n", uri)
	return nil
}

// ShowTOTP unseals the TOTP secret and prints the current code, or says in
// words why it cannot.
func (f *Flow) ShowTOTP() {
	f.totpOK = false
	if f.tpm == nil {
		f.Con.Banner(yellow, "NO TPM: no TOTP code; this machine cannot prove its firmware is unchanged")
		f.romHOTP()
		return
	}
	now := f.Now()
	if err := otp.CheckClock(now, f.BuildTime); err != nil {
		f.Con.Banner(yellow, "CLOCK WRONG: no TOTP code shown")
		f.Con.Printf("TOTP: unavailable: %v\n", err)
		f.Con.Printf("Set the clock from the menu (t), then refresh (o).\n")
		return
	}
	rec, err := seal.Load(f.BootDir, PurposeTOTP)
	if err != nil {
		if errors.Is(err, seal.ErrNotSealed) {
			f.Con.Printf("TOTP: unavailable: no TOTP secret sealed yet (menu: r)\n")
		} else {
			f.Con.Printf("TOTP: unavailable: %v\n", err)
		}
		return
	}
	secret, err := seal.Unseal(f.tpm, rec, nil, f.Profile, f.sealEvents())
	if err != nil {
		switch {
		case errors.Is(err, tpm.ErrCleared):
			f.Con.Banner(red, "TOTP REFUSED: the TPM was cleared or replaced since sealing")
		case errors.Is(err, tpm.ErrLockout):
			f.Con.Banner(red, "TOTP REFUSED: the TPM is in dictionary-attack lockout")
		default:
			f.Con.Banner(red, "TOTP REFUSED: the measured boot state changed")
		}
		f.Con.Printf("TOTP: unavailable: %v\n", describeTPMError(err))
		f.problems = append(f.problems, "TOTP secret did not unseal")
		return
	}
	defer wipe(secret)
	code, err := otp.TOTP(otp.SHA1, secret, now, 30*time.Second, 6)
	if err != nil {
		f.Con.Printf("TOTP: unavailable: %v\n", err)
		return
	}
	left := 30 - now.Unix()%30
	f.Con.Printf("TOTP code: %s   at %s UTC (changes in %d s)\n", otp.FormatCode(code, 6), now.UTC().Format("2006-01-02 15:04:05"), left)
	f.Con.Printf("Compare it with your phone. A different code means this machine's firmware or configuration changed.\n")
	f.totpOK = true
	f.checkHOTP(secret)
}

// describeTPMError adds the owner's next step to the TPM states that have one.
func describeTPMError(err error) string {
	switch {
	case errors.Is(err, tpm.ErrLockout):
		return err.Error() + "\n  The TPM is in dictionary-attack lockout after wrong PINs; wait for it to recover, or reset it with the lockout authorisation."
	case errors.Is(err, tpm.ErrCleared):
		return err.Error() + "\n  The TPM was cleared or replaced since the secret was sealed: every sealed secret is gone. If you did not clear it, treat this machine as tampered. Otherwise set up again (menu: r, s)."
	}
	return err.Error()
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// readSysfs reads a short text file, "" if absent.
func readSysfs(path string) string {
	b, err := readCapped(path, 256)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
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
	rec, err := seal.Load(f.BootDir, PurposeTOTP)
	if err != nil {
		f.Con.Printf("%v\n", err)
		return
	}
	secret, err := seal.Unseal(f.tpm, rec, nil, f.Profile, f.sealEvents())
	if err != nil {
		f.Con.Printf("the TOTP secret does not unseal, so the clock is not the problem: %v\n", err)
		return
	}
	defer wipe(secret)
	code, err := f.Con.Prompt("Code on your phone now: ")
	if err != nil {
		return
	}
	hint, err := otp.PossibleLocalTimeRTC(f.totpKey(secret), f.Now(), strings.TrimSpace(code))
	if err != nil {
		f.Con.Printf("no clock offset explains that code (%v): the phone has another secret for this machine, or this machine was changed\n", err)
		return
	}
	f.Con.Printf("%s\n", hint)
}

// romHOTP is the no-TPM fallback (Heads' secret_from_rom_hash): the HOTP
// secret is the SHA-256 of the firmware image, so the dongle still turns red
// when the flash changes. It proves much less than a sealed secret (anyone
// who reads the flash can compute it), and the screen says so.
func (f *Flow) romHOTP() {
	if f.ROMImage == nil || f.OpenDongle == nil {
		return
	}
	img, err := f.ROMImage()
	if err != nil {
		f.J.Logf("no-TPM HOTP: read firmware image: %v", err)
		return
	}
	sum := sha256.Sum256(img)
	secret := sum[:otp.SecretLen]
	defer wipe(secret)
	f.Con.Printf("NO TPM: HOTP below is derived from the firmware image hash; it shows a reflash, but not a clever attacker who reads the flash first\n")
	f.checkHOTP(secret)
}
