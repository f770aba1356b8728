package luks

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
)

// LUKS2 On-Disk Format Specification 2.1, struct luks2_hdr_disk (big-endian):
//
//	0    magic[6]          "LUKS\xba\xbe" (primary) or "SKUL\xba\xbe" (secondary)
//	6    version u16       2
//	8    hdr_size u64      binary header + JSON area
//	16   seqid u64
//	24   label[48]
//	72   checksum_alg[32]
//	104  salt[64]
//	168  uuid[40]
//	208  subsystem[48]
//	256  hdr_offset u64    offset of this copy from the device start
//	264  padding[184]
//	448  csum[64]          checksum over hdr_size bytes with csum zeroed
//	512  padding[3584]
//	4096 JSON area (hdr_size - 4096 bytes, NUL padded)
const (
	offVersion     = 6
	offHdrSize     = 8
	offSeqID       = 16
	offLabel       = 24
	offChecksumAlg = 72
	offUUID        = 168
	offSubsystem   = 208
	offHdrOffset   = 256
	offChecksum    = 448
	checksumLen    = 64
)

var (
	luksMagic           = [6]byte{'L', 'U', 'K', 'S', 0xba, 0xbe}
	luks2MagicSecondary = [6]byte{'S', 'K', 'U', 'L', 0xba, 0xbe}
	// The offsets cryptsetup probes for a secondary header when the primary
	// is unusable (hdr2_offsets in lib/luks2/luks2_disk_metadata.c): one per
	// allowed header size.
	luks2SecondaryOffsets = []int64{0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}
)

func validLUKS2HeaderSize(n uint64) bool {
	for s := uint64(minLUKS2HeaderSize); s <= maxLUKS2HeaderSize; s <<= 1 {
		if n == s {
			return true
		}
	}
	return false
}

// luks2Copy is one verified header copy: binary fields plus the JSON text.
type luks2Copy struct {
	offset      int64
	hdrSize     uint64
	seqID       uint64
	label       string
	checksumAlg string
	uuid        string
	subsystem   string
	json        []byte // up to the first NUL
	raw         []byte // the whole hdr_size bytes, for comparing copies
}

// readLUKS2Copy reads and verifies the header copy at off. secondary selects
// the magic to expect.
func readLUKS2Copy(r io.ReaderAt, size int64, off int64, secondary bool) (*luks2Copy, error) {
	var bin [luks2BinaryHeaderSize]byte
	if err := readAt(r, size, bin[:], off, "luks2.binary_header"); err != nil {
		return nil, err
	}
	want := luksMagic
	if secondary {
		want = luks2MagicSecondary
	}
	if !bytes.Equal(bin[:6], want[:]) {
		return nil, errorf(off, "luks2.magic", ErrNotLUKS, "got % x", bin[:6])
	}
	if v := be16(bin[offVersion:]); v != 2 {
		return nil, errorf(off+offVersion, "luks2.version", ErrFormat, "version %d in a LUKS2 header copy", v)
	}
	claimedSize := be64(bin[offHdrSize:])
	if !validLUKS2HeaderSize(claimedSize) {
		return nil, errorf(off+offHdrSize, "luks2.hdr_size", ErrFormat,
			"%d is not one of the sizes LUKS2 allows (16 KiB to 4 MiB, powers of two)", claimedSize)
	}
	if hdrOff := be64(bin[offHdrOffset:]); hdrOff != uint64(off) {
		return nil, errorf(off+offHdrOffset, "luks2.hdr_offset", ErrFormat,
			"header copy at byte %d says it is at byte %d", off, hdrOff)
	}
	c := &luks2Copy{
		offset:      off,
		hdrSize:     claimedSize,
		seqID:       be64(bin[offSeqID:]),
		label:       cstring(bin[offLabel : offLabel+48]),
		checksumAlg: cstring(bin[offChecksumAlg : offChecksumAlg+32]),
		uuid:        cstring(bin[offUUID : offUUID+40]),
		subsystem:   cstring(bin[offSubsystem : offSubsystem+48]),
	}
	var h hash.Hash
	switch c.checksumAlg {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	case "sha1":
		h = sha1.New()
	default:
		return nil, errorf(off+offChecksumAlg, "luks2.checksum_alg", ErrUnsupported, "checksum algorithm %q", c.checksumAlg)
	}
	// claimedSize is one of nine allowed values, at most 4 MiB; readAt checks
	// it against the device size before we allocate.
	if uint64(size) < claimedSize {
		return nil, errorf(off, "luks2.hdr_size", ErrTruncated, "header of %d bytes on a %d-byte device", claimedSize, size)
	}
	raw := make([]byte, claimedSize)
	if err := readAt(r, size, raw, off, "luks2.header"); err != nil {
		return nil, err
	}
	// LUKS2 spec 2.1: the checksum covers the binary header with the csum
	// field zeroed, followed by the JSON area.
	var stored [checksumLen]byte
	copy(stored[:], raw[offChecksum:offChecksum+checksumLen])
	zeroed := make([]byte, luks2BinaryHeaderSize)
	copy(zeroed, raw[:luks2BinaryHeaderSize])
	clear(zeroed[offChecksum : offChecksum+checksumLen])
	h.Write(zeroed)
	h.Write(raw[luks2BinaryHeaderSize:])
	sum := h.Sum(nil)
	if !bytes.Equal(sum, stored[:len(sum)]) {
		return nil, errorf(off+offChecksum, "luks2.csum", ErrChecksum,
			"stored %x, computed %x over %d bytes", stored[:len(sum)], sum, claimedSize)
	}
	area := raw[luks2BinaryHeaderSize:]
	if i := bytes.IndexByte(area, 0); i >= 0 {
		area = area[:i]
	}
	c.json = area
	c.raw = raw
	return c, nil
}

// parseLUKS2 reads both copies and picks the one cryptsetup would use: if
// both are valid, the one with the higher seqid; else the valid one
// (libcryptsetup LUKS2_disk_hdr_read).
func parseLUKS2(r io.ReaderAt, size int64) (*Header, error) {
	primary, perr := readLUKS2Copy(r, size, 0, false)
	var secondary *luks2Copy
	var serr error
	if perr == nil {
		secondary, serr = readLUKS2Copy(r, size, int64(primary.hdrSize), true)
	} else {
		secondary, serr = findSecondary(r, size)
	}
	return pickLUKS2(primary, perr, secondary, serr)
}

// parseLUKS2Damaged handles a device with no magic at offset 0: cryptsetup
// still loads it if a valid secondary header sits at one of the standard
// offsets, so glint must see (and measure) the same thing.
func parseLUKS2Damaged(r io.ReaderAt, size int64) (*Header, error) {
	secondary, serr := findSecondary(r, size)
	if serr != nil {
		return nil, errorf(0, "magic", ErrNotLUKS, "no LUKS magic at byte 0 and no LUKS2 secondary header")
	}
	perr := errorf(0, "luks2.magic", ErrNotLUKS, "primary header missing")
	return pickLUKS2(nil, perr, secondary, nil)
}

func findSecondary(r io.ReaderAt, size int64) (*luks2Copy, error) {
	var lastErr error = errorf(0, "luks2.secondary", ErrNotLUKS, "no secondary header found")
	for _, off := range luks2SecondaryOffsets {
		var magic [6]byte
		if err := readAt(r, size, magic[:], off, "luks2.magic"); err != nil {
			break
		}
		if magic != luks2MagicSecondary {
			continue
		}
		c, err := readLUKS2Copy(r, size, off, true)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func pickLUKS2(primary *luks2Copy, perr error, secondary *luks2Copy, serr error) (*Header, error) {
	var use *luks2Copy
	var warnings []string
	switch {
	case primary != nil && secondary != nil:
		use = primary
		if secondary.seqID > primary.seqID {
			use = secondary
			warnings = append(warnings, fmt.Sprintf(
				"the secondary header copy is newer (seqid %d) than the primary (seqid %d); cryptsetup uses the secondary",
				secondary.seqID, primary.seqID))
		} else if secondary.seqID < primary.seqID {
			warnings = append(warnings, fmt.Sprintf(
				"the secondary header copy is older (seqid %d) than the primary (seqid %d)", secondary.seqID, primary.seqID))
		} else if !bytes.Equal(primary.json, secondary.json) || primary.uuid != secondary.uuid {
			warnings = append(warnings, "the two header copies have the same seqid but different contents")
		}
	case primary != nil:
		use = primary
		warnings = append(warnings, fmt.Sprintf("the secondary header copy is damaged (%v); `cryptsetup repair` rewrites it", serr))
	case secondary != nil:
		use = secondary
		warnings = append(warnings, fmt.Sprintf("the primary header copy is damaged (%v); cryptsetup uses the secondary, `cryptsetup repair` rewrites the primary", perr))
	default:
		// Report the primary's error: it is the one an owner can act on.
		return nil, perr
	}
	h, err := decodeLUKS2Metadata(use)
	if err != nil {
		return nil, err
	}
	h.Copies = []HeaderCopy{copyInfo(0, primary, perr), copyInfo(int64(use.hdrSize), secondary, serr)}
	if secondary != nil {
		h.Copies[1].Offset = secondary.offset
	}
	h.Warnings = append(warnings, h.Warnings...)
	return h, nil
}

func copyInfo(off int64, c *luks2Copy, err error) HeaderCopy {
	if c == nil {
		return HeaderCopy{Offset: off, Err: err}
	}
	return HeaderCopy{Offset: c.offset, SeqID: c.seqID}
}
