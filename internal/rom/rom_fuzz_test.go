package rom

import (
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
