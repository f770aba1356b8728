package reown

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/tpm"
)

// resetTPM is step 2: after the owner's explicit confirmation, the TPM is
// cleared (TPM 2.0 TPM2_Clear; TPM 1.2 force clear, then ownership taken
// again with the well-known secrets), glint's storage key persisted, the
// dictionary-attack settings chosen, and the previous owner's glint state
// removed from /boot. The owner and lockout authorisations are set in step
// 3, from the new owner key.
//
// Repeating it is harmless: a power cut in the middle leaves a TPM cleared
// or not, and the step clears it again.
func (s *session) resetTPM(ctx context.Context) error {
	w := s.w
	w.say(`This resets everything that made this machine someone else's:
  - the TPM is cleared: every secret sealed in it (the TOTP/HOTP secret, the
    disk unlock key), glint's rollback counter and the previous owner's TPM
    authorisations are gone for good;
  - the previous owner's sealed records are removed from /boot; in step 4 the
    owner key in the firmware is replaced by yours, in step 5 /boot is signed
    with it.
Your disk's own passphrase is not touched: keep it at hand, the TPM-sealed
disk key will not open the disk any more.
`)
	if _, err := w.UI.Ask(Question{Key: KeyConfirm, Prompt: fmt.Sprintf("Type %q to reset: ", confirmResetPhrase), Confirm: confirmResetPhrase}); err != nil {
		return err
	}
	if err := w.TPM.Clear(); err != nil {
		return fmt.Errorf("clear the TPM: %w", err)
	}
	w.say("TPM cleared.\n")
	w.logf("reown: TPM cleared")
	if err := w.TPM.PrepareOwnership(); err != nil {
		return fmt.Errorf("prepare the TPM for its new owner: %w", err)
	}
	id, err := w.TPM.Identity()
	if err != nil {
		return fmt.Errorf("read the TPM's new identity: %w", err)
	}
	s.j.TPMIdentity = id.String()
	w.say("TPM identity now %s (a new storage key: nothing sealed before opens any more).\n", id.Short())
	if err := s.lockoutSettings(); err != nil {
		return err
	}
	removed, err := s.wipeOldState()
	if err != nil {
		return fmt.Errorf("remove the previous owner's state from /boot: %w", err)
	}
	if len(removed) > 0 {
		w.say("Removed from /boot: %s\n", strings.Join(removed, ", "))
	}
	return nil
}

// lockoutSettings asks for the TPM's dictionary-attack settings and sets
// them (TPM 2.0; right after the clear the lockout authorisation is still
// empty). They guard PIN-protected secrets such as a disk key with a PIN:
// how many wrong PINs lock the TPM, how long until one try comes back,
// and how long a wrong lockout authorisation blocks the lockout reset.
func (s *session) lockoutSettings() error {
	w := s.w
	if w.TPM.Version() != tpm.Version20 {
		w.say("TPM 1.2: the dictionary-attack lockout is fixed by the TPM's maker; glint shows its state in the boot menu (l).\n")
		return nil
	}
	w.say(`TPM PIN lockout (dictionary-attack protection), for secrets guarded by a PIN:
  tries      wrong PINs before the TPM locks (power cuts while a PIN-guarded
             secret is in use count too, so not too few)
  recovery   powered-on time after which one try comes back
  lockout    after a wrong lockout authorisation, how long the lockout reset is
             blocked; "reboot" (0) gives code after glint one guess per boot
`)
	tries, err := askUint(w.UI, Question{Key: KeyTPMMaxTries, Prompt: "Wrong PINs before the TPM locks: ", Default: strconv.Itoa(tpm.DefaultMaxTries)}, 1, 1000)
	if err != nil {
		return err
	}
	rec, err := askDuration(w.UI, Question{Key: KeyTPMRecovery, Prompt: "One try comes back after: ", Default: (tpm.DefaultRecoverySeconds * time.Second).String()})
	if err != nil {
		return err
	}
	lr, err := askDuration(w.UI, Question{Key: KeyTPMLockout, Prompt: "A wrong lockout authorisation blocks the reset until: ", Default: "reboot"})
	if err != nil {
		return err
	}
	if err := w.TPM.ConfigureLockout(uint32(tries), uint32(rec/time.Second), uint32(lr/time.Second)); err != nil {
		return fmt.Errorf("set the TPM's lockout settings: %w", err)
	}
	lrText := "the next reboot"
	if lr > 0 {
		lrText = lr.String()
	}
	w.say("TPM lockout: %d wrong PINs, one back every %s of powered time; a wrong lockout authorisation blocks the reset until %s.\n", tries, rec, lrText)
	return nil
}

func askUint(ui UI, q Question, min, max uint64) (uint64, error) {
	a, err := ui.Ask(q)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(a), 10, 32)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s: %q is not a number from %d to %d", q.Key, a, min, max)
	}
	return n, nil
}

// askDuration reads "10m", "1h30m", "600" (seconds) or "reboot" (0).
func askDuration(ui UI, q Question) (time.Duration, error) {
	a, err := ui.Ask(q)
	if err != nil {
		return 0, err
	}
	return parseDuration(q.Key, string(a))
}

func parseDuration(key, s string) (time.Duration, error) {
	if s == "reboot" || s == "0" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d > 1000*time.Hour {
		return 0, errors.New(key + ": want a duration such as 10m, 1h, 600 (seconds) or reboot")
	}
	return d.Truncate(time.Second), nil
}
