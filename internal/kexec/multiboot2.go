package kexec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Multiboot2 header constants, Multiboot2 specification 1.0, section 3.1.
const (
	Multiboot2HeaderMagic = 0xE85250D6
	// The header must lie completely within the first 32768 bytes of the
	// image and be 64-bit aligned (3.1.1).
	mb2SearchLimit = 32768
	mb2Align       = 8
	// maxHeaderTags bounds the tag walk; the spec defines 11 tag types.
	maxHeaderTags = 256
)

// Header tag types (3.1.3 - 3.1.13).
const (
	mb2HdrEnd             = 0
	mb2HdrInfoRequest     = 1
	mb2HdrAddress         = 2
	mb2HdrEntryAddress    = 3
	mb2HdrConsoleFlags    = 4
	mb2HdrFramebuffer     = 5
	mb2HdrModuleAlign     = 6
	mb2HdrEFIBootServices = 7
	mb2HdrEntryEFI32      = 8
	mb2HdrEntryEFI64      = 9
	mb2HdrRelocatable     = 10
	mb2TagOptional        = 1 // flags bit 0
)

// ParseError says where in an untrusted image a problem is.
type ParseError struct {
	Offset int64
	Field  string
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("offset %#x: %s: %v", e.Offset, e.Field, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }

var (
	ErrNoHeader  = errors.New("no Multiboot2 header in the first 32 KiB")
	ErrTruncated = errors.New("runs past the end of the data")
	ErrBad       = errors.New("invalid value")
)

func perrorf(off int64, field string, cause error, format string, a ...any) *ParseError {
	if format != "" {
		cause = fmt.Errorf("%w: %s", cause, fmt.Sprintf(format, a...))
	}
	return &ParseError{Offset: off, Field: field, Err: cause}
}

// AddressTag is the a.out-kludge load layout (3.1.5).
type AddressTag struct{ HeaderAddr, LoadAddr, LoadEndAddr, BSSEndAddr uint32 }

// RelocatableTag is the relocatable header tag (3.1.13).
type RelocatableTag struct{ MinAddr, MaxAddr, Align, Preference uint32 }

// Multiboot2Header is a parsed Multiboot2 OS image header.
type Multiboot2Header struct {
	Offset       int // in the (inflated) image
	Architecture uint32
	Length       uint32
	// InfoRequests are the boot information tag types the OS asks for;
	// InfoRequired says the request tag is not optional.
	InfoRequests []uint32
	InfoRequired bool
	Address      *AddressTag
	Entry        uint32
	HasEntry     bool
	ConsoleFlags uint32
	// Framebuffer is the preferred mode (width, height, depth), if asked.
	Framebuffer     *[3]uint32
	ModuleAlign     bool
	EFIBootServices bool
	EFI32Entry      uint32
	EFI64Entry      uint32
	Relocatable     *RelocatableTag
}

// ParseMultiboot2Header finds and parses the Multiboot2 header of an
// inflated OS image. Every length is checked against the bytes that remain
// and against the 32 KiB header window.
func ParseMultiboot2Header(untrustedImage []byte) (*Multiboot2Header, error) {
	limit := min(len(untrustedImage), mb2SearchLimit)
	for off := 0; off+16 <= limit; off += mb2Align {
		if binary.LittleEndian.Uint32(untrustedImage[off:]) != Multiboot2HeaderMagic {
			continue
		}
		arch := binary.LittleEndian.Uint32(untrustedImage[off+4:])
		length := binary.LittleEndian.Uint32(untrustedImage[off+8:])
		sum := binary.LittleEndian.Uint32(untrustedImage[off+12:])
		if Multiboot2HeaderMagic+arch+length+sum != 0 {
			continue // not a header: magic bytes by chance
		}
		return parseMB2Tags(untrustedImage, off, arch, length)
	}
	return nil, perrorf(0, "magic", ErrNoHeader, "")
}

func parseMB2Tags(img []byte, off int, arch, length uint32) (*Multiboot2Header, error) {
	h := &Multiboot2Header{Offset: off, Architecture: arch, Length: length}
	if arch != 0 {
		return nil, perrorf(int64(off+4), "architecture", ErrUnsupported, "%d (only 0, i386, is bootable here)", arch)
	}
	if length < 16+8 || uint64(off)+uint64(length) > uint64(len(img)) || uint64(off)+uint64(length) > mb2SearchLimit {
		return nil, perrorf(int64(off+8), "header_length", ErrTruncated, "%d bytes at %#x", length, off)
	}
	hdr := img[off : off+int(length)]
	p := 16
	for n := 0; ; n++ {
		if n >= maxHeaderTags {
			return nil, perrorf(int64(off+p), "tags", ErrBad, "more than %d tags", maxHeaderTags)
		}
		if p+8 > len(hdr) {
			return nil, perrorf(int64(off+p), "tag", ErrTruncated, "no end tag")
		}
		typ := binary.LittleEndian.Uint16(hdr[p:])
		flags := binary.LittleEndian.Uint16(hdr[p+2:])
		size := binary.LittleEndian.Uint32(hdr[p+4:])
		at := int64(off + p)
		if size < 8 || uint64(size) > uint64(len(hdr)-p) {
			return nil, perrorf(at, "tag size", ErrTruncated, "tag type %d claims %d bytes, %d remain", typ, size, len(hdr)-p)
		}
		body := hdr[p+8 : p+int(size)]
		u32 := func(i int) (uint32, error) {
			if 4*i+4 > len(body) {
				return 0, perrorf(at, fmt.Sprintf("tag %d field %d", typ, i), ErrTruncated, "tag has %d bytes", size)
			}
			return binary.LittleEndian.Uint32(body[4*i:]), nil
		}
		var err error
		switch typ {
		case mb2HdrEnd:
			return h, nil
		case mb2HdrInfoRequest:
			if len(body)/4 > 64 {
				return nil, perrorf(at, "information request", ErrBad, "%d types", len(body)/4)
			}
			h.InfoRequired = flags&mb2TagOptional == 0
			for i := 0; i+4 <= len(body); i += 4 {
				h.InfoRequests = append(h.InfoRequests, binary.LittleEndian.Uint32(body[i:]))
			}
		case mb2HdrAddress:
			a := &AddressTag{}
			for i, f := range []*uint32{&a.HeaderAddr, &a.LoadAddr, &a.LoadEndAddr, &a.BSSEndAddr} {
				if *f, err = u32(i); err != nil {
					return nil, err
				}
			}
			h.Address = a
		case mb2HdrEntryAddress:
			if h.Entry, err = u32(0); err != nil {
				return nil, err
			}
			h.HasEntry = true
		case mb2HdrConsoleFlags:
			if h.ConsoleFlags, err = u32(0); err != nil {
				return nil, err
			}
		case mb2HdrFramebuffer:
			var fb [3]uint32
			for i := range fb {
				if fb[i], err = u32(i); err != nil {
					return nil, err
				}
			}
			h.Framebuffer = &fb
		case mb2HdrModuleAlign:
			h.ModuleAlign = true
		case mb2HdrEFIBootServices:
			h.EFIBootServices = true
		case mb2HdrEntryEFI32:
			// EFI entry points are for a loader running under UEFI boot
			// services; after kexec there are none, so they are skipped.
			if h.EFI32Entry, err = u32(0); err != nil {
				return nil, err
			}
		case mb2HdrEntryEFI64:
			if h.EFI64Entry, err = u32(0); err != nil {
				return nil, err
			}
		case mb2HdrRelocatable:
			r := &RelocatableTag{}
			for i, f := range []*uint32{&r.MinAddr, &r.MaxAddr, &r.Align, &r.Preference} {
				if *f, err = u32(i); err != nil {
					return nil, err
				}
			}
			h.Relocatable = r
		default:
			if flags&mb2TagOptional == 0 {
				return nil, perrorf(at, "tag type", ErrUnsupported, "required header tag %d is unknown", typ)
			}
		}
		// Tags are padded to 8 bytes (3.1.3).
		p += (int(size) + 7) &^ 7
	}
}
