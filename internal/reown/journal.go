package reown

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/tpm"
)

// The journal is the wizard's memory across power cuts: which steps are
// done, and the facts a later step or a resumed run needs (the TPM's
// identity after the reset, the new owner key, the image written and the
// PCR values it will produce). It lives on /boot, the one disk glint
// writes, as JSON replaced atomically (safefile) after each step's
// effects are on disk, in the TPM or on the chip; so a power cut leaves
// either the step before or the step after, and the interrupted step runs
// again from its start (each step is written to be repeated).
//
// It holds no secret: PINs and passphrases made by a run exist only in
// that run's memory and on the owner's paper.
//
// The journal is not trusted: anyone with the disk can write it. It only
// decides where the wizard resumes, and a resumed run checks each
// recorded fact against the machine before relying on it (the TPM's
// identity, the card's key, the chip's image). The boot flow reads it only
// to say that a re-ownership was interrupted (Pending), and then boots
// nothing by itself.

// JournalDir is the wizard's directory on /boot.
const JournalDir = "glint/reown"

const (
	journalFile    = "journal.json"
	journalVersion = 1
	maxJournalSize = 64 << 10
	// OwnerKeyFile keeps the new owner's public key between steps.
	OwnerKeyFile = "owner.asc"
)

// Milestones recorded in the journal, in order. A step may record more
// than one, so a step that did something it cannot repeat (taking the TPM
// with a key) resumes after it.
const (
	MarkCheck     = "check"
	MarkTPM       = "tpm"
	MarkKeysMade  = "keys.made"
	MarkKeysTPM   = "keys.tpm"
	MarkFirmware  = "firmware"
	MarkSigned    = "boot.signed"
	MarkTOTP      = "boot.totp"
	MarkHOTP      = "boot.hotp"
	MarkComplete  = "complete"
	maxMarks      = 32
	maxFieldBytes = 4096
)

var allMarks = []string{MarkCheck, MarkTPM, MarkKeysMade, MarkKeysTPM, MarkFirmware, MarkSigned, MarkTOTP, MarkHOTP, MarkComplete}

// Journal is the wizard's record of one re-ownership.
type Journal struct {
	Version int       `json:"version"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Done lists the milestones reached, in order.
	Done []string `json:"done"`
	// TPM after the reset: family and identity (tpm.Identity.String).
	TPMFamily   int    `json:"tpm_family,omitempty"`
	TPMIdentity string `json:"tpm_identity,omitempty"`
	// Keys: where the owner key lives ("card", "memory", "file"), its
	// fingerprint (hex), the card's serial, the TPM authorisation method.
	KeysWhere   string `json:"keys_where,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	CardSerial  string `json:"card_serial,omitempty"`
	AuthMethod  string `json:"auth_method,omitempty"`
	BackupDir   string `json:"backup_dir,omitempty"`
	// Firmware: SHA-256 of the image written (hex) and the PCR values it
	// predicts, bank name -> PCR index -> hex.
	ImageSHA256 string                       `json:"image_sha256,omitempty"`
	Predicted   map[string]map[string]string `json:"predicted,omitempty"`
	// Counter is the rollback counter of the manifest signed.
	Counter uint64 `json:"counter,omitempty"`
}

// Has reports whether milestone m was reached.
func (j *Journal) Has(m string) bool {
	for _, d := range j.Done {
		if d == m {
			return true
		}
	}
	return false
}

// Complete reports whether the re-ownership finished.
func (j *Journal) Complete() bool { return j.Has(MarkComplete) }

// Last is the last milestone reached ("" before the first).
func (j *Journal) Last() string {
	if len(j.Done) == 0 {
		return ""
	}
	return j.Done[len(j.Done)-1]
}

// JournalError is a journal that cannot be used.
type JournalError struct {
	Field string
	Err   error
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("re-ownership journal: %s: %v", e.Field, e.Err)
}
func (e *JournalError) Unwrap() error { return e.Err }

func journalErrorf(field, format string, a ...any) error {
	return &JournalError{Field: field, Err: fmt.Errorf(format, a...)}
}

// ParseJournal reads a journal (untrusted: from /boot) and checks every
// field's form.
func ParseJournal(untrusted []byte) (*Journal, error) {
	if len(untrusted) > maxJournalSize {
		return nil, journalErrorf("size", "%d bytes, more than %d", len(untrusted), maxJournalSize)
	}
	dec := json.NewDecoder(bytes.NewReader(untrusted))
	dec.DisallowUnknownFields()
	var j Journal
	if err := dec.Decode(&j); err != nil {
		return nil, journalErrorf("json", "%v", err)
	}
	if dec.More() {
		return nil, journalErrorf("json", "data after the journal")
	}
	if j.Version != journalVersion {
		return nil, journalErrorf("version", "%d, want %d (written by another glint?)", j.Version, journalVersion)
	}
	if len(j.Done) > maxMarks {
		return nil, journalErrorf("done", "%d milestones", len(j.Done))
	}
	// Milestones must be known and in their order, each once.
	last := -1
	for _, d := range j.Done {
		i := markIndex(d)
		if i < 0 {
			return nil, journalErrorf("done", "unknown milestone %q", d)
		}
		if i <= last {
			return nil, journalErrorf("done", "milestone %q out of order", d)
		}
		last = i
	}
	for name, v := range map[string]string{"tpm_identity": j.TPMIdentity, "keys_where": j.KeysWhere, "fingerprint": j.Fingerprint,
		"card_serial": j.CardSerial, "auth_method": j.AuthMethod, "backup_dir": j.BackupDir, "image_sha256": j.ImageSHA256} {
		if len(v) > maxFieldBytes {
			return nil, journalErrorf(name, "%d bytes", len(v))
		}
	}
	if j.TPMIdentity != "" {
		if _, err := tpm.ParseIdentity(j.TPMIdentity); err != nil {
			return nil, journalErrorf("tpm_identity", "%v", err)
		}
	}
	switch j.KeysWhere {
	case "", WhereCard, WhereMemory, WhereFile:
	default:
		return nil, journalErrorf("keys_where", "%q", j.KeysWhere)
	}
	if j.Fingerprint != "" {
		if b, err := hex.DecodeString(j.Fingerprint); err != nil || (len(b) != 20 && len(b) != 32) {
			return nil, journalErrorf("fingerprint", "want 40 or 64 hex digits")
		}
	}
	if j.ImageSHA256 != "" {
		if b, err := hex.DecodeString(j.ImageSHA256); err != nil || len(b) != 32 {
			return nil, journalErrorf("image_sha256", "want 64 hex digits")
		}
	}
	if len(j.Predicted) > 4 {
		return nil, journalErrorf("predicted", "%d banks", len(j.Predicted))
	}
	for bank, pcrs := range j.Predicted {
		alg, err := tpm.ParseAlg(bank)
		if err != nil {
			return nil, journalErrorf("predicted", "%v", err)
		}
		if len(pcrs) > 24 {
			return nil, journalErrorf("predicted", "%d PCRs", len(pcrs))
		}
		for idx, v := range pcrs {
			var n int
			if _, err := fmt.Sscanf(idx, "%d", &n); err != nil || n < 0 || n > 23 || fmt.Sprint(n) != idx {
				return nil, journalErrorf("predicted", "PCR %q", idx)
			}
			if b, err := hex.DecodeString(v); err != nil || len(b) != alg.Size() {
				return nil, journalErrorf("predicted", "%s PCR %s: want %d bytes of hex", bank, idx, alg.Size())
			}
		}
	}
	return &j, nil
}

func markIndex(m string) int {
	for i, x := range allMarks {
		if x == m {
			return i
		}
	}
	return -1
}

// LoadJournal reads the journal under bootDir: nil and no error when there
// is none.
func LoadJournal(bootDir string) (*Journal, error) {
	b, err := safefile.ReadCapped(filepath.Join(bootDir, JournalDir, journalFile), maxJournalSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseJournal(b)
}

// Pending reports an interrupted re-ownership under bootDir: the journal
// of one that started and did not complete. The boot flow asks it first
// and then boots nothing by itself.
func Pending(bootDir string) (*Journal, bool) {
	j, err := LoadJournal(bootDir)
	if err != nil {
		// A journal nobody can read is still a sign of an interrupted
		// re-ownership (or of someone writing there): say so.
		return &Journal{Version: journalVersion}, true
	}
	return j, j != nil && !j.Complete()
}

// save writes the journal atomically.
func (j *Journal) save(bootDir string, now time.Time) error {
	j.Updated = now.UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(bootDir, JournalDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return safefile.Write(filepath.Join(dir, journalFile), append(b, '\n'), 0o644)
}

// mark records milestone m (and any fields already set) durably.
func (j *Journal) mark(bootDir, m string, now time.Time) error {
	if !j.Has(m) {
		j.Done = append(j.Done, m)
	}
	return j.save(bootDir, now)
}

// removeJournal deletes the journal directory (a clean restart).
func removeJournal(bootDir string) error {
	return os.RemoveAll(filepath.Join(bootDir, JournalDir))
}

// Request asks for a re-ownership at the next boot: a journal with no
// milestone, which the boot flow finds before it locks the TPM's platform
// hierarchy (Pending) and answers by running the wizard there, the one
// place every TPM can be cleared. The boot menu's "re-own this machine"
// and `glint own --at-next-boot` write it. writable is as Wizard.Writable.
func Request(bootDir string, writable func(fn func() error) error, now time.Time) error {
	if writable == nil {
		writable = func(fn func() error) error { return fn() }
	}
	j := &Journal{Version: journalVersion, Started: now.UTC().Truncate(time.Second)}
	return writable(func() error { return j.save(bootDir, now) })
}

// Cancel removes a journal that records no change yet (a request, or a run
// stopped at the check), so a declined re-ownership leaves nothing behind.
// A journal of a run that changed something stays: the machine is half
// re-owned and the boot flow keeps saying so.
func Cancel(bootDir string, writable func(fn func() error) error) error {
	j, err := LoadJournal(bootDir)
	if err != nil || j == nil {
		return err
	}
	if len(j.Done) > 1 || (len(j.Done) == 1 && j.Done[0] != MarkCheck) {
		return nil
	}
	if writable == nil {
		writable = func(fn func() error) error { return fn() }
	}
	return writable(func() error { return removeJournal(bootDir) })
}
