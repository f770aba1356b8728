package rom

import (
	"os"
	"testing"
)

// Benchmarks on the project's coreboot ROM (make rom): what `glint rom
// inspect` and `glint rom predict` spend, and the parts that dominate.
func benchROM(b *testing.B) []byte {
	raw, err := os.ReadFile("../../out/coreboot-tpm2.rom")
	if err != nil {
		b.Skip("make rom first")
	}
	return raw
}

func BenchmarkParseImage(b *testing.B) {
	raw := benchROM(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		img, err := FromBytes(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := img.CBFS("COREBOOT"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPayloadInitramfs(b *testing.B) {
	img, _ := FromBytes(benchROM(b))
	for b.Loop() {
		if _, _, err := img.PayloadFiles(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPredict(b *testing.B) {
	img, _ := FromBytes(benchROM(b))
	for b.Loop() {
		if _, err := Predict(img, PredictOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAddFile(b *testing.B) {
	img, _ := FromBytes(benchROM(b))
	key, _ := os.ReadFile("testdata/owner-ed25519.asc")
	for b.Loop() {
		if _, err := img.AddFile("COREBOOT", "glint/owner.asc", key, AddOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
