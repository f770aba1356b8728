package rom

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// FMAP layout (flashmap fmap.h, as coreboot and flashrom use it), packed,
// little-endian:
//
//	struct fmap      { u8 signature[8] "__FMAP__"; u8 ver_major; u8 ver_minor;
//	                   u64 base; u32 size; u8 name[32]; u16 nareas; struct fmap_area areas[]; }
//	struct fmap_area { u32 offset; u32 size; u8 name[32]; u16 flags; }
const (
	fmapSignature  = "__FMAP__"
	fmapHeaderSize = 56
	fmapAreaSize   = 42
	fmapNameSize   = 32
	fmapVerMajor   = 1
)

// FMAP is a parsed flash map.
type FMAP struct {
	Offset       int64 // where the FMAP itself sits in the image
	VersionMajor uint8
	VersionMinor uint8
	Base         uint64 // the flash's address when mapped (informational)
	Size         uint32 // the flash size the map describes
	Name         string
	Areas        []Area
}

// Area is one named region of the flash.
type Area struct {
	Name   string
	Offset uint32
	Size   uint32
	Flags  uint16
}

// Area returns the named area.
func (f *FMAP) Area(name string) (Area, bool) {
	for _, a := range f.Areas {
		if a.Name == name {
			return a, true
		}
	}
	return Area{}, false
}

// FindFMAP searches image for a valid FMAP. A signature match alone is not
// enough (the string can occur inside code or CBFS data): the header must
// parse, the version be 1.x, and every area lie within the map's size. The
// first valid candidate wins, which is what flashrom and cbfstool do.
func FindFMAP(image []byte) (*FMAP, error) {
	if len(image) > MaxImageSize {
		return nil, errorf(0, "image", ErrTooLarge, "%d bytes, limit %d", len(image), MaxImageSize)
	}
	var firstErr error
	for off := 0; ; {
		i := bytes.Index(image[off:], []byte(fmapSignature))
		if i < 0 {
			break
		}
		at := off + i
		f, err := ParseFMAP(image, int64(at))
		if err == nil {
			return f, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		off = at + 1
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, errorf(0, "fmap", ErrNotFound, "no %q signature in %d bytes: not a coreboot image with a flash map", fmapSignature, len(image))
}

// ParseFMAP parses the FMAP at offset at in image.
func ParseFMAP(image []byte, at int64) (*FMAP, error) {
	if at < 0 || at > int64(len(image)) || int64(len(image))-at < fmapHeaderSize {
		return nil, errorf(at, "fmap", ErrTruncated, "header needs %d bytes", fmapHeaderSize)
	}
	h := image[at:]
	if string(h[:8]) != fmapSignature {
		return nil, errorf(at, "fmap.signature", ErrFormat, "")
	}
	f := &FMAP{
		Offset:       at,
		VersionMajor: h[8],
		VersionMinor: h[9],
		Base:         binary.LittleEndian.Uint64(h[10:]),
		Size:         binary.LittleEndian.Uint32(h[18:]),
		Name:         cName(h[22:54]),
	}
	if f.VersionMajor != fmapVerMajor {
		return nil, errorf(at+8, "fmap.ver_major", ErrFormat, "version %d.%d, glint reads 1.x", f.VersionMajor, f.VersionMinor)
	}
	n := int(binary.LittleEndian.Uint16(h[54:]))
	if n > MaxFMAPAreas {
		return nil, errorf(at+54, "fmap.nareas", ErrTooLarge, "%d areas, limit %d", n, MaxFMAPAreas)
	}
	if n*fmapAreaSize > len(h)-fmapHeaderSize {
		return nil, errorf(at+54, "fmap.nareas", ErrTruncated, "%d areas need %d bytes, %d remain", n, n*fmapAreaSize, len(h)-fmapHeaderSize)
	}
	for i := 0; i < n; i++ {
		a := h[fmapHeaderSize+i*fmapAreaSize:]
		area := Area{
			Offset: binary.LittleEndian.Uint32(a),
			Size:   binary.LittleEndian.Uint32(a[4:]),
			Name:   cName(a[8 : 8+fmapNameSize]),
			Flags:  binary.LittleEndian.Uint16(a[40:]),
		}
		if uint64(area.Offset)+uint64(area.Size) > uint64(f.Size) {
			return nil, errorf(at+fmapHeaderSize+int64(i*fmapAreaSize), "fmap_area", ErrFormat, "area %q [0x%x+0x%x] runs past the %d-byte flash", area.Name, area.Offset, area.Size, f.Size)
		}
		f.Areas = append(f.Areas, area)
	}
	return f, nil
}

// cName is a NUL-terminated fixed-size name; bytes outside printable ASCII
// are replaced so a crafted name cannot drive a terminal.
func cName(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

func (a Area) String() string {
	return fmt.Sprintf("%-24s 0x%08x 0x%08x", a.Name, a.Offset, a.Size)
}
