package rom

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

func seedImages(f *testing.F) [][]byte {
	fx := buildImage(f)
	raw, err := os.ReadFile(fx.rom)
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{raw}
}

// FuzzFMAP: any bytes around a valid map; no panic, and a parsed map's
// areas always lie within its declared size.
func FuzzFMAP(f *testing.F) {
	for _, raw := range seedImages(f) {
		img, err := FromBytes(raw)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw[img.FMAP.Offset : img.FMAP.Offset+fmapHeaderSize+int64(len(img.FMAP.Areas))*fmapAreaSize])
	}
	f.Add([]byte("__FMAP__\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := FindFMAP(b)
		if err != nil {
			return
		}
		for _, a := range m.Areas {
			if uint64(a.Offset)+uint64(a.Size) > uint64(m.Size) {
				t.Fatalf("area %q outside the map", a.Name)
			}
		}
	})
}

// FuzzCBFS walks fuzzed CBFS regions (seeded with the first files of a
// cbfstool-built image) and decompresses every file it finds.
func FuzzCBFS(f *testing.F) {
	for _, raw := range seedImages(f) {
		img, _ := FromBytes(raw)
		b, _ := img.AreaData("COREBOOT")
		f.Add(b[:16384])
	}
	f.Fuzz(func(t *testing.T, region []byte) {
		files, err := ParseCBFS(region, 0)
		if err != nil {
			return
		}
		for i := range files {
			fl := &files[i]
			if fl.DataOffset < 0 || fl.DataOffset+int64(len(fl.Data)) > int64(len(region)) {
				t.Fatalf("file %q data outside the region", fl.Name)
			}
			if fl.DecompressedSize < 1<<20 {
				fl.Contents()
			}
		}
	})
}

// FuzzFromBIOSWindow: a fuzzed memory window is either refused or rebuilt
// into an image whose flash map parses, with only the BIOS region taken
// from the window.
func FuzzFromBIOSWindow(f *testing.F) {
	for _, raw := range seedImages(f) {
		img, _ := FromBytes(raw)
		// the top 64 KiB of the image as a window of a larger chip
		f.Add(bytes.Clone(raw[img.FMAP.Offset : img.FMAP.Offset+0x10000]))
	}
	// a 64 KiB BIOS region at the top of a 128 KiB chip
	w := fmapImage(make([]byte, 0x10000-0x200))
	binary.LittleEndian.PutUint32(w[18:], 0x20000)
	binary.LittleEndian.PutUint32(w[fmapHeaderSize:], 0x10000)
	binary.LittleEndian.PutUint32(w[fmapHeaderSize+fmapAreaSize:], 0x10200)
	if _, err := fromBIOSWindow(w); err != nil {
		f.Fatal(err)
	}
	f.Add(w)
	f.Fuzz(func(t *testing.T, window []byte) {
		img, err := fromBIOSWindow(window)
		if err != nil {
			return
		}
		if img.FMAP == nil || int64(len(img.Data)) != int64(img.FMAP.Size) {
			t.Fatal("an image without its flash map came back")
		}
	})
}
