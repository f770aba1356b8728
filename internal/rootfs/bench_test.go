package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchTree writes n files of size bytes in 100 directories.
func benchTree(b *testing.B, n, size int) string {
	b.Helper()
	root := b.TempDir()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for i := 0; i < n; i++ {
		d := filepath.Join(root, "usr", fmt.Sprintf("d%02d", i%100))
		if i < 100 {
			os.MkdirAll(d, 0o755)
		}
		data[0] = byte(i)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%06d", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// BenchmarkBuild hashes 5,000 files of 50 KiB (the average size in a 100,000
// file, 5 GB tree) from the page cache with different worker counts; bench/
// rootfs.sh runs the full-size tree against sha256sum.
func BenchmarkBuild(b *testing.B) {
	root := benchTree(b, 5000, 50<<10)
	for _, w := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.SetBytes(5000 * 50 << 10)
			for b.Loop() {
				if _, _, err := Build(root, []string{"usr"}, nil, Options{Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	l, _, _ := Build(root, []string{"usr"}, nil, Options{})
	b.Run("fast-unchanged", func(b *testing.B) {
		for b.Loop() {
			if _, err := Check(root, l, Options{Fast: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
