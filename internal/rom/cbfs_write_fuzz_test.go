package rom

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// fmapImage wraps a CBFS region in an image with a flash map (FMAP at 0,
// COREBOOT after it), as fmaptool lays out the test image.
func fmapImage(region []byte) []byte {
	img := make([]byte, 0x200+len(region))
	for i := range img[:0x200] {
		img[i] = 0xff
	}
	copy(img, fmapSignature)
	img[8], img[9] = 1, 1
	binary.LittleEndian.PutUint32(img[18:], uint32(len(img)))
	copy(img[22:], "FLASH")
	binary.LittleEndian.PutUint16(img[54:], 2)
	area := func(i int, off, size uint32, name string) {
		a := img[fmapHeaderSize+i*fmapAreaSize:]
		binary.LittleEndian.PutUint32(a, off)
		binary.LittleEndian.PutUint32(a[4:], size)
		copy(a[8:8+fmapNameSize], make([]byte, fmapNameSize))
		copy(a[8:], name)
		a[40], a[41] = 0, 0
	}
	area(0, 0, 0x200, "FMAP")
	area(1, 0x200, uint32(len(region)), "COREBOOT")
	copy(img[0x200:], region)
	return img
}

// FuzzCBFSWrite: adding and removing files in a fuzzed CBFS either refuses
// (leaving the image as it was) or gives an image whose only change is in
// the CBFS area, that parses, and that holds exactly the file written.
func FuzzCBFSWrite(f *testing.F) {
	for _, raw := range seedImages(f) {
		img, _ := FromBytes(raw)
		b, _ := img.AreaData("COREBOOT")
		// the first files and a slice of the free space after them
		f.Add(bytes.Clone(b[:0x4000]), "glint/owner.asc", []byte("key"), uint8(0), true)
	}
	f.Fuzz(func(t *testing.T, region []byte, name string, data []byte, comp uint8, remove bool) {
		raw := fmapImage(region)
		img, err := FromBytes(raw)
		if err != nil {
			return
		}
		orig := bytes.Clone(raw)
		var out *Image
		if remove {
			out, err = img.RemoveFile("COREBOOT", name)
		} else {
			out, err = img.AddFile("COREBOOT", name, data, AddOptions{Compression: Compression(comp % 3)})
		}
		if !bytes.Equal(raw, orig) {
			t.Fatal("a write changed its input")
		}
		if err != nil {
			if out != nil {
				t.Fatal("an image came back with an error")
			}
			return
		}
		if len(out.Data) != len(raw) || !bytes.Equal(out.Data[:0x200], raw[:0x200]) {
			t.Fatal("the write changed the image size or the flash map")
		}
		if remove {
			return
		}
		fl, err := out.File("COREBOOT", name)
		if err != nil {
			t.Fatalf("added %q is not there: %v", name, err)
		}
		got, err := fl.Contents()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("added %q reads back wrong: %v", name, err)
		}
	})
}
