package iso9660

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.iso.gz with xorriso")

// seedImages are real images made by xorriso from a tiny live-ISO tree
// (TestWriteSeeds with -update rewrites them): Rock Ridge + Joliet, Joliet
// only, plain ISO 9660.
var seedImages = []string{"rr-joliet.iso.gz", "joliet.iso.gz", "plain.iso.gz"}

func TestWriteSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed images")
	}
	src := t.TempDir()
	for name, data := range map[string]string{
		"isolinux/isolinux.cfg": "default live\nlabel live\n kernel /live/vmlinuz\n append initrd=/live/initrd.img boot=live\n",
		"live/vmlinuz":          "kernel",
		"live/initrd.img":       "initrd",
		"A Long Name.txt":       "x",
	} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(src, name), []byte(data), 0o644)
	}
	os.Symlink("live/vmlinuz", filepath.Join(src, "vmlinuz"))
	for i, args := range [][]string{
		{"-rockridge", "on", "-joliet", "on"},
		{"-rockridge", "off", "-joliet", "on"},
		{"-rockridge", "off", "-joliet", "off"},
	} {
		if i > 0 {
			os.Remove(filepath.Join(src, "vmlinuz"))
		}
		out := filepath.Join(t.TempDir(), "x.iso")
		runXorriso(t, append(args, "-report_about", "SORRY", "-padding", "0", "-volid", "SEED", "-outdev", out, "-map", src, "/")...)
		img, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(img)
		zw.Close()
		if err := os.WriteFile(filepath.Join("testdata", seedImages[i]), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readSeed(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The fuzzer sees an image as its non-zero sectors: records of a 2-byte
// block number, a 2-byte length and the sector's bytes up to its last
// non-zero one. Mutations then land in descriptors, directories and system
// use areas instead of the zero padding that makes up most of a real image
// (and Go's fuzzer is slow on large inputs), and a mutated block number
// moves a sector.
func sparseEncode(img []byte) []byte {
	return sparseEncodeSectors(img, nil)
}

// sparseEncodeSectors encodes only the sectors in keep (all if nil).
func sparseEncodeSectors(img []byte, keep map[int64]bool) []byte {
	var out []byte
	for lba := 0; lba*SectorSize < len(img) && lba < maxFuzzSectors; lba++ {
		if keep != nil && !keep[int64(lba)] {
			continue
		}
		s := img[lba*SectorSize : min(len(img), (lba+1)*SectorSize)]
		s = bytes.TrimRight(s, "\x00")
		if len(s) == 0 {
			continue
		}
		out = binary.BigEndian.AppendUint16(out, uint16(lba))
		out = binary.BigEndian.AppendUint16(out, uint16(len(s)))
		out = append(out, s...)
	}
	return out
}

type sparseImage struct {
	sectors map[int64][]byte
	size    int64
	// budget bounds the bytes one fuzz input may read: a crafted image
	// whose directories point at many distinct 32 MiB directories is slow,
	// not wrong, and would starve the fuzzer.
	budget int64
}

// maxFuzzSectors keeps a fuzzed image under 8 MiB, so one input cannot
// spend the fuzzer's time reading zeros.
const maxFuzzSectors = 4096

var errBudget = errors.New("fuzz read budget spent")

func sparseDecode(b []byte) *sparseImage {
	s := &sparseImage{sectors: map[int64][]byte{}, budget: 4 << 20}
	for len(b) >= 4 {
		lba := int64(binary.BigEndian.Uint16(b)) % maxFuzzSectors
		n := min(int(binary.BigEndian.Uint16(b[2:])), len(b)-4, SectorSize)
		sec := make([]byte, SectorSize)
		copy(sec, b[4:4+n])
		b = b[4+n:]
		s.sectors[lba] = sec
		s.size = max(s.size, (lba+1)*SectorSize)
	}
	return s
}

func (s *sparseImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	if s.budget -= int64(len(p)); s.budget < 0 {
		return 0, errBudget
	}
	n := 0
	for n < len(p) && off < s.size {
		sec := s.sectors[off/SectorSize]
		in := off % SectorSize
		c := min(len(p)-n, int(SectorSize-in))
		if sec != nil {
			copy(p[n:n+c], sec[in:])
		} else {
			clear(p[n : n+c])
		}
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// tracer records the sectors a walk reads.
type tracer struct {
	r       io.ReaderAt
	sectors map[int64]bool
}

func (t *tracer) ReadAt(p []byte, off int64) (int, error) {
	for s := off / SectorSize; s*SectorSize < off+int64(len(p)); s++ {
		t.sectors[s] = true
	}
	return t.r.ReadAt(p, off)
}

// fuzzSeed is a real image reduced to the sectors that opening it and
// walking it read (the path tables and file data nobody looks at go), so
// the fuzzer's quadratic minimisation stays quick.
func fuzzSeed(t testing.TB, img []byte) []byte {
	tr := &tracer{r: bytes.NewReader(img), sectors: map[int64]bool{}}
	iso, err := Open(tr, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	walkAll(iso, int64(len(img)), t)
	return sparseEncodeSectors(img, tr.sectors)
}

func FuzzOpen(f *testing.F) {
	for _, name := range seedImages {
		f.Add(fuzzSeed(f, readSeed(f, name)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		img := sparseDecode(b)
		iso, err := Open(img, img.size)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a ParseError: %v", err)
			}
			return
		}
		walkAll(iso, img.size, t)
	})
}

// walkAll visits (up to 2000 entries of) the tree, reads the first MiB of
// every file and checks what Extents says.
func walkAll(iso *FS, size int64, t testing.TB) {
	visited := 0
	fs.WalkDir(iso, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if visited++; visited > 2000 {
			return fs.SkipAll
		}
		if d.Type().IsRegular() {
			if fl, err := iso.Open(p); err == nil {
				io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
				fl.Close()
			}
			if ext, err := iso.Extents(p); err == nil {
				for _, x := range ext {
					if x.Offset < 0 || x.Offset+x.Length > size {
						t.Fatalf("%s: extent %+v outside the image of %d bytes", p, x, size)
					}
				}
			}
		}
		if d.Type()&fs.ModeSymlink != 0 {
			iso.Stat(p)
		}
		return nil
	})
}

func TestSeedsOpen(t *testing.T) {
	for _, name := range seedImages {
		img := readSeed(t, name)
		iso, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := fs.ReadFile(iso, "live/vmlinuz")
		if err != nil || string(b) != "kernel" {
			t.Fatalf("%s (%s names): live/vmlinuz %q %v", name, iso.Names, b, err)
		}
		// The sparse encoding the fuzzer uses reads the same.
		sp := sparseDecode(sparseEncode(img))
		iso2, err := Open(sp, sp.size)
		if err != nil {
			t.Fatal(err)
		}
		if b2, err := fs.ReadFile(iso2, "isolinux/isolinux.cfg"); err != nil || len(b2) == 0 {
			t.Fatalf("%s sparse: %v", name, err)
		}
	}
}
