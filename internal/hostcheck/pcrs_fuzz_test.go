package hostcheck

import (
	"strings"
	"testing"
)

// FuzzParseTPM12PCRs: the TPM 1.2 driver's pcrs file parser never panics and returns PCR 0-7
// as 20-byte digests or an error.
func FuzzParseTPM12PCRs(f *testing.F) {
	var b strings.Builder
	for i := 0; i < 24; i++ {
		b.WriteString("PCR-")
		b.WriteString(string(rune('0' + i/10)))
		b.WriteString(string(rune('0' + i%10)))
		b.WriteString(":" + strings.Repeat(" 00", 20) + "\n")
	}
	f.Add([]byte(b.String()))
	f.Add([]byte("PCR-00: 00\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		pcrs, err := parseTPM12PCRs(untrusted)
		if err != nil {
			return
		}
		if len(pcrs) != 8 {
			t.Fatalf("%d PCRs", len(pcrs))
		}
		for i, v := range pcrs {
			if i < 0 || i > 7 || len(v) != 20 {
				t.Fatalf("PCR %d: %x", i, v)
			}
		}
	})
}
