package reown

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// Where the wizard runs decides what it can do: in glint's boot menu the
// TPM's platform hierarchy (TPM 2.0) or physical presence (TPM 1.2) is
// still open, so any TPM can be cleared; on a running OS only a TPM
// nobody took (or whose owner's key is at hand) can.
type Where int

const (
	// InFirmware: glint's boot menu, before the platform is locked.
	InFirmware Where = iota + 1
	// OnWorkstation: glint as a command on a running OS.
	OnWorkstation
)

// Wizard is one re-ownership. The zero value is not usable: UI, TPM,
// BootDir, Sealing and Firmware are required (Firmware may be nil only
// to be told why the wizard cannot run).
type Wizard struct {
	UI      UI
	TPM     tpm.TPM
	BootDir string
	// Writable runs fn while /boot is writable (the boot flow remounts
	// it); nil: /boot is writable as it is.
	Writable func(fn func() error) error
	// OpenCard opens the owner's OpenPGP card (nil: none supported here).
	// The wizard closes it.
	OpenCard func() (*card.Card, string, error)
	// OpenDongle opens a HOTP dongle (Nitrokey Pro, Librem Key); nil or
	// dongle.ErrNoDongle: none.
	OpenDongle func() (dongle.Device, error)
	// Firmware is the flash chip (or an image file).
	Firmware Firmware
	// Sealing returns the measured state to seal the TOTP secret to (the
	// boot flow's own, or one built for the running OS).
	Sealing func() (*sealed.State, error)
	// Where the wizard runs.
	Where Where
	// DefaultBackupDir is offered for key backups and owner.asc (a USB
	// drive the boot flow mounted); the owner may name another.
	DefaultBackupDir string
	Now              func() time.Time
	// Rand is the randomness for keys, PINs and passphrases (nil:
	// crypto/rand).
	Rand io.Reader
	// Logf records a line in the caller's journal (nil: none).
	Logf func(format string, a ...any)
}

// Result is what a finished re-ownership leaves.
type Result struct {
	Fingerprint []byte
	// RebootNeeded: the new firmware runs only after a power cycle.
	RebootNeeded bool
	// Resumed: this run continued an interrupted one.
	Resumed bool
}

// ErrStopped: the owner stopped between steps; the journal keeps the
// place and the next run continues there.
var ErrStopped = errors.New("stopped by the owner; run the wizard again to continue where it stopped")

// step is one of the wizard's six steps.
type step struct {
	title string
	mark  string // the milestone that means "done"
	run   func(s *session, ctx context.Context) error
}

// session is one run of the wizard: the journal and what this run holds
// in memory (never written: PINs, passphrases, unlocked keys).
type session struct {
	w       *Wizard
	j       *Journal
	resumed bool
	// secrets made or typed in this run, for the summary (wiped at the end).
	kept []keptSecret
	// the owner key: its public key file and a signer for it.
	ownerASC []byte
	keyring  openpgp.EntityList
	cardSig  *card.Signer
	fileSig  *manifest.KeySigner
	cardConn *card.Card
	adminPIN []byte
	userPIN  []byte
	auth     tpm.HierarchyAuth
	// firmware: the personalised image and its owner files.
	image      []byte
	ownerFiles map[string][]byte
	hotpDone   string
	noFirmware bool
}

type keptSecret struct {
	what  string
	value []byte
}

func (s *session) keep(what string, v []byte) {
	s.kept = append(s.kept, keptSecret{what, append([]byte(nil), v...)})
}

func (s *session) wipe() {
	for _, k := range s.kept {
		secret.Wipe(k.value)
	}
	s.kept = nil
	secret.Wipe(s.adminPIN)
	secret.Wipe(s.userPIN)
	s.auth.Wipe()
	if s.cardSig != nil {
		s.cardSig.Close()
	}
	if s.fileSig != nil {
		wipeKey(s.fileSig)
	}
	if s.cardConn != nil {
		s.cardConn.Close()
	}
}

func (w *Wizard) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Wizard) logf(format string, a ...any) {
	if w.Logf != nil {
		w.Logf(format, a...)
	}
}

func (w *Wizard) writable(fn func() error) error {
	if w.Writable == nil {
		return fn()
	}
	return w.Writable(fn)
}

func (w *Wizard) say(format string, a ...any) {
	w.UI.Show(fmt.Sprintf(format, a...))
}

// steps in order. The titles are what the owner sees.
func (w *Wizard) steps() []step {
	return []step{
		{"Check this machine", MarkCheck, (*session).check},
		{"Reset the TPM", MarkTPM, (*session).resetTPM},
		{"Make the owner's keys", MarkKeysTPM, (*session).keys},
		{"Put the owner's key into the firmware", MarkFirmware, (*session).firmware},
		{"Sign /boot, seal the TOTP secret, program the HOTP dongle", MarkTOTP, (*session).boot},
		{"Summary", MarkComplete, (*session).summary},
	}
}

// Run runs the wizard from the start, or from where an interrupted run
// stopped.
func (w *Wizard) Run(ctx context.Context) (*Result, error) {
	if w.UI == nil || w.TPM == nil || w.BootDir == "" || w.Sealing == nil {
		return nil, errors.New("reown: the wizard needs a UI, a TPM, /boot and the sealing state")
	}
	s := &session{w: w}
	defer s.wipe()
	if err := s.openJournal(); err != nil {
		return nil, err
	}
	steps := w.steps()
	for i, st := range steps {
		if s.j.Has(st.mark) && st.mark != MarkCheck {
			continue
		}
		w.say("\n=== Step %d of %d: %s ===\n", i+1, len(steps), st.title)
		if i > 0 {
			ok, err := yes(w.UI, KeyContinueToNext, fmt.Sprintf("Continue with step %d (%s)? ", i+1, strings.ToLower(st.title)), "yes")
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, ErrStopped
			}
		}
		if err := st.run(s, ctx); err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i+1, strings.ToLower(st.title), err)
		}
		if err := s.markDone(st.mark); err != nil {
			return nil, err
		}
	}
	res := &Result{RebootNeeded: !s.noFirmware, Resumed: s.resumed}
	if len(s.keyring) > 0 {
		res.Fingerprint = s.keyring[0].PrimaryKey.Fingerprint
	}
	return res, nil
}

// markDone records milestone m durably.
func (s *session) markDone(m string) error {
	return s.w.writable(func() error { return s.j.mark(s.w.BootDir, m, s.w.now()) })
}

// openJournal starts a journal, or offers to continue an interrupted one.
func (s *session) openJournal() error {
	w := s.w
	j, err := LoadJournal(w.BootDir)
	if err != nil {
		w.say("An earlier re-ownership left a journal glint cannot read (%v).\n", err)
		if _, err := w.UI.Ask(Question{Key: KeyResume, Prompt: "Start again from the beginning? Type 'restart': ", Confirm: "restart"}); err != nil {
			return err
		}
		j = nil
		if err := w.writable(func() error { return removeJournal(w.BootDir) }); err != nil {
			return err
		}
	}
	if j != nil && len(j.Done) == 0 {
		// Requested from the boot menu or the OS (Request): nothing to
		// resume, the wizard starts.
		w.say("Re-ownership of this machine, requested on %s.\n", j.Started.UTC().Format(time.DateTime))
		s.j = j
		return nil
	}
	if j != nil && !j.Complete() {
		w.say("A re-ownership of this machine started on %s did not finish: it stopped after %s.\n", j.Started.UTC().Format(time.DateTime), describeMark(j.Last()))
		w.say("Continue: the wizard checks what was done and goes on from there.\nRestart: everything is done again from step 1 (the TPM is reset again, new keys are made).\n")
		a, err := w.UI.Ask(Question{Key: KeyResume, Prompt: "Continue or restart? ", Choices: []string{"continue", "restart"}, Default: "continue"})
		if err != nil {
			return err
		}
		if string(a) == "continue" {
			s.j, s.resumed = j, true
			return nil
		}
		if err := w.writable(func() error { return removeJournal(w.BootDir) }); err != nil {
			return err
		}
	}
	s.j = &Journal{Version: journalVersion, Started: w.now().UTC().Truncate(time.Second)}
	return nil
}

func describeMark(m string) string {
	switch m {
	case "":
		return "nothing (the check)"
	case MarkCheck:
		return "step 1 (the check), before the TPM was reset"
	case MarkTPM:
		return "step 2 (the TPM was reset; no owner key yet)"
	case MarkKeysMade:
		return "step 3 (the owner key was made; the TPM not yet taken with it)"
	case MarkKeysTPM:
		return "step 3 (owner key made, TPM taken; the firmware still holds the previous owner's key)"
	case MarkFirmware:
		return "step 4 (the firmware holds the new owner's key; /boot not signed yet)"
	case MarkSigned:
		return "step 5 (/boot signed; the TOTP secret not sealed yet)"
	case MarkTOTP:
		return "step 5 (everything done but the summary)"
	}
	return m
}

// journalPath is a file in the wizard's directory on /boot.
func (s *session) journalPath(name string) string {
	return filepath.Join(s.w.BootDir, JournalDir, name)
}

// wipeOldState removes the previous owner's glint state from /boot: sealed
// records (their TPM objects are gone with the reset), owner approvals
// (for the previous owner's key), the HOTP counter and the update hook's
// note. The manifest stays until step 5 signs a new one: the list of what
// will be signed is shown against it (unverified: signed by a key the
// firmware will no longer hold), so the new owner sees whether /boot
// changed since the previous owner signed it. The wizard's journal stays.
func (s *session) wipeOldState() ([]string, error) {
	var removed []string
	err := s.w.writable(func() error {
		for _, rel := range []string{"glint/sealed", "glint/approvals", sealed.HOTPCounterFile, "glint/expected-update"} {
			p := filepath.Join(s.w.BootDir, rel)
			if _, err := os.Lstat(p); err != nil {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			removed = append(removed, rel)
		}
		return nil
	})
	return removed, err
}
