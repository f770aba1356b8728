package sealed

import (
	"fmt"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/seal"
)

// ResealForImage seals rec's secret (unsealed in this boot, with its PIN
// if it has one) again for the first boot of the firmware image next,
// which is about to replace the running image cur: the PCRs whose
// predicted values differ between the two images (rom.Predict: PCR 2 from
// what coreboot measures, PCR 7 from the owner files glint measures) take
// next's predicted values, the others stay as rec has them (ResealFor).
//
// It is the TPM 1.2 half of a firmware update without lock-out (and the
// TPM 2.0 one when no approval key is set): the caller runs it for the
// TOTP secret and the disk key before the chip is written (flash.Update's
// BeforeWrite hook, with next the exact image to be written, owner files
// carried), so the new firmware's first boot shows the same code. Nothing
// is sealed when either image cannot be predicted or the prediction has
// no value in rec's bank.
func (s *State) ResealForImage(rec *seal.Record, secret, pin, cur, next []byte) (*seal.Record, error) {
	predict := func(what string, b []byte) (*rom.Prediction, error) {
		img, err := rom.FromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("predict the %s firmware's PCRs: %w", what, err)
		}
		p, err := rom.Predict(img, rom.PredictOptions{})
		if err != nil {
			return nil, fmt.Errorf("predict the %s firmware's PCRs: %w", what, err)
		}
		return p, nil
	}
	pc, err := predict("running", cur)
	if err != nil {
		return nil, err
	}
	pn, err := predict("new", next)
	if err != nil {
		return nil, err
	}
	if pn.TPM != int(s.TPM.Version()) {
		return nil, fmt.Errorf("the new firmware is built for a TPM %s, this machine has a %s: its PCRs cannot be predicted for this TPM", tpmName(pn.TPM), s.TPM.Version())
	}
	vals := map[int][]byte{}
	for _, i := range pc.Changed(pn) {
		if _, sealedTo := rec.PCRs[i]; !sealedTo {
			continue
		}
		p, ok := pn.PCR(i)
		if !ok || p.Values[rec.Bank] == nil {
			return nil, fmt.Errorf("the prediction of the new firmware has no %s value for PCR %d", rec.Bank, i)
		}
		vals[i] = p.Values[rec.Bank]
	}
	var events []eventlog.EventRecord
	if pn.Log != nil {
		for _, e := range pn.Log.Events {
			if _, ok := vals[e.PCR]; ok && e.Digests[rec.Bank] != nil {
				events = append(events, eventlog.EventRecord{PCR: e.PCR, Type: e.Type, Description: e.Description, Alg: rec.Bank, Digest: e.Digests[rec.Bank]})
			}
		}
	}
	return s.ResealFor(rec, secret, pin, vals, events)
}

func tpmName(v int) string {
	if v == 12 {
		return "1.2"
	}
	return "2.0"
}
