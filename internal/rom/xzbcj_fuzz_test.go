package rom

import (
	"os"
	"testing"
)

// FuzzXZX86: fuzzed xz streams with the x86 branch filter (glint's payload initramfs, seeded
// with a real one made by XZ Utils): no panic, the output within MaxDecompressed, and what
// decodes has passed the headers' CRC32s.
func FuzzXZX86(f *testing.F) {
	if z, err := os.ReadFile("testdata/x86-bcj.cpio.xz"); err == nil {
		f.Add(z)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, ok, err := parseXZX86(b)
		if err != nil || !ok {
			return
		}
		if blk.dict > maxXZDict || blk.dataStart > len(b) {
			t.Fatalf("block %+v from %d bytes", blk, len(b))
		}
		out, err := decodeXZX86(b, blk)
		if err == nil && len(out) > MaxDecompressed {
			t.Fatalf("%d bytes decoded", len(out))
		}
	})
}
