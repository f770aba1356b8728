package approval

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/tpm"
)

// Unseal opens a secret sealed with tpm.Authorizer.SealAuthorized: in the
// state it was sealed to it needs no approval; otherwise the approval under
// dir for purpose whose values are want (the PCR values the boot flow
// expects now, PCR 4 at its start value) and whose key is key (from the
// owner files: KeyFromOwnerFiles) is handed to the TPM. It returns the
// approval used (nil in the sealed-to state). A state nobody approved is a
// *tpm.PolicyError, as with Seal.
func Unseal(t tpm.Authorizer, blob []byte, dir, purpose string, want tpm.PCRPolicy, key crypto.PublicKey, pin []byte) ([]byte, *tpm.Approval, error) {
	secret, err := t.UnsealAuthorized(blob, nil, pin)
	var pe *tpm.PolicyError
	if err == nil || !errors.As(err, &pe) {
		return secret, nil, err
	}
	list, _ := Load(dir, purpose)
	a := Find(list, want, key)
	if a == nil {
		return nil, nil, fmt.Errorf("%w (and no approval in %s for the values the PCRs hold now)", err, dir)
	}
	secret, err = t.UnsealAuthorized(blob, a, pin)
	if err != nil {
		return nil, a, err
	}
	return secret, a, nil
}
