package reown

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// boot is step 5: sign /boot with the new key (after showing what will be
// signed), seal a new TOTP secret to the PCR values of the next boot and
// show it for the phone, program it into a HOTP dongle.
func (s *session) boot(ctx context.Context) error {
	if err := s.ensureOwner(); err != nil {
		return err
	}
	if err := s.ensureTPMAuth(); err != nil {
		return err
	}
	if err := s.ensureImage(ctx); err != nil {
		return err
	}
	if !s.j.Has(MarkSigned) {
		if err := s.signBoot(); err != nil {
			return err
		}
		if err := s.markDone(MarkSigned); err != nil {
			return err
		}
	}
	return s.sealTOTP()
}

// ensureTPMAuth gives the TPM handle the owner's authorisations (a run
// resumed after step 3).
func (s *session) ensureTPMAuth() error {
	if len(s.auth.Owner) > 0 {
		return nil
	}
	return s.takeTPM()
}

// ensureImage gets the new firmware image of step 4 in a resumed run, from
// the chip, and checks it is the one step 4 wrote.
func (s *session) ensureImage(ctx context.Context) error {
	if s.image != nil {
		return nil
	}
	if s.w.Firmware == nil {
		return errors.New("glint cannot reach the flash chip here")
	}
	cur, err := s.w.Firmware.Read(ctx)
	if err != nil {
		return fmt.Errorf("read the firmware: %s", describeFlashError(err))
	}
	sum := sha256.Sum256(cur)
	if hex.EncodeToString(sum[:]) != s.j.ImageSHA256 {
		return errors.New("the firmware on the chip is not the image step 4 wrote (written over since?): restart the wizard")
	}
	img, err := rom.FromBytes(cur)
	if err != nil {
		return err
	}
	files, err := rom.OwnerFiles(img)
	if err != nil {
		return err
	}
	s.image, s.ownerFiles = cur, files
	return nil
}

// signBoot shows what will be signed and signs it, binding /boot to this
// TPM and starting a new rollback counter (the reset deleted the old one).
func (s *session) signBoot() error {
	w := s.w
	plan, err := manifest.PlanSign(w.BootDir, s.keyring, manifest.BuildOptions{})
	if err != nil {
		return fmt.Errorf("hash /boot: %w", err)
	}
	w.say("What will be signed (your key vouches for exactly these files):\n%s", plan.Summary(40))
	ok, err := yes(w.UI, KeySign, "Sign /boot as listed above? ", "")
	if err == nil && !ok {
		err = fmt.Errorf("%w: /boot was not signed", ErrDeclined)
	}
	if err != nil {
		return err
	}
	var m *manifest.Manifest
	err = w.writable(func() error {
		var err error
		m, err = manifest.SignPlanned(w.BootDir, plan, s.signer(), w.TPM, manifest.SignOptions{Now: w.Now})
		return err
	})
	if err != nil {
		return fmt.Errorf("sign /boot: %w", err)
	}
	s.j.Counter = m.Counter
	w.say("/boot signed: %d files, rollback counter %d.\n", len(m.Entries), m.Counter)
	return nil
}

// sealTOTP makes a new TOTP secret, seals it to the next boot's values
// (the PCRs now, with the new owner files' PCR 7), shows it for the phone
// and the HOTP dongle, and lets the owner check the phone's code.
func (s *session) sealTOTP() error {
	w := s.w
	st, err := w.Sealing()
	if err != nil {
		return err
	}
	// Secrets are sealed so that PCR values approved by the new owner's
	// approval key also open them, as at every boot: with the new owner
	// files, never the previous owner's.
	st.ApprovalKey = nil
	if k, _, err := approval.KeyFromOwnerFiles(s.ownerFiles); err == nil && w.TPM.Version() == tpm.Version20 {
		st.ApprovalKey = k
	}
	next, events, err := s.nextValues(st.Bank)
	if err != nil {
		return err
	}
	totpSecret, err := sealed.NewSecret(w.TPM)
	if err != nil {
		return err
	}
	defer secret.Wipe(totpSecret)
	if err := st.SealTOTPFor(totpSecret, next, events); err != nil {
		return fmt.Errorf("seal the TOTP secret: %w", err)
	}
	issuer, err := w.UI.Ask(Question{Key: KeyTOTPIssuer, Prompt: "Name of the code in your authenticator app (issuer): ", Default: "glint"})
	if err != nil {
		return err
	}
	account, err := w.UI.Ask(Question{Key: KeyTOTPAccount, Prompt: "Account (which machine): ", Default: "-"})
	if err != nil {
		return err
	}
	acct := string(account)
	if acct == "-" {
		acct = ""
	}
	key := sealed.TOTPKey(string(issuer), acct, totpSecret)
	var qr bytes.Buffer
	if err := sealed.WriteEnrollment(&qr, key); err != nil {
		return err
	}
	w.say("Your new TOTP secret is sealed to this machine's next boot. The previous owner's code is gone: only this one will show from now on.\n%s", qr.String())
	now := w.now()
	code, err := otp.TOTP(otp.SHA1, totpSecret, now, 30*time.Second, 6)
	if err != nil {
		return err
	}
	w.say("TOTP code now: %s (%s UTC): your phone must show the same.\n", otp.FormatCode(code, 6), now.UTC().Format("15:04:05"))
	if err := s.checkPhone(key); err != nil {
		return err
	}
	s.hotp(st, totpSecret)
	return nil
}

// checkPhone asks for the phone's code and compares it (one 30-second
// step either way), so a mistyped enrolment is found now, not at the next
// boot. "skip" skips it.
func (s *session) checkPhone(k otp.Key) error {
	w := s.w
	for try := 0; try < 3; try++ {
		a, err := w.UI.Ask(Question{Key: KeyTOTPCheck, Prompt: "Type the code your phone shows (or 'skip'): ", Default: "skip"})
		if err != nil {
			return err
		}
		if string(a) == "skip" {
			return nil
		}
		got, err := otp.ParseCode(strings.TrimSpace(string(a)), 6)
		if err != nil {
			w.say("%v\n", err)
			continue
		}
		now := w.now()
		for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
			want, err := otp.TOTP(otp.SHA1, k.Secret, now.Add(d), 30*time.Second, 6)
			if err == nil && want == got {
				w.say("The phone shows the right code.\n")
				return nil
			}
		}
		w.say("That is not the code: check the phone's clock, or scan the QR code again.\n")
	}
	return errors.New("the phone's code did not match three times; run the wizard again to seal a new secret")
}

// hotp programs the TOTP secret into a HOTP dongle when one is plugged in
// (Heads' HOTP check: the dongle lights green at every boot). A Nitrokey's
// HOTP admin PIN is its OpenPGP card's admin PIN, which this run may have
// just set. Failures are reported, not fatal: HOTP is an extra.
func (s *session) hotp(st *sealed.State, sec []byte) {
	w := s.w
	if w.OpenDongle == nil {
		return
	}
	dev, err := w.OpenDongle()
	if errors.Is(err, dongle.ErrNoDongle) {
		w.say("No HOTP dongle plugged in: HOTP not programmed (glint otp seal --hotp does it later).\n")
		return
	}
	if err != nil {
		w.say("HOTP dongle: %v: not programmed.\n", err)
		return
	}
	defer dev.Close()
	ok, err := yes(w.UI, KeyHOTP, "Program the same secret into the HOTP dongle? ", "yes")
	if err != nil || !ok {
		return
	}
	err = st.ProgramDongle(dev, sec, func(tries int) ([]byte, error) {
		if v, ok := s.hotpPIN(); ok {
			return v, nil
		}
		return w.UI.Ask(Question{Key: KeyHOTPAdminPIN, Prompt: fmt.Sprintf("Dongle admin PIN (%d tries left): ", tries), Secret: true})
	})
	if err != nil {
		w.say("HOTP dongle: %v: not programmed.\n", err)
		return
	}
	s.hotpDone = "programmed"
	w.say("HOTP programmed into the dongle.\n")
}

// hotpPIN is the card's new admin PIN of this run (a Nitrokey Pro or
// Librem Key checks HOTP with its card's admin PIN); otherwise the owner is
// asked (or the answers file's hotp.admin-pin).
func (s *session) hotpPIN() ([]byte, bool) {
	if s.adminPIN != nil && s.j.KeysWhere != WhereFile {
		return bytes.Clone(s.adminPIN), true
	}
	return nil, false
}
