package flash

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseSPITrace: the power-cut test's reader of flashrom -VVV output.
// Seeded with real dummy-programmer traffic (an erase, its read-back, page
// programs); asserts no panic and that every command lies on the chip.
func FuzzParseSPITrace(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "flashrom", "spi-trace.txt")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("dummy_spi_send_command: writing 4 bytes: 0xd8 0x01 0x00 0x00 reading 0 bytes:\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		const size = 1 << 20
		ops, err := parseSPITrace(bytes.NewReader(untrusted), size)
		if err != nil {
			return
		}
		for _, o := range ops {
			if o.addr < 0 || o.size < 0 || o.addr+o.size > size || !o.erase && int64(len(o.data)) != o.size {
				t.Fatalf("command off the chip: %v", o)
			}
		}
		cutAfter(make([]byte, size), ops, len(ops), 0)
	})
}
