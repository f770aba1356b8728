package rom

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cbfstoolEdit runs cbfstool on a copy of raw and returns the result.
func cbfstoolEdit(t *testing.T, raw []byte, args ...string) []byte {
	t.Helper()
	p := writeTemp(t, "rom.bin", raw)
	runTool(t, needCbfstool(t), append([]string{p}, args...)...)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testROMs are the images the write tests run on: the synthetic one
// (cbfstool-built, files of every compression) and, when built, the
// project's real coreboot ROMs.
func testROMs(t *testing.T) map[string][]byte {
	t.Helper()
	fx := buildImage(t)
	raw, err := os.ReadFile(fx.rom)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{"synthetic": raw}
	roms, _ := filepath.Glob("../../out/coreboot-*.rom")
	for _, r := range roms {
		if b, err := os.ReadFile(r); err == nil {
			out[filepath.Base(r)] = b
		}
	}
	return out
}

// An uncompressed file added by glint gives the bytes cbfstool gives, for
// every padding of the name; so does removing it again.
func TestAddRemoveMatchCbfstool(t *testing.T) {
	key := []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n")
	for romName, raw := range testROMs(t) {
		img, err := FromBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"glint/key.asc", "glint/config", "glint/a", "glint/ab", "glint/abc", "glint/abcd"} {
			t.Run(romName+"/"+name, func(t *testing.T) {
				src := writeTemp(t, "f", key)
				want := cbfstoolEdit(t, raw, "add", "-f", src, "-n", name, "-t", "raw")
				got, err := img.AddFile("COREBOOT", name, key, AddOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Data, want) {
					t.Fatalf("glint and cbfstool add differ at 0x%x", firstDiff(got.Data, want))
				}
				f, err := got.File("COREBOOT", name)
				if err != nil || !bytes.Equal(f.Data, key) {
					t.Fatalf("read back: %v", err)
				}
				// remove: same bytes as cbfstool remove, and the key is gone from the flash
				wantRm := cbfstoolEdit(t, want, "remove", "-n", name)
				rm, err := got.RemoveFile("COREBOOT", name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(rm.Data, wantRm) {
					t.Fatalf("glint and cbfstool remove differ at 0x%x", firstDiff(rm.Data, wantRm))
				}
				if bytes.Contains(rm.Data, key) {
					t.Fatal("the removed file's bytes are still in the image")
				}
				if _, err := rm.File("COREBOOT", name); !errors.Is(err, ErrNotFound) {
					t.Fatalf("removed file still listed: %v", err)
				}
			})
		}
	}
}

// Removing a file in the middle of the CBFS (merging the freed space with
// nothing) and adding one into the hole: both as cbfstool does.
func TestRemoveMiddleMatchesCbfstool(t *testing.T) {
	fx := buildImage(t)
	raw, _ := os.ReadFile(fx.rom)
	img, _ := FromBytes(raw)
	for _, name := range []string{"glint/config.lzma", "GLINT/TINY"} {
		want := cbfstoolEdit(t, raw, "remove", "-n", name)
		got, err := img.RemoveFile("COREBOOT", name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, want) {
			t.Fatalf("remove %s: differ at 0x%x", name, firstDiff(got.Data, want))
		}
		small := []byte("fits in the hole")
		src := writeTemp(t, "f", small)
		want2 := cbfstoolEdit(t, want, "add", "-f", src, "-n", "glint/x", "-t", "raw")
		got2, err := got.AddFile("COREBOOT", "glint/x", small, AddOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got2.Data, want2) {
			t.Fatalf("add into the hole: differ at 0x%x", firstDiff(got2.Data, want2))
		}
	}
}

// Compressed files glint writes decompress in cbfstool to the original.
func TestCompressedAddReadByCbfstool(t *testing.T) {
	bin := needCbfstool(t)
	fx := buildImage(t)
	raw, _ := os.ReadFile(fx.rom)
	img, _ := FromBytes(raw)
	text := bytes.Repeat([]byte("owner configuration, compressible; "), 500)
	random := make([]byte, 3000)
	rand.Read(random)
	for _, tc := range []struct {
		name string
		data []byte
		comp Compression
		want Compression
		word string
	}{
		{"glint/lzma", text, CompressLZMA, CompressLZMA, "LZMA"},
		{"glint/lz4", text, CompressLZ4, CompressLZ4, "LZ4"},
		{"glint/rnd", random, CompressLZMA, CompressNone, "none"}, // does not shrink: stored as is
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := img.AddFile("COREBOOT", tc.name, tc.data, AddOptions{Compression: tc.comp})
			if err != nil {
				t.Fatal(err)
			}
			f, _ := got.File("COREBOOT", tc.name)
			if f.Compression != tc.want {
				t.Fatalf("stored as %s", f.Compression)
			}
			p := writeTemp(t, "rom.bin", got.Data)
			out := filepath.Join(t.TempDir(), "x")
			runTool(t, bin, p, "extract", "-n", tc.name, "-f", out)
			ext, _ := os.ReadFile(out)
			if !bytes.Equal(ext, tc.data) {
				t.Fatalf("cbfstool extract: %d bytes, want %d", len(ext), len(tc.data))
			}
			var line string
			for _, l := range strings.Split(runTool(t, bin, p, "print"), "\n") {
				if strings.HasPrefix(l, tc.name+" ") {
					line = l
				}
			}
			if !strings.Contains(line, tc.word) {
				t.Fatalf("cbfstool print: %q", line)
			}
			c, err := f.Contents()
			if err != nil || !bytes.Equal(c, tc.data) {
				t.Fatalf("glint reads back: %v", err)
			}
		})
	}
}

func TestWriteRefusals(t *testing.T) {
	fx := buildImage(t)
	raw, _ := os.ReadFile(fx.rom)
	img, _ := FromBytes(raw)
	orig := bytes.Clone(raw)
	for _, tc := range []struct {
		name string
		do   func() (*Image, error)
		want string
	}{
		{"same name", func() (*Image, error) { return img.AddFile("COREBOOT", "glint/owner.asc", []byte("x"), AddOptions{}) }, "already holds"},
		{"same name other case", func() (*Image, error) { return img.AddFile("COREBOOT", "GLINT/OWNER.ASC", []byte("x"), AddOptions{}) }, "already holds"},
		{"too big", func() (*Image, error) { return img.AddFile("COREBOOT", "glint/big", make([]byte, 2<<20), AddOptions{}) }, "largest free space"},
		{"bad name", func() (*Image, error) { return img.AddFile("COREBOOT", "glint/a b", []byte("x"), AddOptions{}) }, "printable"},
		{"control char", func() (*Image, error) { return img.AddFile("COREBOOT", "glint/\x1b[2J", []byte("x"), AddOptions{}) }, "printable"},
		{"long name", func() (*Image, error) {
			return img.AddFile("COREBOOT", strings.Repeat("n", 300), []byte("x"), AddOptions{})
		}, "want 1.."},
		{"no such area", func() (*Image, error) { return img.AddFile("RW_NOPE", "glint/x", []byte("x"), AddOptions{}) }, "no area"},
		{"vboot area", func() (*Image, error) { return img.AddFile("FW_MAIN_A", "glint/x", []byte("x"), AddOptions{}) }, "vboot"},
		{"remove missing", func() (*Image, error) { return img.RemoveFile("COREBOOT", "glint/none") }, "no file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.do()
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != nil {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if !bytes.Equal(img.Data, orig) {
				t.Fatal("the image was changed")
			}
		})
	}
}

// An image whose bootblock carries a CBFS metadata hash (CBFS
// verification) is never written: its bootblock would refuse the result.
func TestWriteRefusesVerifiedCBFSAndStages(t *testing.T) {
	roms, _ := filepath.Glob("../../out/coreboot-tpm2.rom")
	if len(roms) == 0 {
		t.Skip("no coreboot ROM built yet (make rom)")
	}
	raw, _ := os.ReadFile(roms[0])
	img, _ := FromBytes(raw)
	for _, name := range []string{"cbfs master header", "bootblock"} {
		if _, err := img.RemoveFile("COREBOOT", name); !errors.Is(err, ErrRefused) {
			t.Errorf("remove %s: %v", name, err)
		}
	}
	bb, err := img.File("COREBOOT", "bootblock")
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(raw)
	copy(b[bb.DataOffset+64:], metadataHashMagic) // as src/lib/metadata_anchor.c embeds it
	img2, _ := FromBytes(b)
	if _, err := img2.AddFile("COREBOOT", "glint/x", []byte("x"), AddOptions{}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "CBFS_VERIFICATION") {
		t.Fatalf("%v", err)
	}
}

func TestMasterHeader(t *testing.T) {
	n := 0
	for name, raw := range testROMs(t) {
		img, _ := FromBytes(raw)
		h, err := img.MasterHeader()
		if errors.Is(err, ErrNotFound) && name == "synthetic" {
			continue // cbfstool create -M makes none; coreboot's x86 build does
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n++
		if p := h.Problems(img); len(p) != 0 {
			t.Errorf("%s: %v", name, p)
		}
		// a pointer that no longer points at the header is reported
		b := bytes.Clone(raw)
		a, _ := img.FMAP.Area("COREBOOT")
		end := int64(a.Offset) + int64(a.Size)
		binary.LittleEndian.PutUint32(b[end-4:], 0)
		img2, _ := FromBytes(b)
		h2, _ := img2.MasterHeader()
		if p := h2.Problems(img2); len(p) != 1 || !strings.Contains(p[0], "pointer") {
			t.Errorf("%s: %v", name, p)
		}
	}
	if n == 0 {
		t.Skip("no coreboot ROM built yet (make rom): only they have a master header")
	}
}
