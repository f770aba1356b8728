package luks

import (
	"testing"

	"github.com/glint-boot/glint/internal/secret"
)

// BenchmarkMeasureLUKS2 measures a default LUKS2 layout (16 MiB header and
// keyslot area) from a page-cached image file: the boot-time cost of PCR 6.
func BenchmarkMeasureLUKS2(b *testing.B) {
	img := newImage(b, "luks2")
	b.SetBytes(16 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Measure(img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildKeyCpio builds the key cpio for one volume, both styles.
func BenchmarkBuildKeyCpio(b *testing.B) {
	key := make([]byte, 128)
	tab := []CrypttabEntry{KeyEntry("root_crypt", testUUID, "discard")}
	for i := 0; i < b.N; i++ {
		a, err := BuildKeyCpio(key, tab, StyleBoth)
		if err != nil {
			b.Fatal(err)
		}
		secret.Wipe(a)
	}
}
