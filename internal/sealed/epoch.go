package sealed

import (
	"errors"
	"fmt"
	"slices"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

// Approval epochs (package approval, EpochIndex; docs/firmware-updates.md):
// a secret sealed with the owner's approval key is bound to the epoch
// counter as it is at sealing, and the first boot that releases a secret
// under a newer epoch (an approved or re-sealed update) raises the counter,
// so the firmware left behind, and every approval of it, no longer gets
// the code.

// sealEpoch is the epoch a secret sealed now is bound to: the counter's
// value, the counter defined first where this TPM 2.0 has none (with the
// owner authorisation the handle holds). nil without an approval key, on a
// TPM 1.2, or when the counter cannot be defined: sealed as before epochs,
// and moved onto the epoch at the first boot after the counter exists.
func (s *State) sealEpoch() *tpm.Epoch {
	if s.ApprovalKey == nil || s.TPM == nil || s.TPM.Version() != tpm.Version20 {
		return nil
	}
	e, err := approval.EnsureEpoch(s.TPM)
	if err != nil {
		s.logf("sealing without an approval epoch: %v", err)
		return nil
	}
	return e
}

func (s *State) logf(format string, a ...any) {
	if s.Logf != nil {
		s.Logf(format, a...)
	}
}

// afterUnseal runs after the TPM released rec's secret: it commits the
// epoch the secret was released under (the first boot of an update retires
// the firmware before it), and moves a secret sealed before epochs onto the
// epoch counter, sealed again to the state that just released it.
func (s *State) afterUnseal(rec *seal.Record, secret, pin []byte, used *tpm.Approval) {
	bound, err := tpm.AuthorizedBlobEpoch(rec.Blob)
	if err != nil {
		return
	}
	if used != nil {
		bound = used.Policy.Epoch
	}
	if bound != nil {
		v, err := approval.Commit(s.TPM, bound)
		if err != nil {
			s.logf("approval epoch: %v", err)
			return
		}
		s.logf("%s secret released at approval epoch %d; the counter reads %d", rec.Purpose, bound.Value, v)
		return
	}
	if s.ApprovalKey == nil {
		return
	}
	now, err := approval.ReadEpoch(s.TPM)
	if err != nil {
		return // no counter yet: stays as it is
	}
	vals, predicted, err := s.sealValues(rec.PCRList())
	if err != nil {
		s.logf("approval epoch: %v", err)
		return
	}
	if _, err := s.reseal(rec, secret, pin, vals, mergeInts(rec.Predicted, predicted), rec.Events, now); err != nil {
		s.logf("moving the %s secret onto the approval epoch: %v", rec.Purpose, err)
		return
	}
	s.logf("%s secret sealed again, bound to approval epoch %d: approvals made before epochs no longer open it", rec.Purpose, now.Value)
}

// reseal seals secret again like rec (purpose, PIN, extra fields, approval
// key) to vals, bound to epoch (nil: none), and stores the new record.
func (s *State) reseal(rec *seal.Record, secret, pin []byte, vals map[int][]byte, predicted []int, events []eventlog.EventRecord, epoch *tpm.Epoch) (*seal.Record, error) {
	if rec.PIN != (len(pin) > 0) {
		return nil, fmt.Errorf("seal %s secret again: its PIN is needed", rec.Purpose)
	}
	key := s.ApprovalKey
	if !tpm.IsAuthorizedBlob(rec.Blob) {
		key, epoch = nil, nil // sealed to PCR values alone, as before
	}
	next, err := seal.Seal(s.TPM, secret, seal.Request{
		Purpose: rec.Purpose, Profile: s.Profile, Bank: rec.Bank, Values: vals,
		Predicted: predicted, PIN: pin, Events: events, Extra: rec.Extra, Now: s.now(),
		ApprovalKey: key, Epoch: epoch,
	})
	if err != nil {
		return nil, err
	}
	if err := s.writable(func() error { return seal.Save(s.BootDir, next) }); err != nil {
		return nil, err
	}
	return next, nil
}

// ResealFor seals rec's secret (unsealed in this boot by the caller, with
// its PIN if it has one) again for the state the next boot will have after
// a firmware update: rec's sealed-to values, with the PCRs in next (a
// prediction from the new image, approval.Predicted's or rom.Predict's)
// replacing theirs, and nextEvents replacing those PCRs' events, so that a
// later refusal is explained against the prediction. It is how a TPM 1.2,
// or a TPM 2.0 without an approval key, keeps the same TOTP code and disk
// key across an update: the secret is sealed to the new values before the
// chip is written.
//
// A secret sealed with the approval key stays so, bound to the epoch after
// the counter's: the first boot of the new image commits it, and the
// firmware it replaces stops getting the code.
//
// After the write fails, the secret still unseals in the old state only
// where an approval covers it (TPM 2.0 with an approval key); otherwise
// the owner restores the backup and seals again (menu r), or keeps the new
// record by retrying the write.
func (s *State) ResealFor(rec *seal.Record, secret, pin []byte, next map[int][]byte, nextEvents []eventlog.EventRecord) (*seal.Record, error) {
	vals := map[int][]byte{}
	for i, v := range rec.PCRs {
		vals[i] = v
	}
	predicted := slices.Clone(rec.Predicted)
	for i, v := range next {
		if _, sealedTo := vals[i]; !sealedTo {
			continue
		}
		vals[i] = v
		predicted = mergeInts(predicted, []int{i})
	}
	var events []eventlog.EventRecord
	for _, e := range rec.Events {
		if _, replaced := next[e.PCR]; !replaced {
			events = append(events, e)
		}
	}
	for _, e := range nextEvents {
		if _, sealedTo := vals[e.PCR]; sealedTo {
			events = append(events, e)
		}
	}
	var epoch *tpm.Epoch
	if s.ApprovalKey != nil && tpm.IsAuthorizedBlob(rec.Blob) {
		now, err := approval.ReadEpoch(s.TPM)
		switch {
		case err == nil:
			epoch = approval.Next(now)
		case !errors.Is(err, approval.ErrNoEpoch):
			return nil, err
		}
	}
	return s.reseal(rec, secret, pin, vals, predicted, events, epoch)
}

func mergeInts(a, b []int) []int {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
