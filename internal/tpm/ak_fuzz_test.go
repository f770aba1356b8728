package tpm_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// FuzzParseAK feeds crafted stored-AK files to ParseAK: no panic, and
// whatever it accepts re-encodes to the same bytes. Seeds are real AKs
// from swtpm (TPM 2.0 labelled, TPM 1.2 with its key blob).
func FuzzParseAK(f *testing.F) {
	for _, name := range []string{"testdata/ak-tpm20.bin", "testdata/ak-tpm12.bin"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, stored []byte) {
		ak, err := tpm.ParseAK(stored)
		if err != nil {
			return
		}
		again, err := ak.MarshalBinary()
		if err != nil {
			t.Fatalf("a parsed AK does not encode: %v", err)
		}
		if !bytes.Equal(again, stored) {
			t.Fatalf("round trip changed the bytes:\n%x\n%x", stored, again)
		}
	})
}
