package server_test

import (
	"os"
	"testing"

	"github.com/glint-boot/glint/internal/attest/server"
)

// FuzzParseGoldenFile: the dashboard's import form takes any upload; a
// crafted one is refused with an error, never a panic, and whatever is
// accepted has PCR values of its bank's size.
func FuzzParseGoldenFile(f *testing.F) {
	if raw, err := os.ReadFile("testdata/predict-coreboot-tpm2.json"); err == nil {
		f.Add(raw, "QEMU q35")
	}
	f.Add([]byte(`{"model":"LENOVO ThinkPad X230","label":"coreboot 4.15 glint","bank":"sha1","pcrs":{"2":"2b61fdd69d83c1f16d332c29fd39b535aa9fb5cf"},"events":[{"pcr":2,"type":"COREBOOT_MEASUREMENT","desc":"FMAP: FMAP","digest":"e2186249244c6f93e6065ea3e7395677b26a334b"}]}`), "")
	f.Fuzz(func(t *testing.T, untrusted []byte, model string) {
		g, err := server.ParseGoldenFile(untrusted, model, "")
		if err != nil {
			return
		}
		for i, v := range g.PCRs {
			if i < 0 || i > 23 || len(v) != g.Bank.Size() {
				t.Fatalf("accepted PCR %d of %d bytes in a %s set", i, len(v), g.Bank)
			}
		}
	})
}
