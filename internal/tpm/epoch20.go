package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Approval epochs: owner approvals that cannot be replayed forever.
//
// An approval (authorize20.go) is public data: whoever keeps a copy can put
// back the firmware it approved, years later, and the TPM would release the
// secret to it, although the owner has since moved on to a newer, fixed
// firmware. So the policy an approval signs, and the sealed-to branch of the
// secret, also name an NV counter and a bound (TPM 2.0 Part 3, 23.9
// TPM2_PolicyNV, TPM_EO_UNSIGNED_LE):
//
//	approved policy = PolicyPCR(values) ; PolicyNV(counter <= E)
//	sealed object   = PolicyOR( PolicyPCR(sealed-to) ; PolicyNV(counter <= E0),
//	                            PolicyAuthorize(key, policyRef+"+epoch") )
//
// The counter only goes up (TPM_NT_COUNTER). An update approves the new
// image at E = counter+1; the first boot that uses that approval raises the
// counter to E (package approval, Commit), and from then on every approval
// of an earlier epoch, and the sealed-to state of an earlier epoch, fails
// PolicyNV: the firmware the owner left behind no longer gets the code.
// Until the new image has booted the old one keeps working (a failed or
// undone update loses nothing).
//
// The policyRef of an epoch-bound secret carries EpochRefSuffix, so that an
// approval made before epochs existed (which signs PolicyPCR alone) cannot
// satisfy it: PolicyAuthorize's digest covers the policyRef.
//
// The counter's TPM name goes into every digest, so the counter cannot be
// swapped for another index (an ordinary index someone could write down);
// a counter deleted and defined again starts above every value the TPM's
// counters ever had (Part 1, 37.2.4) and keeps its name.

// Epoch binds a policy to an NV counter: it holds while the counter reads
// at most Value.
type Epoch struct {
	Index uint32
	// Name is the counter's TPM name (nameAlg || hash of its public area,
	// with TPMA_NV_WRITTEN set), which the policy digests commit to.
	Name  []byte
	Value uint64
}

// EpochRefSuffix marks the policyRef of epoch-bound secrets and approvals.
const EpochRefSuffix = "+epoch"

// EpochRef is the policyRef an epoch-bound secret and its approvals use for
// purpose ref.
func EpochRef(ref []byte) []byte { return append(append([]byte(nil), ref...), EpochRefSuffix...) }

// ApprovalRefFor is the policyRef an approval of policy for purpose ref
// carries: EpochRef(ref) when the policy is epoch-bound, else ref.
func ApprovalRefFor(policy PCRPolicy, ref []byte) []byte {
	if policy.Epoch != nil {
		return EpochRef(ref)
	}
	return append([]byte(nil), ref...)
}

// ErrEpochPassed: the counter has moved past the epoch a policy is bound to:
// a newer approval was used on this machine since.
var ErrEpochPassed = errors.New("superseded: a newer approval has been used on this machine since")

// EpochError says which bound the counter passed.
type EpochError struct {
	Counter uint64 // the counter now
	Bound   uint64 // the policy's bound
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("%v (the approval epoch counter reads %d, this is bound to epoch %d)", ErrEpochPassed, e.Counter, e.Bound)
}

func (e *EpochError) Unwrap() error { return ErrEpochPassed }

func (e *Epoch) check() error {
	if e == nil {
		return nil
	}
	if err := checkNVIndex(e.Index); err != nil {
		return err
	}
	if len(e.Name) < 2 || len(e.Name) > maxKeyName {
		return fmt.Errorf("epoch counter 0x%08x: a name of %d bytes", e.Index, len(e.Name))
	}
	return nil
}

func (e *Epoch) clone() *Epoch {
	if e == nil {
		return nil
	}
	return &Epoch{Index: e.Index, Name: append([]byte(nil), e.Name...), Value: e.Value}
}

// policyNV is the TPM2_PolicyNV command binding a session to e.
func (e *Epoch) policyNV() tpm2.PolicyNV {
	return tpm2.PolicyNV{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(e.Index), Name: tpm2.TPM2BName{Buffer: e.Name}, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(e.Index), Name: tpm2.TPM2BName{Buffer: e.Name}},
		OperandB:   tpm2.TPM2BOperand{Buffer: binary.BigEndian.AppendUint64(nil, e.Value)},
		Offset:     0,
		Operation:  tpm2.TPMEOUnsignedLE,
	}
}

// EpochCounter is implemented by TPMs that hold approval epochs (TPM 2.0).
type EpochCounter interface {
	// ReadEpoch returns the counter at index: its name and value now
	// (ErrNotDefined, wrapped, when there is none).
	ReadEpoch(index uint32) (*Epoch, error)
}

var _ EpochCounter = (*tpm20)(nil)

func (d *tpm20) ReadEpoch(index uint32) (*Epoch, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readEpoch(index)
}

func (d *tpm20) readEpoch(index uint32) (*Epoch, error) {
	if err := checkNVIndex(index); err != nil {
		return nil, err
	}
	info, err := d.nvPublic(index)
	if err != nil {
		return nil, err
	}
	if info.pub.Attributes.NT != tpm2.TPMNTCounter {
		return nil, fmt.Errorf("NV index 0x%08x is not a counter, so it cannot hold approval epochs", index)
	}
	v, err := d.counterValue(index, info)
	if err != nil {
		return nil, err
	}
	return &Epoch{Index: index, Name: append([]byte(nil), info.name.Buffer...), Value: v}, nil
}

// epochPrecheck is off only in the test that shows the TPM's own refusal
// (PolicyNV) without the Go check in front of it.
var epochPrecheck = true

// checkEpochNow compares a bound with the counter before a session is
// started, so a superseded approval is named rather than refused by the
// TPM's bare TPM_RC_POLICY. The TPM checks again (PolicyNV).
func (d *tpm20) checkEpochNow(bound *Epoch) error {
	now, err := d.readEpoch(bound.Index)
	if err != nil {
		return fmt.Errorf("approval epoch counter: %w", err)
	}
	if string(now.Name) != string(bound.Name) {
		return fmt.Errorf("the approval epoch counter 0x%08x is not the one this secret is bound to (it was deleted and defined again with other attributes): %w", bound.Index, ErrApproval)
	}
	if now.Value > bound.Value {
		return &EpochError{Counter: now.Value, Bound: bound.Value}
	}
	return nil
}
