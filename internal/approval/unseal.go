package approval

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/tpm"
)

// Unseal opens a secret sealed with tpm.Authorizer.SealAuthorized: in the
// state it was sealed to it needs no approval; otherwise each approval under
// dir for purpose whose values are want (the PCR values the boot flow
// expects now, PCR 4 at its start value) is handed to the TPM until one
// opens it; key, if not nil, limits them to that approval key. It returns
// the approval used (nil in the sealed-to state). A state nobody approved
// is a *tpm.PolicyError, as with Seal. want.Epoch, the approval epoch
// counter now, lets approvals of an older epoch be skipped and named.
func Unseal(t tpm.Authorizer, blob []byte, dir, purpose string, want tpm.PCRPolicy, key crypto.PublicKey, pin []byte) ([]byte, *tpm.Approval, error) {
	secret, err := t.UnsealAuthorized(blob, nil, pin)
	var pe *tpm.PolicyError
	if err == nil || !errors.As(err, &pe) {
		return secret, nil, err
	}
	list, _ := Load(dir, purpose)
	var tried []error
	for len(list) > 0 {
		a := Find(list, want, key)
		if a == nil {
			break
		}
		secret, aerr := t.UnsealAuthorized(blob, a, pin)
		if aerr == nil {
			return secret, a, nil
		}
		tried = append(tried, aerr)
		// Drop it and look for another (an approval by another key for the
		// same values cannot open this blob).
		for i := range list {
			if list[i] == a {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
	}
	if len(tried) > 0 {
		return nil, nil, fmt.Errorf("%w (the approvals for the values the PCRs hold now were refused: %w)", err, errors.Join(tried...))
	}
	if n := Superseded(list, want); n > 0 {
		return nil, nil, fmt.Errorf("%w (%d approval(s) in %s for the values the PCRs hold now are of an older approval epoch: a newer approval has been used on this machine since, so this firmware is one the owner moved away from: %w)", err, n, dir, tpm.ErrEpochPassed)
	}
	return nil, nil, fmt.Errorf("%w (and no approval in %s for the values the PCRs hold now)", err, dir)
}
