package flash

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseOutput: flashrom's output is another program's text. Seeded with
// real flashrom 1.3 output; asserts no panic, the caps hold, and nothing
// printed back to the owner carries a control byte.
func FuzzParseOutput(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "flashrom", "*.txt"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Found A flash chip \"B\" (1 kB, SPI) mapped at physical address 0x00000000fff00000.\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		r, err := ParseOutput(untrusted)
		if err != nil {
			return
		}
		if len(r.Chips) > maxChips || len(r.Failed) > 32 {
			t.Fatalf("caps exceeded: %d chips, %d failure lines", len(r.Chips), len(r.Failed))
		}
		for _, c := range r.Chips {
			if c.Size <= 0 || c.Size > maxChipKB<<10 {
				t.Fatalf("chip size %d", c.Size)
			}
			for _, s := range []string{c.Name, c.Vendor, c.Bus, c.On} {
				if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
					t.Fatalf("unprintable %q", s)
				}
			}
		}
		for _, l := range append(r.Failed, r.Ambiguous...) {
			if strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Fatalf("unprintable %q", l)
			}
		}
	})
}
