package luks

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata seeds with the real cryptsetup and cpio")

// Seeds are real headers made by cryptsetup (see TestGenerateSeeds): the
// LUKS2 ones cut to both header copies (32 KiB), the LUKS1 one to 4 KiB.
func seedFiles(f *testing.F, pattern string) [][]byte {
	f.Helper()
	names, _ := filepath.Glob(filepath.Join("testdata", pattern))
	if len(names) == 0 {
		f.Fatalf("no seeds testdata/%s (go test -run TestGenerateSeeds -update)", pattern)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range seedFiles(f, "*.hdr") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		h, err := ParseHeader(bytes.NewReader(untrusted), int64(len(untrusted)))
		if err != nil {
			return
		}
		if len(h.Keyslots) > h.SlotCount() || len(h.Tokens) > MaxLUKS2Tokens || h.AreaSize > maxHeaderArea {
			t.Fatalf("caps not enforced: %d slots %d tokens area %d", len(h.Keyslots), len(h.Tokens), h.AreaSize)
		}
		_ = Summarize(h)
		for _, tok := range h.Tokens {
			_ = tok.Describe()
		}
		_, _ = MeasureReader(bytes.NewReader(untrusted), int64(len(untrusted)))
	})
}

// FuzzLUKS2JSON drives the metadata parser: the fuzzed bytes become the
// JSON area of both copies of a real 16 KiB header, with valid checksums,
// so the fuzzer does not spend its time failing the checksum.
func FuzzLUKS2JSON(f *testing.F) {
	var template []byte
	for _, s := range seedFiles(f, "luks2*.hdr") {
		if template == nil {
			template = s
		}
		js := s[luks2BinaryHeaderSize:16384]
		if i := bytes.IndexByte(js, 0); i >= 0 {
			js = js[:i]
		}
		f.Add(append([]byte(nil), js...))
	}
	f.Fuzz(func(t *testing.T, jsonText []byte) {
		if len(jsonText) >= 16384-luks2BinaryHeaderSize {
			return
		}
		img := append([]byte(nil), template...)
		for _, off := range []int{0, 16384} {
			c := img[off : off+16384]
			area := c[luks2BinaryHeaderSize:]
			clear(area)
			copy(area, jsonText)
			fixChecksum(c)
		}
		h, err := ParseHeader(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		s := Summarize(h)
		_ = Diff(s, Summary{})
		_ = Diff(Summary{}, s)
	})
}

// TestGenerateSeeds rewrites the fuzz seeds from real cryptsetup output.
func TestGenerateSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata seeds")
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll("testdata", 0o755))
	l2 := newImage(t, "luks2")
	must(os.WriteFile("testdata/luks2.hdr", readFile(t, l2)[:32<<10], 0o644))
	must(testCS.AddKey(l2, []byte(testPass), []byte("second"), 2))
	importToken(t, l2, tpm2TokenJSON(2))
	must(os.WriteFile("testdata/luks2-token.hdr", readFile(t, l2)[:32<<10], 0o644))
	l1 := newImage(t, "luks1")
	must(testCS.AddKey(l1, []byte(testPass), []byte("second"), 7))
	must(os.WriteFile("testdata/luks1.hdr", readFile(t, l1)[:4096], 0o644))
	must(os.WriteFile("testdata/debian-initrd.cpio.gz", gzipCpio(t, debianFiles), 0o644))
	must(os.WriteFile("testdata/dracut-initrd.cpio", gnuCpio(t, dracutFiles), 0o644))
}
