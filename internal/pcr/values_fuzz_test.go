package pcr

import (
	"os"
	"testing"
)

func FuzzParseValues(f *testing.F) {
	for _, name := range []string{"testdata/ovmf-tpm2.pcrs", "testdata/coreboot-tpm12.pcrs"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("# comment\nsha256 7 " + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		v, err := ParseValues(untrusted)
		if err != nil {
			return
		}
		for bank, vals := range v {
			for i, d := range vals {
				if i < 0 || i > MaxIndex || len(d) != bank.Size() {
					t.Fatalf("%s PCR %d: %d bytes accepted", bank, i, len(d))
				}
			}
		}
	})
}
