package tpm_test

import (
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// FuzzVerifyQuote feeds crafted AK public areas, attest structures and
// signatures to VerifyQuote: it must never panic, and whatever it accepts
// must stop verifying when the claimed PCR value changes. Seeds in
// testdata/fuzz/FuzzVerifyQuote are a real swtpm AK and quote.
func FuzzVerifyQuote(f *testing.F) {
	f.Add([]byte{0, 0x23}, []byte{0xff, 'T', 'C', 'G'}, []byte{0, 0x18}, []byte{0})
	f.Fuzz(func(t *testing.T, akPublic, attest, sig, pcr0 []byte) {
		q := &tpm.Quote{Attest: attest, Signature: sig, Bank: tpm.SHA256, PCRs: map[int][]byte{0: pcr0}}
		if err := tpm.VerifyQuote(akPublic, q, []byte("fuzz nonce")); err != nil {
			return
		}
		altered := append([]byte{}, pcr0...)
		if len(altered) == 0 {
			altered = []byte{0}
		} else {
			altered[0] ^= 1
		}
		q.PCRs[0] = altered
		if err := tpm.VerifyQuote(akPublic, q, []byte("fuzz nonce")); err == nil {
			t.Fatal("a quote still verifies after its PCR value changed")
		}
	})
}
