package approval

import (
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/tpm"
)

// EpochIndex is glint's approval epoch counter (tpm epoch20.go): TPM 2.0 NV
// index 0x0180474f, beside the rollback counter (0x0180474c) and the clock
// index (0x0180474d) in the owner range of the TCG handle registry.
//
// Approvals and secrets sealed with an approval key are bound to it: an
// update approves the new image at the epoch after the counter's, and the
// first boot of the new image moves the counter there (Commit), which
// retires every approval of the firmware left behind. An approval of an
// older epoch is refused (docs/firmware-updates.md, "Approval epochs").
const EpochIndex uint32 = 0x0180474f

// MaxCommitSteps bounds the increments one Commit makes: an update moves
// the counter by one (or a few, when the owner approved several updates
// before booting one); a bound far ahead is not glint's.
const MaxCommitSteps = 16

// ErrNoEpoch: this TPM has no approval epoch counter (TPM 1.2, or a TPM 2.0
// set up before glint defined one).
var ErrNoEpoch = errors.New("no approval epoch counter on this TPM")

// ReadEpoch returns the approval epoch counter now (ErrNoEpoch, wrapped,
// when there is none).
func ReadEpoch(t tpm.TPM) (*tpm.Epoch, error) {
	ec, ok := t.(tpm.EpochCounter)
	if !ok {
		return nil, fmt.Errorf("%w: a %s has no policy sessions", ErrNoEpoch, t.Version())
	}
	e, err := ec.ReadEpoch(EpochIndex)
	if errors.Is(err, tpm.ErrNotDefined) {
		return nil, fmt.Errorf("%w (NV index 0x%08x is not defined: set-up defines it; so does an update from glint's boot menu)", ErrNoEpoch, EpochIndex)
	}
	return e, err
}

// EnsureEpoch returns the counter, defining it first if this TPM 2.0 has
// none; defining needs the owner authorisation (t.UseAuth, or an empty
// one).
func EnsureEpoch(t tpm.TPM) (*tpm.Epoch, error) {
	e, err := ReadEpoch(t)
	if !errors.Is(err, ErrNoEpoch) || t.Version() != tpm.Version20 {
		return e, err
	}
	if derr := t.NVDefine(tpm.NVSpace{Index: EpochIndex, Counter: true}); derr != nil {
		return nil, fmt.Errorf("define the approval epoch counter: %w", derr)
	}
	return ReadEpoch(t)
}

// Next is the epoch an update approves at: one past the counter.
func Next(now *tpm.Epoch) *tpm.Epoch {
	return &tpm.Epoch{Index: now.Index, Name: append([]byte(nil), now.Name...), Value: now.Value + 1}
}

// Commit raises the counter to bound after the TPM released a secret under
// it (a new firmware's first boot): every approval, and every sealed-to
// state, of an earlier epoch stops opening secrets. A bound at or below the
// counter changes nothing. It returns the counter's value.
func Commit(t tpm.TPM, bound *tpm.Epoch) (uint64, error) {
	now, err := ReadEpoch(t)
	if err != nil {
		return 0, err
	}
	if string(now.Name) != string(bound.Name) || now.Index != bound.Index {
		return now.Value, fmt.Errorf("the approval epoch counter is not the one the secret is bound to")
	}
	if bound.Value > now.Value+MaxCommitSteps {
		return now.Value, fmt.Errorf("approval epoch %d is %d ahead of the counter (%d): not moving it that far", bound.Value, bound.Value-now.Value, now.Value)
	}
	v := now.Value
	for v < bound.Value {
		if v, err = t.CounterIncrement(EpochIndex); err != nil {
			return v, fmt.Errorf("raise the approval epoch counter: %w", err)
		}
	}
	return v, nil
}
