package sealed

import (
	"slices"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/seal"
)

// SealTOTPFor seals the TOTP secret to the state the next boot will have
// after a change the caller predicted and made: the PCRs as SealTOTP takes
// them (now, PCR 4 at its start value), except the PCRs in next, whose
// predicted values replace them. nextEvents replace the record's events of
// those PCRs, so a later refusal is explained against what was predicted.
//
// The re-ownership wizard (package reown) uses it after writing the new
// owner's files into the firmware: glint measures them into PCR 7 at the
// next boot (rom.Predict computes that value), so the new owner's code
// appears at the first boot of the new firmware without another set-up.
func (s *State) SealTOTPFor(totpSecret []byte, next map[int][]byte, nextEvents []eventlog.EventRecord) error {
	vals, predicted, err := s.sealValues(s.Profile.OTP)
	if err != nil {
		return err
	}
	for i, v := range next {
		if _, sealedTo := vals[i]; !sealedTo {
			continue
		}
		vals[i] = v
		if !slices.Contains(predicted, i) {
			predicted = append(predicted, i)
		}
	}
	slices.Sort(predicted)
	var events []eventlog.EventRecord
	for _, e := range s.Events() {
		if _, replaced := next[e.PCR]; !replaced {
			events = append(events, e)
		}
	}
	events = append(events, nextEvents...)
	rec, err := seal.Seal(s.TPM, totpSecret, seal.Request{
		Purpose: PurposeTOTP, Profile: s.Profile, Bank: s.Bank, Values: vals,
		Predicted: predicted, Events: events, Now: s.now(), ApprovalKey: s.ApprovalKey, Epoch: s.sealEpoch(),
	})
	if err != nil {
		return err
	}
	return s.writable(func() error { return seal.Save(s.BootDir, rec) })
}
