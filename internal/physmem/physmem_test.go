package physmem

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A regular file stands in for /dev/mem: mmap and read work on both, so the
// window arithmetic (unaligned offsets, page rounding) is checked for real.
func TestReadAtUnaligned(t *testing.T) {
	data := make([]byte, 3*os.Getpagesize()+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "mem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := OpenPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, c := range []struct{ off, n int }{{0, 10}, {4095, 2}, {5000, 4096}, {len(data) - 5, 5}} {
		got := make([]byte, c.n)
		if n, err := m.ReadAt(got, int64(c.off)); err != nil || n != c.n {
			t.Fatalf("ReadAt(%d, %d): %d, %v", c.off, c.n, n, err)
		}
		if !bytes.Equal(got, data[c.off:c.off+c.n]) {
			t.Fatalf("ReadAt(%d, %d): wrong bytes", c.off, c.n)
		}
	}
	if _, err := m.ReadAt(make([]byte, maxWindow+1), 0); err == nil {
		t.Fatal("oversized window accepted")
	}
}
