package rom

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// CBFS as coreboot 4.15 writes it (src/commonlib/bsd/include/commonlib/bsd/
// cbfs_serialized.h). All header fields are big-endian:
//
//	struct cbfs_file { char magic[8] "LARCHIVE"; u32 len; u32 type;
//	                   u32 attributes_offset; u32 offset; char filename[]; }
//
// offset is where the data starts, counted from the header; attributes (if
// attributes_offset != 0) run from attributes_offset up to offset, each
// {u32 tag; u32 len (whole attribute); ...}. Files start on 64-byte
// boundaries (CBFS_ALIGNMENT).
const (
	cbfsMagic          = "LARCHIVE"
	cbfsHeaderSize     = 24
	cbfsAlignment      = 64
	cbfsMetadataMax    = 256 // CBFS_METADATA_MAX_SIZE: header + name + attributes
	attrTagCompression = 0x42435a4c
	attrTagHash        = 0x68736148
	attrTagStageHeader = 0x53746748
	attrTagPosition    = 0x42435350
	attrTagAlignment   = 0x42434c41
)

// FileType is a CBFS file type (enum cbfs_type).
type FileType uint32

const (
	TypeDeleted     FileType = 0x00000000
	TypeNull        FileType = 0xffffffff // empty space
	TypeBootblock   FileType = 0x01
	TypeCBFSHeader  FileType = 0x02
	TypeLegacyStage FileType = 0x10
	TypeStage       FileType = 0x11
	TypeSELF        FileType = 0x20
	TypeFIT         FileType = 0x21
	TypeOptionROM   FileType = 0x30
	TypeBootsplash  FileType = 0x40
	TypeRaw         FileType = 0x50
	TypeMicrocode   FileType = 0x53
	TypeFSP         FileType = 0x60
	TypeMRC         FileType = 0x61
	TypeSPD         FileType = 0xab
	TypeMRCCache    FileType = 0xac
	TypeCMOSDefault FileType = 0xaa
	TypeCMOSLayout  FileType = 0x01aa
)

func (t FileType) String() string {
	// Names as cbfstool prints them.
	if n, ok := map[FileType]string{
		TypeDeleted: "deleted", TypeNull: "null", TypeBootblock: "bootblock", TypeCBFSHeader: "cbfs header",
		TypeLegacyStage: "legacy stage", TypeStage: "stage", TypeSELF: "simple elf", TypeFIT: "fit",
		TypeOptionROM: "optionrom", TypeBootsplash: "bootsplash", TypeRaw: "raw", TypeMicrocode: "microcode",
		TypeFSP: "fsp", TypeMRC: "mrc", TypeSPD: "spd", TypeMRCCache: "mrc_cache",
		TypeCMOSDefault: "cmos_default", TypeCMOSLayout: "cmos_layout",
	}[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", uint32(t))
}

// Compression is a CBFS compression algorithm (enum cbfs_compression).
type Compression uint32

const (
	CompressNone Compression = 0
	CompressLZMA Compression = 1
	CompressLZ4  Compression = 2
)

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressLZMA:
		return "LZMA"
	case CompressLZ4:
		return "LZ4"
	}
	return fmt.Sprintf("0x%x", uint32(c))
}

// File is one CBFS file.
type File struct {
	Name string
	Type FileType
	// Offset of the file header within the image; DataOffset of its data.
	Offset     int64
	DataOffset int64
	// Data is the file as stored (compressed if Compression != none): the
	// bytes coreboot 4.15 measures.
	Data             []byte
	Compression      Compression
	DecompressedSize uint32
	// HashAlg/Hash: the CBFS hash attribute, if present (vb2 algorithm id).
	HashAlg uint8
	Hash    []byte
}

// Empty reports whether the entry is free space rather than a file.
func (f *File) Empty() bool { return f.Type == TypeNull || f.Type == TypeDeleted }

// ParseCBFS walks the CBFS in region (the bytes of an FMAP area such as
// COREBOOT), whose first byte is at image offset base. The walk follows
// coreboot's: a file header at each 64-byte boundary, skipping bytes that
// hold none (the bootblock region on x86 has no header).
func ParseCBFS(region []byte, base int64) ([]File, error) {
	var files []File
	for off := 0; off+cbfsHeaderSize <= len(region); {
		if string(region[off:off+8]) != cbfsMagic {
			off += cbfsAlignment
			continue
		}
		if len(files) >= MaxCBFSFiles {
			return nil, errorf(base+int64(off), "cbfs", ErrTooLarge, "more than %d files", MaxCBFSFiles)
		}
		f, next, err := parseCBFSFile(region, off, base)
		if err != nil {
			return nil, err
		}
		files = append(files, *f)
		off = next
	}
	return files, nil
}

func parseCBFSFile(region []byte, off int, base int64) (*File, int, error) {
	at := base + int64(off)
	h := region[off:]
	dataLen := binary.BigEndian.Uint32(h[8:])
	typ := FileType(binary.BigEndian.Uint32(h[12:]))
	attrOff := binary.BigEndian.Uint32(h[16:])
	dataOff := binary.BigEndian.Uint32(h[20:])
	if dataOff < cbfsHeaderSize || dataOff > cbfsMetadataMax || int(dataOff) > len(h) {
		return nil, 0, errorf(at+20, "cbfs_file.offset", ErrFormat, "data offset %d (metadata is %d..%d bytes)", dataOff, cbfsHeaderSize, cbfsMetadataMax)
	}
	if uint64(dataLen) > uint64(len(h)-int(dataOff)) {
		return nil, 0, errorf(at+8, "cbfs_file.len", ErrTruncated, "%d data bytes, %d remain in the region", dataLen, len(h)-int(dataOff))
	}
	nameEnd := int(dataOff)
	if attrOff != 0 {
		if attrOff < cbfsHeaderSize || attrOff > dataOff {
			return nil, 0, errorf(at+16, "cbfs_file.attributes_offset", ErrFormat, "%d outside the metadata", attrOff)
		}
		nameEnd = int(attrOff)
	}
	f := &File{
		Name:       cName(h[cbfsHeaderSize:nameEnd]),
		Type:       typ,
		Offset:     at,
		DataOffset: at + int64(dataOff),
		Data:       h[dataOff : uint64(dataOff)+uint64(dataLen) : uint64(dataOff)+uint64(dataLen)],
	}
	if attrOff != 0 {
		if err := parseAttributes(f, h[attrOff:dataOff], at+int64(attrOff)); err != nil {
			return nil, 0, err
		}
	}
	end := uint64(off) + uint64(dataOff) + uint64(dataLen)
	next := (end + cbfsAlignment - 1) &^ (cbfsAlignment - 1)
	return f, int(next), nil
}

func parseAttributes(f *File, attrs []byte, at int64) error {
	for off := 0; off+8 <= len(attrs); {
		tag := binary.BigEndian.Uint32(attrs[off:])
		n := binary.BigEndian.Uint32(attrs[off+4:])
		if tag == 0 || tag == 0xffffffff {
			// CBFS_FILE_ATTR_TAG_UNUSED(2): padding to the data.
			break
		}
		if n < 8 || uint64(n) > uint64(len(attrs)-off) {
			return errorf(at+int64(off)+4, "cbfs_file_attribute.len", ErrFormat, "%d bytes with %d left", n, len(attrs)-off)
		}
		body := attrs[off+8 : off+int(n)]
		switch tag {
		case attrTagCompression:
			if len(body) < 8 {
				return errorf(at+int64(off), "cbfs_file_attr_compression", ErrTruncated, "")
			}
			f.Compression = Compression(binary.BigEndian.Uint32(body))
			f.DecompressedSize = binary.BigEndian.Uint32(body[4:])
		case attrTagHash:
			// struct vb2_hash: u8 reserved[3]; u8 algo; digest.
			if len(body) < 4 {
				return errorf(at+int64(off), "cbfs_file_attr_hash", ErrTruncated, "")
			}
			f.HashAlg = body[3]
			f.Hash = body[4:]
			if size := vb2DigestSize(f.HashAlg); size > 0 && size <= len(f.Hash) {
				f.Hash = f.Hash[:size]
			}
		}
		off += int(n)
	}
	return nil
}

// vb2DigestSize: enum vb2_hash_algorithm (vboot 2crypto.h).
func vb2DigestSize(alg uint8) int {
	switch alg {
	case 1:
		return 20
	case 2:
		return 32
	case 3:
		return 64
	case 4:
		return 28
	case 5:
		return 48
	}
	return 0
}

// Contents returns the file's data decompressed per its compression
// attribute, refusing output beyond MaxDecompressed or the declared size.
// For stages and payloads the compression attribute covers the whole stored
// data in 4.15's stage format; SELF payload segments carry their own
// compression, which this does not undo.
func (f *File) Contents() ([]byte, error) {
	if f.DecompressedSize > MaxDecompressed {
		return nil, errorf(f.Offset, "cbfs_file_attr_compression.decompressed_size", ErrTooLarge, "%d bytes, limit %d", f.DecompressedSize, MaxDecompressed)
	}
	var r io.Reader
	switch f.Compression {
	case CompressNone:
		return bytes.Clone(f.Data), nil
	case CompressLZMA:
		// coreboot's LZMA is the classic "lzma alone" stream: 5 property
		// bytes and a 64-bit size, as ulikunitz/xz/lzma reads.
		lr, err := lzma.NewReader(bytes.NewReader(f.Data))
		if err != nil {
			return nil, errorf(f.DataOffset, "lzma header", ErrFormat, "%v", err)
		}
		r = lr
	case CompressLZ4:
		// cbfstool writes LZ4 frames (LZ4F).
		r = lz4.NewReader(bytes.NewReader(f.Data))
	default:
		return nil, errorf(f.Offset, "compression", ErrFormat, "unknown compression %s", f.Compression)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(f.DecompressedSize)+1))
	if err != nil {
		return nil, errorf(f.DataOffset, "compressed data", ErrFormat, "%s %q: %v", f.Compression, f.Name, err)
	}
	if len(out) != int(f.DecompressedSize) {
		return nil, errorf(f.DataOffset, "compressed data", ErrFormat, "%q decompresses to %d bytes, header says %d", f.Name, len(out), f.DecompressedSize)
	}
	return out, nil
}
