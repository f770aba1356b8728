package pcr

import (
	"errors"
	"os"
	"strings"
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

// FuzzParseSysfs12: the TPM 1.2 driver's pcrs file parser never panics and
// returns exactly the PCRs asked for, as 20-byte digests, or a ParseError.
func FuzzParseSysfs12(f *testing.F) {
	f.Add(sysfs12(24))
	f.Add([]byte("PCR-00: 00\n"))
	f.Add([]byte("PCR-01:" + strings.Repeat(" 00", 20) + "\nPCR-01:" + strings.Repeat(" 00", 20) + "\n"))
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		v, err := ParseSysfs12(untrusted, idx)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if len(v) != len(idx) {
			t.Fatalf("%d PCRs for %d asked", len(v), len(idx))
		}
		for i, d := range v {
			if i < 0 || i > 7 || len(d) != 20 {
				t.Fatalf("PCR %d: %x", i, d)
			}
		}
	})
}
