package sealed

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// PurposeTOTP names the sealed TOTP record (/boot/glint/sealed/totp.json).
const PurposeTOTP = "totp"

// NewSecret draws a TOTP/HOTP secret of otp.SecretLen bytes (RFC 4226's
// recommended 160 bits) from the TPM's RNG mixed with the kernel's, so
// neither alone decides it. The caller wipes it.
func NewSecret(t tpm.TPM) ([]byte, error) {
	a, err := t.Random(otp.SecretLen)
	if err != nil {
		return nil, fmt.Errorf("TPM random: %w", err)
	}
	defer secret.Wipe(a)
	b := make([]byte, otp.SecretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	for i := range b {
		b[i] ^= a[i]
	}
	return b, nil
}

// SealTOTP seals the TOTP secret to the profile's OTP PCRs (PCR 4 at its
// start value) and stores the record on /boot, replacing any older one.
func (s *State) SealTOTP(totpSecret []byte) error {
	vals, predicted, err := s.sealValues(s.Profile.OTP)
	if err != nil {
		return err
	}
	rec, err := seal.Seal(s.TPM, totpSecret, seal.Request{
		Purpose: PurposeTOTP, Profile: s.Profile, Bank: s.Bank, Values: vals,
		Predicted: predicted, Events: s.Events(), Now: s.now(), ApprovalKey: s.ApprovalKey, Epoch: s.sealEpoch(),
	})
	if err != nil {
		return err
	}
	return s.writable(func() error { return seal.Save(s.BootDir, rec) })
}

// SealNewTOTP draws a new secret (NewSecret) and seals it (SealTOTP). The
// caller shows it for the phone (TOTPKey, WriteEnrollment) and wipes it.
func (s *State) SealNewTOTP() ([]byte, error) {
	sec, err := NewSecret(s.TPM)
	if err != nil {
		return nil, err
	}
	if err := s.SealTOTP(sec); err != nil {
		secret.Wipe(sec)
		return nil, err
	}
	return sec, nil
}

// LoadTOTP reads the sealed TOTP record from /boot: seal.ErrNotSealed
// (wrapped) when none was sealed, a *seal.ParseError for a broken one.
func LoadTOTP(bootDir string) (*seal.Record, error) {
	return seal.Load(bootDir, PurposeTOTP)
}

// UnsealTOTP asks the TPM for the TOTP secret of rec. When the TPM refuses,
// a *seal.MismatchError names the PCRs and events that changed;
// tpm.ErrLockout and tpm.ErrCleared mark those TPM states
// (DescribeTPMError says what to do). The caller wipes the secret.
func (s *State) UnsealTOTP(rec *seal.Record) ([]byte, error) {
	if tpm.IsAuthorizedBlob(rec.Blob) {
		return s.unsealApproved(rec, nil)
	}
	return seal.Unseal(s.TPM, rec, nil, s.Profile, s.Events())
}

// ApprovalsDir is where owner approvals of PCR values are kept (package
// approval): /boot/glint/approvals.
func (s *State) ApprovalsDir() string { return filepath.Join(s.BootDir, "glint", "approvals") }

// unsealApproved opens a record sealed with an approval key: the sealed-to
// state needs nothing more, another state needs the owner's approval of
// the values the PCRs hold now. A refusal is explained like any other.
func (s *State) unsealApproved(rec *seal.Record, pin []byte) ([]byte, error) {
	a, ok := s.TPM.(tpm.Authorizer)
	if !ok {
		return nil, fmt.Errorf("unseal %s secret: it was sealed to owner approvals, which this %s cannot check", rec.Purpose, s.TPM.Version())
	}
	now, err := s.TPM.ReadPCRs(rec.Bank, rec.PCRList())
	if err != nil {
		return nil, fmt.Errorf("unseal %s secret: read PCRs: %w", rec.Purpose, err)
	}
	want := tpm.PCRPolicy{Bank: rec.Bank, Values: now}
	if e, err := approval.ReadEpoch(s.TPM); err == nil {
		want.Epoch = e // approvals of an older epoch are skipped and named
	}
	secret, used, err := approval.Unseal(a, rec.Blob, s.ApprovalsDir(), seal.ApprovalRef(rec.Purpose), want, s.ApprovalKey, pin)
	var pe *tpm.PolicyError
	if errors.As(err, &pe) {
		return nil, seal.Explain(rec, now, s.Profile, s.Events(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("unseal %s secret: %w", rec.Purpose, err)
	}
	if used != nil && s.Logf != nil {
		s.Logf("%s secret released by the owner's approval: %s", rec.Purpose, approval.Describe(used))
	}
	s.afterUnseal(rec, secret, pin, used)
	return secret, nil
}

// TOTPKey labels a secret for the authenticator app: the owner's issuer
// and account names, or else this machine's model and serial number
// (otp.MachineAccount).
func TOTPKey(issuer, account string, totpSecret []byte) otp.Key {
	if account == "" {
		host, _ := os.Hostname()
		product, serial := otp.ReadDMI(os.DirFS("/sys"))
		account = otp.MachineAccount(host, product, serial)
	}
	return otp.Key{Type: otp.TypeTOTP, Issuer: issuer, Account: account, Secret: totpSecret}
}

// WriteEnrollment prints the otpauth URI of k and its QR code (in
// half-block characters, readable by a phone from a text console).
func WriteEnrollment(w io.Writer, k otp.Key) error {
	uri, err := k.URI()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Scan this with your authenticator app (or type the URI in):\n")
	var qr bytes.Buffer
	if err := otp.RenderHalfBlocks(&qr, uri); err == nil {
		fmt.Fprintf(w, "%s", qr.String())
	}
	fmt.Fprintf(w, "%s\n", uri)
	return nil
}

// ROMSecret is the no-TPM fallback HOTP secret (Heads'
// secret_from_rom_hash): the SHA-256 of the firmware image, cut to
// otp.SecretLen. It shows a reflash, but anyone who reads the flash can
// compute it: it proves much less than a sealed secret.
func ROMSecret(image []byte) []byte {
	sum := sha256.Sum256(image)
	return bytes.Clone(sum[:otp.SecretLen])
}
