package approval

import (
	"fmt"

	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

// Predicted is the PCR policy an image will produce for one sealed secret:
// internal/rom's prediction (docs/firmware-image.md has the model) for the
// PCRs of purpose, in bank. override replaces PCRs the image cannot
// predict (the disk key's PCR 6: the LUKS header, from its seal record).
func Predicted(image []byte, purpose string, bank tpm.Alg, override map[int][]byte) (tpm.PCRPolicy, *rom.Prediction, error) {
	img, err := rom.FromBytes(image)
	if err != nil {
		return tpm.PCRPolicy{}, nil, err
	}
	p, err := rom.Predict(img, rom.PredictOptions{})
	if err != nil {
		return tpm.PCRPolicy{}, nil, err
	}
	if p.TPM != int(tpm.Version20) {
		return tpm.PCRPolicy{}, p, fmt.Errorf("the image is built for a TPM 1.2, which cannot check approvals: flash without --approval-key; the TOTP code then reads 'unavailable' after the update until the secret is sealed again (docs/firmware-updates.md, TPM 1.2)")
	}
	var set []int
	switch purpose {
	case PurposeTOTP:
		set = p.OTP
	case PurposeDisk:
		set = p.Disk
		if _, ok := override[6]; !ok {
			return tpm.PCRPolicy{}, p, fmt.Errorf("the disk key's PCR 6 (its LUKS header) is not in the image: take it from the disk key's seal record")
		}
	default:
		return tpm.PCRPolicy{}, p, fmt.Errorf("unknown purpose %q", purpose)
	}
	pol := tpm.PCRPolicy{Bank: bank, Values: map[int][]byte{}}
	for _, i := range set {
		if v, ok := override[i]; ok {
			pol.Values[i] = v
			continue
		}
		pp, ok := p.PCR(i)
		if !ok || pp.Values[bank] == nil {
			return tpm.PCRPolicy{}, p, fmt.Errorf("the prediction has no %s value for PCR %d", bank, i)
		}
		pol.Values[i] = pp.Values[bank]
	}
	return pol, p, nil
}
