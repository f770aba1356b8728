package seal

import (
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

func FuzzParse(f *testing.F) {
	r := &Record{Version: FormatVersion, Purpose: "totp", TPM: "TPM 2.0", Profile: "coreboot", Bank: tpm.SHA256,
		PCRs: map[int]hexBytes{0: pcr.Zero(tpm.SHA256), 4: pcr.Zero(tpm.SHA256)}, Predicted: []int{4},
		Events:  []eventlog.EventRecord{{PCR: 2, Type: eventlog.EvAction, Description: "FMAP: COREBOOT CBFS: fallback/payload", Alg: tpm.SHA256, Digest: pcr.Measure(tpm.SHA256, []byte("payload"))}},
		Created: time.Unix(0, 0).UTC(), Blob: []byte{1, 2, 3}, Extra: map[string]string{"uuid": "x"}}
	b, _ := r.Marshal()
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		r, err := Parse(untrusted)
		if err != nil {
			return
		}
		// Whatever parses must round-trip and respect the caps.
		if len(r.Blob) > maxBlobSize || len(r.Events) > maxEvents {
			t.Fatalf("caps not enforced: blob %d, events %d", len(r.Blob), len(r.Events))
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("re-parse of marshalled record: %v", err)
		}
	})
}
