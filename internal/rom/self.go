package rom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// SELF ("simple ELF") is how coreboot stores a payload (CBFS type "simple
// elf"): a list of segments (commonlib/bsd/cbfs_serialized.h), big-endian,
//
//	struct cbfs_payload_segment { u32 type; u32 compression; u32 offset;
//	                              u64 load_addr; u32 len; u32 mem_len; }
//
// ending with an ENTRY segment; offset counts from the start of the file's
// data, len is the stored size, mem_len the size in memory. cbfstool's
// add-payload turns a Linux bzImage and initrd into five segments
// (util/cbfstool/cbfs-payload-linux.c): the boot parameters at 0x90000
// (struct linux_params), the kernel, a trampoline, the command line and
// the initrd. glint reads them to say what an image boots and to predict
// what its payload makes glint measure (the kernel modules it loads, the
// owner files it carries).
const (
	selfSegmentSize = 28
	SegmentCode     = 0x434F4445 // "CODE"
	SegmentData     = 0x44415441 // "DATA"
	SegmentBSS      = 0x42535320 // "BSS "
	SegmentParams   = 0x50415241 // "PARA"
	SegmentEntry    = 0x454E5452 // "ENTR"

	// cbfstool's fixed addresses for a Linux payload (cbfs-payload-linux.c).
	linuxParamLoc = 0x90000
	// struct linux_params (cbfstool linux.h, the boot protocol's setup
	// header): initrd_start, initrd_size, cmd_line_ptr.
	linuxInitrdStart = 0x218
	linuxInitrdSize  = 0x21c
	linuxCmdlinePtr  = 0x228
	maxCmdline       = 4096
)

// MaxSELFSegments bounds a payload's segment list (cbfstool writes at most
// a handful; ELF payloads have one per program header).
const MaxSELFSegments = 256

// Segment is one SELF segment.
type Segment struct {
	Type        uint32
	Compression Compression
	Offset      uint32
	LoadAddr    uint64
	Len, MemLen uint32
	// Data is the segment as stored (nil for BSS, PARAMS and ENTRY).
	Data []byte
}

// TypeName is the segment type as cbfstool prints it.
func (s Segment) TypeName() string {
	switch s.Type {
	case SegmentCode:
		return "code"
	case SegmentData:
		return "data"
	case SegmentBSS:
		return "bss"
	case SegmentParams:
		return "params"
	case SegmentEntry:
		return "entry"
	}
	return fmt.Sprintf("0x%08x", s.Type)
}

// ParseSELF reads the segment list of a payload (the stored bytes of a
// "simple elf" CBFS file, which coreboot does not compress as a whole).
func ParseSELF(untrusted []byte) ([]Segment, error) {
	var segs []Segment
	for i := 0; ; i++ {
		at := i * selfSegmentSize
		if at+selfSegmentSize > len(untrusted) {
			return nil, errorf(int64(at), "cbfs_payload_segment", ErrTruncated, "no entry segment after %d segments", i)
		}
		if i >= MaxSELFSegments {
			return nil, errorf(int64(at), "cbfs_payload_segment", ErrTooLarge, "more than %d segments", MaxSELFSegments)
		}
		h := untrusted[at:]
		s := Segment{
			Type:        binary.BigEndian.Uint32(h),
			Compression: Compression(binary.BigEndian.Uint32(h[4:])),
			Offset:      binary.BigEndian.Uint32(h[8:]),
			LoadAddr:    binary.BigEndian.Uint64(h[12:]),
			Len:         binary.BigEndian.Uint32(h[20:]),
			MemLen:      binary.BigEndian.Uint32(h[24:]),
		}
		switch s.Type {
		case SegmentEntry:
			return append(segs, s), nil
		case SegmentCode, SegmentData:
			end := uint64(s.Offset) + uint64(s.Len)
			if end > uint64(len(untrusted)) {
				return nil, errorf(int64(at+8), "cbfs_payload_segment.len", ErrTruncated, "segment %d at 0x%x+0x%x runs past the %d-byte payload", i, s.Offset, s.Len, len(untrusted))
			}
			s.Data = untrusted[s.Offset:end:end]
		case SegmentBSS, SegmentParams:
		default:
			return nil, errorf(int64(at), "cbfs_payload_segment.type", ErrFormat, "segment %d has type 0x%08x", i, s.Type)
		}
		segs = append(segs, s)
	}
}

// Contents returns the segment as loaded into memory (decompressed; not
// padded to MemLen), refusing more than MaxDecompressed or MemLen bytes.
func (s Segment) Contents() ([]byte, error) {
	limit := int64(min(uint64(s.MemLen), MaxDecompressed))
	var r io.Reader
	switch s.Compression {
	case CompressNone:
		if int64(len(s.Data)) > limit {
			return nil, errorf(int64(s.Offset), "cbfs_payload_segment.mem_len", ErrFormat, "%d stored bytes, %d in memory", len(s.Data), s.MemLen)
		}
		return bytes.Clone(s.Data), nil
	case CompressLZMA:
		lr, err := lzma.NewReader(bytes.NewReader(s.Data))
		if err != nil {
			return nil, errorf(int64(s.Offset), "lzma header", ErrFormat, "%v", err)
		}
		r = lr
	case CompressLZ4:
		r = lz4.NewReader(bytes.NewReader(s.Data))
	default:
		return nil, errorf(int64(s.Offset), "cbfs_payload_segment.compression", ErrFormat, "compression %s", s.Compression)
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, errorf(int64(s.Offset), "segment data", ErrFormat, "%s: %v", s.Compression, err)
	}
	if int64(len(out)) > limit {
		return nil, errorf(int64(s.Offset), "cbfs_payload_segment.mem_len", ErrTooLarge, "decompresses past %d bytes", limit)
	}
	return out, nil
}

// LinuxPayload is what a coreboot Linux payload (cbfstool add-payload with
// a bzImage) boots.
type LinuxPayload struct {
	Cmdline string
	// Initrd is the initrd segment as stored and loaded (nil if none).
	Initrd *Segment
	Kernel *Segment
}

// ParseLinuxPayload finds the boot parameters cbfstool put at 0x90000 and
// from them the command line and the initrd. A payload that is not a
// cbfstool-made Linux payload (SeaBIOS, an ELF) returns ErrNotFound.
func ParseLinuxPayload(segs []Segment) (*LinuxPayload, error) {
	var params []byte
	for _, s := range segs {
		if s.Type == SegmentData && s.LoadAddr == linuxParamLoc {
			b, err := s.Contents()
			if err != nil {
				return nil, err
			}
			params = b
		}
	}
	if len(params) < linuxCmdlinePtr+4 {
		return nil, errorf(0, "linux_params", ErrNotFound, "no Linux boot parameters at 0x%x: not a cbfstool Linux payload", linuxParamLoc)
	}
	p := &LinuxPayload{}
	initrdAt := uint64(binary.LittleEndian.Uint32(params[linuxInitrdStart:]))
	initrdLen := binary.LittleEndian.Uint32(params[linuxInitrdSize:])
	cmdAt := uint64(binary.LittleEndian.Uint32(params[linuxCmdlinePtr:]))
	for i := range segs {
		s := &segs[i]
		switch {
		case s.Type == SegmentData && cmdAt != 0 && s.LoadAddr == cmdAt:
			b, err := s.Contents()
			if err != nil {
				return nil, err
			}
			if len(b) > maxCmdline {
				b = b[:maxCmdline]
			}
			p.Cmdline = cName(b)
		case s.Type == SegmentData && initrdLen != 0 && s.LoadAddr == initrdAt && s.MemLen == initrdLen:
			p.Initrd = s
		case s.Type == SegmentCode && p.Kernel == nil && s.LoadAddr >= 1<<20:
			p.Kernel = s // the trampoline sits below 1 MiB
		}
	}
	if initrdLen != 0 && p.Initrd == nil {
		return nil, errorf(0, "linux_params.initrd", ErrFormat, "the parameters name a %d-byte initrd at 0x%x but no segment holds it", initrdLen, initrdAt)
	}
	return p, nil
}

// Payload reads the image's fallback/payload as a Linux payload.
func (img *Image) Payload() (*LinuxPayload, error) {
	f, err := img.File("COREBOOT", "fallback/payload")
	if err != nil {
		return nil, err
	}
	if f.Type != TypeSELF {
		return nil, errorf(f.Offset, "cbfs_file.type", ErrFormat, "fallback/payload is a %s, not a simple elf", f.Type)
	}
	segs, err := ParseSELF(f.Data)
	if err != nil {
		return nil, atImage(err, f.DataOffset)
	}
	p, err := ParseLinuxPayload(segs)
	return p, atImage(err, f.DataOffset)
}

// atImage turns a ParseError's offset within a file into one within the
// image.
func atImage(err error, base int64) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		pe.Offset += base
	}
	return err
}
