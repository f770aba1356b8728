package rom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// Writing CBFS: adding and removing files the way cbfstool 4.15 does
// (util/cbfstool/cbfs_image.c: cbfs_add_entry, cbfs_remove_entry,
// cbfs_merge_empty_entry), so an uncompressed file added by glint gives the
// same bytes as `cbfstool add -t raw`, and cbfstool reads every result.
//
// The CBFS is a chain of 64-byte aligned file headers; free space is a
// file of type "null" (0xffffffff) whose data is 0xff. Adding splits the
// first free entry large enough: the new file, then a new free entry for
// the rest. Removing marks the file deleted and merges it with the free
// entries around it into one, whose data is then erased to 0xff (so a
// removed owner key does not linger in the flash).
//
// Every write works on a copy and re-reads the result before returning it:
// the flash map, the master header and every other file must be where and
// what they were, or the write is refused. Writes to CBFSes that coreboot
// verifies (a metadata hash in the bootblock: CONFIG_CBFS_VERIFICATION) or
// that vboot signs (FW_MAIN_A/B) are refused: the image would not boot.
const (
	cbfsTypeNull      = 0xffffffff
	cbfsTypeDeleted   = 0x00000000
	cbfsAttrAlign     = 4
	cbfsEmptyHeader   = cbfsHeaderSize + cbfsAttrAlign // header of a nameless entry (cbfs_calculate_file_header_size(""))
	cbfsAttrCompSize  = 16                             // struct cbfs_file_attr_compression
	cbfsMaxNameLen    = cbfsMetadataMax - cbfsHeaderSize - cbfsAttrCompSize - cbfsAttrAlign
	metadataHashMagic = "\xadMdtHsh\x15" // commonlib/bsd/metadata_hash.h
)

// ErrRefused is returned when glint will not write an image.
var ErrRefused = errors.New("refused")

// AddOptions says how to store a new CBFS file.
type AddOptions struct {
	// Type defaults to raw.
	Type FileType
	// Compression of the stored data. As cbfstool does, data that does not
	// get smaller is stored uncompressed.
	Compression Compression
}

// entry is one link of the CBFS chain, as cbfstool walks it.
type cbfsEntry struct {
	addr    int // offset in the region
	typ     uint32
	hdrLen  int // cbfs_file.offset: header + name + attributes
	dataLen int
	name    string
}

func (e cbfsEntry) end() int      { return e.addr + e.hdrLen + e.dataLen }
func (e cbfsEntry) next() int     { return (e.end() + cbfsAlignment - 1) &^ (cbfsAlignment - 1) }
func (e cbfsEntry) isEmpty() bool { return e.typ == cbfsTypeNull || e.typ == cbfsTypeDeleted }

// walkChain follows the chain from the region start until a slot holds no
// file header, as cbfstool does. Any header that does not fit the region is
// an error: glint does not edit a CBFS it cannot fully account for.
func walkChain(region []byte, base int64) ([]cbfsEntry, error) {
	var out []cbfsEntry
	for addr := 0; ; {
		e, ok, err := readEntry(region, base, addr)
		if err != nil || !ok {
			return out, err
		}
		if len(out) >= MaxCBFSFiles {
			return nil, errorf(base+int64(addr), "cbfs", ErrTooLarge, "more than %d files", MaxCBFSFiles)
		}
		out = append(out, e)
		addr = e.next()
	}
}

// readEntry reads the file header at addr; ok is false when the slot holds
// none (the end of the chain).
func readEntry(region []byte, base int64, addr int) (cbfsEntry, bool, error) {
	if addr < 0 || addr+cbfsHeaderSize > len(region) || string(region[addr:addr+8]) != cbfsMagic {
		return cbfsEntry{}, false, nil
	}
	h := region[addr:]
	e := cbfsEntry{
		addr:    addr,
		dataLen: int(binary.BigEndian.Uint32(h[8:])),
		typ:     binary.BigEndian.Uint32(h[12:]),
		hdrLen:  int(binary.BigEndian.Uint32(h[20:])),
	}
	if e.hdrLen < cbfsHeaderSize || e.hdrLen > cbfsMetadataMax || e.dataLen < 0 || int64(e.addr)+int64(e.hdrLen)+int64(e.dataLen) > int64(len(region)) {
		return cbfsEntry{}, false, errorf(base+int64(addr), "cbfs_file", ErrFormat, "file header at 0x%x does not fit the region", addr)
	}
	nameEnd := e.hdrLen
	if a := int(binary.BigEndian.Uint32(h[16:])); a >= cbfsHeaderSize && a < nameEnd {
		nameEnd = a
	}
	e.name = cString(h[cbfsHeaderSize:nameEnd])
	return e, true, nil
}

// cString is the raw NUL-terminated name (cName, for display, replaces
// unprintable bytes; comparisons use the bytes as they are).
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// fileHeader is cbfs_create_file_header plus the compression attribute:
// 0xff-filled metadata, the name NUL-padded to 4 bytes.
func fileHeader(typ FileType, dataLen int, name string, comp Compression, decompressed int) []byte {
	off := cbfsHeaderSize + (len(name)+1+cbfsAttrAlign-1)&^(cbfsAttrAlign-1)
	h := make([]byte, off)
	copy(h, cbfsMagic)
	binary.BigEndian.PutUint32(h[8:], uint32(dataLen))
	binary.BigEndian.PutUint32(h[12:], uint32(typ))
	binary.BigEndian.PutUint32(h[20:], uint32(off))
	copy(h[cbfsHeaderSize:], name)
	if comp != CompressNone {
		// cbfs_add_file_attr: the first attribute starts where the name ends.
		binary.BigEndian.PutUint32(h[16:], uint32(off))
		attr := make([]byte, cbfsAttrCompSize)
		binary.BigEndian.PutUint32(attr, attrTagCompression)
		binary.BigEndian.PutUint32(attr[4:], cbfsAttrCompSize)
		binary.BigEndian.PutUint32(attr[8:], uint32(comp))
		binary.BigEndian.PutUint32(attr[12:], uint32(decompressed))
		h = append(h, attr...)
		binary.BigEndian.PutUint32(h[20:], uint32(len(h)))
	}
	return h
}

// writeEmpty is cbfs_create_empty_entry: a nameless null file of dataLen
// bytes of 0xff at addr.
func writeEmpty(region []byte, addr, dataLen int) {
	h := fileHeader(FileType(cbfsTypeNull), dataLen, "", CompressNone, 0)
	copy(region[addr:], h)
	fill(region[addr+len(h):addr+len(h)+dataLen], 0xff)
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

// mergeEmpty is cbfstool's cbfs_legacy_walk(cbfs_merge_empty_entry): every
// run of free or deleted entries becomes one free entry spanning up to the
// next file (or the end of the chain). It rewrites free entries even when
// there is nothing to merge, as cbfstool does. One pass: after a merge the
// walk continues at the file that ended the run.
func mergeEmpty(region []byte, base int64) error {
	for addr, n := 0, 0; ; n++ {
		e, ok, err := readEntry(region, base, addr)
		if err != nil || !ok {
			return err
		}
		if n >= MaxCBFSFiles {
			return errorf(base+int64(addr), "cbfs", ErrTooLarge, "more than %d files", MaxCBFSFiles)
		}
		nextAddr := e.next()
		if !e.isEmpty() {
			addr = nextAddr
			continue
		}
		for ; n < MaxCBFSFiles; n++ {
			f, ok, err := readEntry(region, base, nextAddr)
			if err != nil {
				return err
			}
			if !ok || !f.isEmpty() {
				break
			}
			nextAddr = f.next()
		}
		size := nextAddr - e.addr - cbfsEmptyHeader
		if size < 0 || e.addr+cbfsEmptyHeader+size > len(region) {
			return errorf(base+int64(e.addr), "cbfs_file", ErrFormat, "free space at 0x%x runs past the region", e.addr)
		}
		writeEmpty(region, e.addr, size)
		addr = nextAddr
	}
}

// compress encodes data for CBFS; ok is false when the result would not be
// smaller (cbfstool then stores the data as is).
func compress(data []byte, c Compression) (out []byte, ok bool, err error) {
	var buf bytes.Buffer
	switch c {
	case CompressNone:
		return data, false, nil
	case CompressLZMA:
		// The classic .lzma header coreboot's ulzman reads: properties,
		// dictionary size, 64-bit size; no end marker.
		w, err := lzma.WriterConfig{Size: int64(len(data)), DictCap: 1 << 20}.NewWriter(&buf)
		if err != nil {
			return nil, false, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, false, err
		}
		if err := w.Close(); err != nil {
			return nil, false, err
		}
	case CompressLZ4:
		// An LZ4 frame with independent blocks and no content checksum, as
		// cbfstool writes and coreboot's ulz4fn requires.
		w := lz4.NewWriter(&buf)
		if err := w.Apply(lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block4Mb)); err != nil {
			return nil, false, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, false, err
		}
		if err := w.Close(); err != nil {
			return nil, false, err
		}
	default:
		return nil, false, fmt.Errorf("rom: cannot compress with %s", c)
	}
	if buf.Len() >= len(data) {
		return data, false, nil
	}
	return buf.Bytes(), true, nil
}

// checkWritableArea refuses CBFSes whose contents something checks.
func (img *Image) checkWritableArea(area string) error {
	if strings.HasPrefix(area, "FW_MAIN_") {
		return fmt.Errorf("rom: %s is signed by vboot (its VBLOCK would no longer match): %w", area, ErrRefused)
	}
	bb, err := img.AreaData("BOOTBLOCK")
	if err != nil {
		if f, ferr := img.File("COREBOOT", "bootblock"); ferr == nil {
			bb, err = f.Data, nil
		}
	}
	if err == nil && bytes.Contains(bb, []byte(metadataHashMagic)) {
		return fmt.Errorf("rom: this image verifies its CBFS (CONFIG_CBFS_VERIFICATION: a metadata hash in the bootblock), and a changed CBFS would stop it from booting; add files with coreboot's cbfstool, which updates the hash: %w", ErrRefused)
	}
	return nil
}

// ValidFileName reports whether glint will name a CBFS file so: printable
// ASCII, no spaces at the ends, short enough for the metadata.
func ValidFileName(name string) error {
	if name == "" || len(name) > cbfsMaxNameLen {
		return fmt.Errorf("rom: CBFS file name of %d bytes: want 1..%d", len(name), cbfsMaxNameLen)
	}
	for _, c := range []byte(name) {
		if c <= 0x20 || c > 0x7e {
			return fmt.Errorf("rom: CBFS file name %q: only printable ASCII without spaces", name)
		}
	}
	return nil
}

// AddFile returns a copy of the image with a new file in the CBFS of area.
// A file of the same name (in any case: cbfstool's lookup ignores case) is
// refused: remove it first.
func (img *Image) AddFile(area, name string, data []byte, opt AddOptions) (*Image, error) {
	if err := ValidFileName(name); err != nil {
		return nil, err
	}
	if opt.Type == 0 {
		opt.Type = TypeRaw
	}
	if opt.Type == FileType(cbfsTypeNull) || opt.Type == TypeDeleted || opt.Type == TypeBootblock || opt.Type == TypeCBFSHeader {
		return nil, fmt.Errorf("rom: glint does not add files of type %s", opt.Type)
	}
	if len(data) > MaxDecompressed {
		return nil, fmt.Errorf("rom: %d bytes is more than a CBFS file glint writes (%d)", len(data), MaxDecompressed)
	}
	stored, compressed, err := compress(data, opt.Compression)
	if err != nil {
		return nil, err
	}
	comp := opt.Compression
	if !compressed {
		comp = CompressNone
	}
	return img.rewrite(area, func(region []byte, base int64) error {
		chain, err := walkChain(region, base)
		if err != nil {
			return err
		}
		for _, e := range chain {
			if !e.isEmpty() && strings.EqualFold(e.name, name) {
				return fmt.Errorf("rom: %s already holds %q: remove it first: %w", area, e.name, ErrRefused)
			}
		}
		if err := mergeEmpty(region, base); err != nil {
			return err
		}
		if chain, err = walkChain(region, base); err != nil {
			return err
		}
		hdr := fileHeader(opt.Type, len(stored), name, comp, len(data))
		need := len(hdr) + len(stored)
		for _, e := range chain {
			if e.typ != cbfsTypeNull || e.addr+need > e.next() {
				continue
			}
			// cbfs_add_entry_at with the content right after the header.
			addrNext := e.next()
			copy(region[e.addr:], hdr)
			copy(region[e.addr+len(hdr):], stored)
			at := (e.addr + need + cbfsAlignment - 1) &^ (cbfsAlignment - 1)
			if at == addrNext || addrNext-at < cbfsEmptyHeader {
				return nil
			}
			n := addrNext - at - cbfsEmptyHeader
			// keep the last 4 bytes of the region for the master header pointer
			if at+cbfsEmptyHeader+n > len(region)-4 {
				n -= 4
			}
			writeEmpty(region, at, n)
			return nil
		}
		free := 0
		for _, e := range chain {
			if e.typ == cbfsTypeNull {
				free = max(free, e.next()-e.addr)
			}
		}
		return fmt.Errorf("rom: %q needs %d bytes in %s, the largest free space is %d bytes: %w", name, need, area, free, ErrRefused)
	})
}

// RemoveFile returns a copy of the image without the named file (matched
// as cbfstool does, ignoring case); its bytes are erased.
func (img *Image) RemoveFile(area, name string) (*Image, error) {
	return img.rewrite(area, func(region []byte, base int64) error {
		chain, err := walkChain(region, base)
		if err != nil {
			return err
		}
		for _, e := range chain {
			if e.isEmpty() || !strings.EqualFold(e.name, name) {
				continue
			}
			switch FileType(e.typ) {
			case TypeBootblock, TypeCBFSHeader:
				return fmt.Errorf("rom: glint does not remove the %s: %w", FileType(e.typ), ErrRefused)
			}
			binary.BigEndian.PutUint32(region[e.addr+12:], cbfsTypeDeleted)
			return mergeEmpty(region, base)
		}
		return errorf(0, "cbfs", ErrNotFound, "no file %q in %s", name, area)
	})
}

// rewrite runs edit on a copy of the area and checks the result before
// returning the new image: same size, same flash map, same master header,
// the area's files still parse, nothing outside the area changed.
func (img *Image) rewrite(area string, edit func(region []byte, base int64) error) (*Image, error) {
	if err := img.checkWritableArea(area); err != nil {
		return nil, err
	}
	if _, err := img.CBFS(area); err != nil {
		return nil, fmt.Errorf("rom: the CBFS in %s does not parse, glint will not write to it: %w", area, err)
	}
	a, _ := img.FMAP.Area(area)
	before, beforeErr := img.MasterHeader()
	out := bytes.Clone(img.Data)
	region := out[a.Offset : int64(a.Offset)+int64(a.Size)]
	if err := edit(region, int64(a.Offset)); err != nil {
		return nil, err
	}
	if !bytes.Equal(out[:a.Offset], img.Data[:a.Offset]) || !bytes.Equal(out[int64(a.Offset)+int64(a.Size):], img.Data[int64(a.Offset)+int64(a.Size):]) {
		return nil, errors.New("rom: internal error: a CBFS write changed bytes outside its area")
	}
	next, err := FromBytes(out)
	if err != nil {
		return nil, fmt.Errorf("rom: the written image does not parse: %w", err)
	}
	next.Source = img.Source
	if _, err := next.CBFS(area); err != nil {
		return nil, fmt.Errorf("rom: the written CBFS does not parse: %w", err)
	}
	after, afterErr := next.MasterHeader()
	if (beforeErr == nil) != (afterErr == nil) || (beforeErr == nil && *before != *after) {
		return nil, errors.New("rom: internal error: a CBFS write changed the master header")
	}
	return next, nil
}

// MasterHeader is the legacy CBFS master header ("cbfs master header" in
// the COREBOOT area on x86), which payloads such as SeaBIOS still use to
// find the CBFS; the last 4 bytes of the area point at it.
type MasterHeader struct {
	Offset        int64 // of the header's data in the image
	Version       uint32
	ROMSize       uint32
	BootblockSize uint32
	Align         uint32
	CBFSOffset    uint32
	Architecture  uint32
	// PointerOK: the pointer at the end of the area points at this header.
	PointerOK bool
}

const (
	masterHeaderMagic = 0x4F524243 // "ORBC"
	masterHeaderV1    = 0x31313131
	masterHeaderV2    = 0x31313132
	masterHeaderSize  = 32
)

// MasterHeader reads the COREBOOT area's master header (ErrNotFound when
// the image has none, as on non-x86 boards).
func (img *Image) MasterHeader() (*MasterHeader, error) {
	f, err := img.File("COREBOOT", "cbfs master header")
	if err != nil {
		return nil, err
	}
	if f.Type != TypeCBFSHeader || len(f.Data) < masterHeaderSize {
		return nil, errorf(f.Offset, "cbfs_header", ErrFormat, "%q is a %s of %d bytes", f.Name, f.Type, len(f.Data))
	}
	d := f.Data
	if binary.BigEndian.Uint32(d) != masterHeaderMagic {
		return nil, errorf(f.DataOffset, "cbfs_header.magic", ErrFormat, "")
	}
	h := &MasterHeader{
		Offset:        f.DataOffset,
		Version:       binary.BigEndian.Uint32(d[4:]),
		ROMSize:       binary.BigEndian.Uint32(d[8:]),
		BootblockSize: binary.BigEndian.Uint32(d[12:]),
		Align:         binary.BigEndian.Uint32(d[16:]),
		CBFSOffset:    binary.BigEndian.Uint32(d[20:]),
		Architecture:  binary.BigEndian.Uint32(d[24:]),
	}
	if area, err := img.AreaData("COREBOOT"); err == nil && len(area) >= 4 {
		a, _ := img.FMAP.Area("COREBOOT")
		rel := int64(int32(binary.LittleEndian.Uint32(area[len(area)-4:])))
		h.PointerOK = int64(a.Offset)+int64(a.Size)+rel == h.Offset
	}
	return h, nil
}

// Problems lists what is inconsistent in the master header.
func (h *MasterHeader) Problems(img *Image) []string {
	var out []string
	if h.Version != masterHeaderV1 && h.Version != masterHeaderV2 {
		out = append(out, fmt.Sprintf("master header version 0x%08x", h.Version))
	}
	if h.Align != cbfsAlignment {
		out = append(out, fmt.Sprintf("master header alignment %d, CBFS uses %d", h.Align, cbfsAlignment))
	}
	if int64(h.ROMSize) != int64(len(img.Data)) {
		out = append(out, fmt.Sprintf("master header says a %d-byte ROM, the image has %d", h.ROMSize, len(img.Data)))
	}
	if a, ok := img.FMAP.Area("COREBOOT"); ok && h.CBFSOffset != a.Offset {
		out = append(out, fmt.Sprintf("master header puts the CBFS at 0x%x, the flash map at 0x%x", h.CBFSOffset, a.Offset))
	}
	if !h.PointerOK {
		out = append(out, "the pointer at the end of the COREBOOT area does not point at the master header")
	}
	return out
}
