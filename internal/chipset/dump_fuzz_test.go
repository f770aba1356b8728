package chipset

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseDump: no panic, bounded input, errors typed, and Marshal/Parse round-trips; Decode
// never fails or panics on whatever parses.
func FuzzParseDump(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.dump")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(dumpMagic + "\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		d, err := ParseDump(untrusted)
		if err != nil {
			return
		}
		again, err := ParseDump(d.Marshal())
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v", err)
		}
		if !bytes.Equal(again.Marshal(), d.Marshal()) {
			t.Fatal("round trip changed the dump")
		}
		st, err := Decode(d)
		if err != nil {
			t.Fatal(err)
		}
		_ = FlashLockGaps(st)
		if st.ME != nil {
			_ = st.ME.Verdict().String() + st.ME.String()
		}
	})
}
