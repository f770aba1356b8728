package rom

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

func needCbfstool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("cbfstool")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/cbfstool"); err == nil {
			return "/usr/sbin/cbfstool"
		}
		t.Skip("cbfstool not installed (apt-get install coreboot-utils)")
	}
	return p
}

func cbfstool(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cbfstool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type cbfsFixture struct {
	rom   string
	files map[string][]byte // name -> original contents
	comp  map[string]Compression
}

// buildImage makes a 1 MiB image with real cbfstool and adds raw files with
// each compression, like an owner adding keys to their ROM.
func buildImage(t testing.TB) *cbfsFixture {
	t.Helper()
	bin := needCbfstool(t)
	dir := t.TempDir()
	fx := &cbfsFixture{rom: filepath.Join(dir, "rom.bin"), files: map[string][]byte{}, comp: map[string]Compression{}}
	// A flash map like coreboot's QEMU boards (fmaptool, from coreboot-utils,
	// compiles the .fmd description coreboot's build uses).
	fmd := filepath.Join(dir, "layout.fmd")
	os.WriteFile(fmd, []byte("FLASH@0xfff00000 0x100000 {\n\tBIOS@0 0x100000 {\n\t\tFMAP@0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0xffe00\n\t}\n}\n"), 0o644)
	fmap := filepath.Join(dir, "fmap.bin")
	if out, err := exec.Command(filepath.Join(filepath.Dir(bin), "fmaptool"), fmd, fmap).CombinedOutput(); err != nil {
		t.Skipf("fmaptool: %v %s", err, out)
	}
	cbfstool(t, bin, fx.rom, "create", "-M", fmap, "-r", "COREBOOT")
	text := bytes.Repeat([]byte("owner public key material, compressible. "), 300)
	random := make([]byte, 5000)
	rand.Read(random)
	for _, f := range []struct {
		name string
		data []byte
		c    string
		comp Compression
	}{
		{"glint/owner.asc", text, "", CompressNone},
		{"glint/config.lzma", text, "lzma", CompressLZMA},
		{"glint/blob.lz4", text, "lz4", CompressLZ4},
		{"glint/random", random, "lzma", CompressNone}, // cbfstool stores incompressible data as is
		{"glint/tiny", []byte("x"), "", CompressNone},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(f.name, "/", "_"))
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{fx.rom, "add", "-f", p, "-n", f.name, "-t", "raw"}
		if f.c != "" {
			args = append(args, "-c", f.c)
		}
		cbfstool(t, bin, args...)
		fx.files[f.name] = f.data
		fx.comp[f.name] = f.comp
	}
	// Hash attributes too (cbfstool add -A sha256).
	p := filepath.Join(dir, "hashed")
	os.WriteFile(p, []byte("hashed contents"), 0o644)
	cbfstool(t, bin, fx.rom, "add", "-f", p, "-n", "glint/hashed", "-t", "raw", "-A", "sha256")
	fx.files["glint/hashed"] = []byte("hashed contents")
	return fx
}

func TestCBFSAgainstCbfstool(t *testing.T) {
	fx := buildImage(t)
	bin := needCbfstool(t)
	img, err := FromFile(fx.rom)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := img.FMAP.Area("COREBOOT"); !ok || a.Size == 0 {
		t.Fatalf("no COREBOOT area: %+v", img.FMAP.Areas)
	}
	files, err := img.CBFS("COREBOOT")
	if err != nil {
		t.Fatal(err)
	}
	// Compare the listing with `cbfstool print` line by line: name, offset,
	// type and stored size.
	var want []string
	for _, line := range strings.Split(cbfstool(t, bin, fx.rom, "print"), "\n")[2:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "(empty)" {
			continue
		}
		want = append(want, f[0])
	}
	var got []string
	for _, f := range files {
		if !f.Empty() {
			got = append(got, f.Name)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("files %v, cbfstool prints %v", got, want)
	}
	dir := t.TempDir()
	for name, orig := range fx.files {
		f, err := img.File("COREBOOT", name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Compression != fx.comp[name] {
			t.Errorf("%s: compression %v, want %v", name, f.Compression, fx.comp[name])
		}
		got, err := f.Contents()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		cbfstool(t, bin, fx.rom, "extract", "-n", name, "-f", out)
		ext, _ := os.ReadFile(out)
		if !bytes.Equal(got, orig) || !bytes.Equal(got, ext) {
			t.Errorf("%s: glint %d bytes, original %d, cbfstool extract %d", name, len(got), len(orig), len(ext))
		}
	}
	h, _ := img.File("COREBOOT", "glint/hashed")
	if h.HashAlg != 2 || len(h.Hash) != 32 {
		t.Errorf("hash attribute: alg %d, %d bytes", h.HashAlg, len(h.Hash))
	}
}

// memWindow maps an image so that it ends at 4 GiB, as the chipset maps SPI
// flash; reads elsewhere fail like unmapped /dev/mem.
type memWindow struct{ img []byte }

func (m memWindow) ReadAt(p []byte, off int64) (int, error) {
	base := int64(1<<32) - int64(len(m.img))
	if off < base || off+int64(len(p)) > 1<<32 {
		return 0, io.ErrUnexpectedEOF
	}
	return copy(p, m.img[off-base:]), nil
}

func TestFromMemory(t *testing.T) {
	fx := buildImage(t)
	raw, _ := os.ReadFile(fx.rom)
	img, err := FromMemory(memWindow{raw})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img.Data, raw) || !strings.Contains(img.Source, "0xfff00000") {
		t.Fatalf("read %d bytes from %s", len(img.Data), img.Source)
	}
	if _, err := FromMemory(memWindow{make([]byte, 1<<20)}); err == nil {
		t.Fatal("an erased window parsed as an image")
	}
}

func TestMalformed(t *testing.T) {
	fx := buildImage(t)
	raw, _ := os.ReadFile(fx.rom)
	img, err := FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := img.File("COREBOOT", "glint/owner.asc")
	for _, tc := range []struct {
		name  string
		patch func(b []byte)
		field string
	}{
		{"file length past region", func(b []byte) { putBE(b[f.Offset+8:], 0x7fffffff) }, "cbfs_file.len"},
		{"data offset too big", func(b []byte) { putBE(b[f.Offset+20:], 0x10000) }, "cbfs_file.offset"},
		{"attribute offset outside", func(b []byte) { putBE(b[f.Offset+16:], 4) }, "cbfs_file.attributes_offset"},
		{"fmap area past flash", func(b []byte) { b[img.FMAP.Offset+fmapHeaderSize+7] = 0x7f }, "fmap_area"},
		{"fmap too many areas", func(b []byte) { b[img.FMAP.Offset+54], b[img.FMAP.Offset+55] = 0xff, 0xff }, "fmap.nareas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(raw)
			tc.patch(b)
			img, err := FromBytes(b)
			if err == nil {
				_, err = img.CBFS("COREBOOT")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("want ParseError on %s, got %v", tc.field, err)
			}
		})
	}
	// A decompressed size that lies is caught, not trusted.
	lz, _ := img.File("COREBOOT", "glint/config.lzma")
	lz.DecompressedSize--
	if _, err := lz.Contents(); err == nil {
		t.Fatal("wrong decompressed size accepted")
	}
}

func putBE(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// realROMs are built by scripts/build-coreboot.sh (coreboot 4.15, QEMU q35).
func realROMs(t testing.TB) []string {
	roms, _ := filepath.Glob("../../out/coreboot-*.rom")
	more, _ := filepath.Glob("../../cache/coreboot/*.rom")
	roms = append(roms, more...)
	if len(roms) == 0 {
		t.Skip("no coreboot ROM built yet (scripts/build-coreboot.sh tpm2)")
	}
	return roms
}

func TestRealROM(t *testing.T) {
	bin := needCbfstool(t)
	for _, rom := range realROMs(t) {
		t.Run(filepath.Base(rom), func(t *testing.T) {
			img, err := FromFile(rom)
			if err != nil {
				t.Fatal(err)
			}
			files, err := img.CBFS("COREBOOT")
			if err != nil {
				t.Fatal(err)
			}
			// Every file cbfstool lists, at the same offset with the same
			// stored size.
			n := 0
			for _, line := range strings.Split(cbfstool(t, bin, rom, "print", "-r", "COREBOOT"), "\n")[2:] {
				f := strings.Fields(line)
				if len(f) < 4 || f[0] == "(empty)" {
					continue
				}
				name := f[0]
				if name == "cbfs" { // "cbfs master header"
					name = "cbfs master header"
					f = append([]string{name}, f[3:]...)
				}
				off, _ := strconv.ParseInt(f[1], 0, 64)
				size, _ := strconv.Atoi(f[len(f)-2])
				if f[len(f)-1] != "none" {
					size, _ = strconv.Atoi(f[len(f)-4])
				}
				found := false
				for _, g := range files {
					if g.Name == name {
						a, _ := img.FMAP.Area("COREBOOT")
						found = g.Offset-int64(a.Offset) == off && len(g.Data) == size
						if !found {
							t.Errorf("%s: glint offset 0x%x size %d, cbfstool 0x%x %d", name, g.Offset-int64(a.Offset), len(g.Data), off, size)
						}
					}
				}
				if !found {
					t.Errorf("glint misses %s", name)
				}
				n++
			}
			if n < 5 {
				t.Fatalf("cbfstool listed only %d files", n)
			}
			// Decompress an LZMA stage and compare with cbfstool's raw
			// extract of the same bytes (-U keeps cbfstool from re-encoding it
			// as ELF).
			ram, err := img.File("COREBOOT", "fallback/ramstage")
			if err != nil {
				t.Fatal(err)
			}
			if ram.Compression == CompressLZMA {
				got, err := ram.Contents()
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != int(ram.DecompressedSize) {
					t.Fatalf("ramstage %d bytes", len(got))
				}
			}
			p, err := PredictCorebootPCR2(img)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Log.Events) != 6 || len(p.PCR2[tpm.SHA256]) != 32 || len(p.PCR2[tpm.SHA1]) != 20 {
				t.Fatalf("prediction: %d events", len(p.Log.Events))
			}
		})
	}
}

// biosWindow maps only the BIOS region of a full-chip image below 4 GiB,
// as an Intel chipset does; the rest of a 16 MiB window reads as whatever
// the bus returns (here: junk).
type biosWindow struct {
	bios []byte
	junk byte
}

func (m biosWindow) ReadAt(p []byte, off int64) (int, error) {
	if off < 1<<32-16<<20 || off+int64(len(p)) > 1<<32 {
		return 0, io.ErrUnexpectedEOF
	}
	base := int64(1<<32) - int64(len(m.bios))
	for i := range p {
		a := off + int64(i)
		if a >= base {
			p[i] = m.bios[a-base]
		} else {
			p[i] = m.junk
		}
	}
	return len(p), nil
}

// On a ThinkPad-like board only the BIOS region is mapped: glint still
// finds the flash map and the owner files, at their flash offsets.
func TestFromMemoryBIOSRegionOnly(t *testing.T) {
	s := x230Spec(12 << 20)
	me := synthME(int(s.regions[RegionME].Size()), stockME8, false, [4]uint16{8, 1, 30, 1350})
	raw, _ := os.ReadFile(synthFlash(t, s, me))
	img, _ := FromBytes(raw)
	img, err := img.AddFile("COREBOOT", "glint/owner.asc", []byte("KEY"), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bios := img.Data[0x500000:]
	got, err := FromMemory(biosWindow{bios: bios, junk: 0x5a})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != 12<<20 || !bytes.Equal(got.Data[0x500000:], bios) || got.Descriptor != nil || !strings.Contains(got.Source, "BIOS region") {
		t.Fatalf("%d bytes from %q", len(got.Data), got.Source)
	}
	for _, b := range got.Data[:0x500000] {
		if b != 0xff {
			t.Fatal("bytes outside the BIOS region were taken from the window")
		}
	}
	files, err := OwnerFiles(got)
	if err != nil || string(files["owner.asc"]) != "KEY" {
		t.Fatalf("%q %v", files, err)
	}
	// A window whose flash map is not where a top-aligned BIOS region puts
	// it is refused, not guessed at.
	shifted := append(bytes.Clone(bios[4096:]), bytes.Repeat([]byte{0xff}, 4096)...)
	if _, err := FromMemory(biosWindow{bios: shifted, junk: 0xff}); err == nil {
		t.Fatal("a misplaced flash map was accepted")
	}
}
