package rom

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// glint's payload initramfs is compressed by XZ Utils with the x86 branch filter in front of
// LZMA2 (cmd/mkpayload: xz --x86 --lzma2=preset=9e --check=crc32), which ulikunitz/xz does not
// decode (it reads one-filter blocks only). This reads such a stream: the xz container here
// (https://tukaani.org/xz/xz-file-format.txt), LZMA2 by ulikunitz/xz/lzma, and the branch
// filter reversed here (as XZ Utils' simple/x86.c and the Linux kernel's lib/xz/xz_dec_bcj.c
// do). One stream with one block, which is what mkpayload writes.
//
//	stream header: fd '7zXZ' 00, flags (00, check type), CRC32 of the flags
//	block header:  size/4-1, flags (filters-1, sizes present), [sizes], filter flags
//	               (id, props size, props) per filter, zero padding, CRC32
//	LZMA2 chunks, padding to 4 bytes, the check of the uncompressed data; index; footer

const (
	xzStreamHeaderSize = 12
	xzFilterX86        = 0x04
	xzFilterLZMA2      = 0x21
	xzCheckNone        = 0x00
	xzCheckCRC32       = 0x01
	// maxXZDict bounds the LZMA2 dictionary allocated for a stream: 64 MiB is XZ Utils'
	// largest preset (-9); the header can ask for up to 4 GiB.
	maxXZDict = 64 << 20
)

var xzMagic = []byte("\xfd7zXZ\x00")

// xzX86Block is the first block of an xz stream whose filter chain is x86 then LZMA2.
type xzX86Block struct {
	check     byte   // the stream's check type
	start     uint32 // the branch filter's start offset
	dict      int    // LZMA2 dictionary size
	dataStart int    // offset of the LZMA2 chunks in the stream
}

// parseXZX86 reads the stream and block headers of an xz stream. ok is false (and err nil)
// when the block's filter chain is not x86 + LZMA2: ulikunitz/xz reads those.
func parseXZX86(b []byte) (blk xzX86Block, ok bool, err error) {
	if len(b) < xzStreamHeaderSize+1 {
		return blk, false, errorf(0, "xz", ErrTruncated, "%d bytes is shorter than an xz stream header", len(b))
	}
	if !bytes.HasPrefix(b, xzMagic) {
		return blk, false, errorf(0, "xz.magic", ErrFormat, "not an xz stream")
	}
	if crc32.ChecksumIEEE(b[6:8]) != binary.LittleEndian.Uint32(b[8:12]) {
		return blk, false, errorf(6, "xz.stream_flags", ErrFormat, "the stream header's CRC32 does not match")
	}
	if b[6] != 0 || b[7]&0xf0 != 0 {
		return blk, false, errorf(6, "xz.stream_flags", ErrFormat, "reserved bits set: %#02x %#02x", b[6], b[7])
	}
	blk.check = b[7]
	size := int(b[xzStreamHeaderSize]) * 4
	if size == 0 {
		return blk, false, errorf(xzStreamHeaderSize, "xz.block", ErrFormat, "the stream has no block")
	}
	size += 4
	if xzStreamHeaderSize+size > len(b) {
		return blk, false, errorf(xzStreamHeaderSize, "xz.block_header", ErrTruncated, "header of %d bytes runs past the stream", size)
	}
	h := b[xzStreamHeaderSize : xzStreamHeaderSize+size]
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return blk, false, errorf(xzStreamHeaderSize, "xz.block_header", ErrFormat, "the block header's CRC32 does not match")
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return blk, false, errorf(xzStreamHeaderSize+1, "xz.block_flags", ErrFormat, "reserved bits set: %#02x", flags)
	}
	p := h[2 : size-4]
	vli := func(field string) (uint64, error) {
		var v uint64
		for i := 0; i < 9 && i < len(p); i++ {
			v |= uint64(p[i]&0x7f) << (7 * i)
			if p[i]&0x80 == 0 {
				p = p[i+1:]
				return v, nil
			}
		}
		return 0, errorf(xzStreamHeaderSize, field, ErrFormat, "malformed variable-length integer")
	}
	for _, present := range []struct {
		bit   byte
		field string
	}{{0x40, "xz.compressed_size"}, {0x80, "xz.uncompressed_size"}} {
		if flags&present.bit != 0 {
			if _, err := vli(present.field); err != nil {
				return blk, false, err
			}
		}
	}
	type filter struct {
		id    uint64
		props []byte
	}
	var filters []filter
	for i := 0; i < int(flags&3)+1; i++ {
		id, err := vli("xz.filter_id")
		if err != nil {
			return blk, false, err
		}
		n, err := vli("xz.filter_props_size")
		if err != nil {
			return blk, false, err
		}
		if n > uint64(len(p)) {
			return blk, false, errorf(xzStreamHeaderSize, "xz.filter_props", ErrTruncated, "%d bytes of properties run past the block header", n)
		}
		filters = append(filters, filter{id, p[:n]})
		p = p[n:]
	}
	if len(filters) != 2 || filters[0].id != xzFilterX86 || filters[1].id != xzFilterLZMA2 {
		return blk, false, nil
	}
	switch len(filters[0].props) {
	case 0:
	case 4:
		blk.start = binary.LittleEndian.Uint32(filters[0].props)
	default:
		return blk, false, errorf(xzStreamHeaderSize, "xz.filter_props", ErrFormat, "x86 filter properties of %d bytes", len(filters[0].props))
	}
	if len(filters[1].props) != 1 {
		return blk, false, errorf(xzStreamHeaderSize, "xz.filter_props", ErrFormat, "LZMA2 properties of %d bytes", len(filters[1].props))
	}
	dict, err := lzma.DecodeDictCap(filters[1].props[0])
	if err != nil {
		return blk, false, errorf(xzStreamHeaderSize, "xz.lzma2_dict", ErrFormat, "%v", err)
	}
	if dict > maxXZDict {
		return blk, false, errorf(xzStreamHeaderSize, "xz.lzma2_dict", ErrTooLarge, "dictionary of %d bytes, limit %d", dict, maxXZDict)
	}
	blk.dict = int(max(dict, lzma.MinDictCap))
	blk.dataStart = xzStreamHeaderSize + size
	return blk, true, nil
}

// decodeXZX86 decompresses the block parseXZX86 found: at most MaxDecompressed bytes,
// the check verified when it is CRC32.
func decodeXZX86(b []byte, blk xzX86Block) ([]byte, error) {
	in := bytes.NewReader(b[blk.dataStart:])
	lr, err := lzma.Reader2Config{DictCap: blk.dict}.NewReader2(in)
	if err != nil {
		return nil, errorf(int64(blk.dataStart), "xz.lzma2", ErrFormat, "%v", err)
	}
	out, err := io.ReadAll(io.LimitReader(lr, MaxDecompressed+1))
	if err != nil {
		return nil, errorf(int64(blk.dataStart), "xz.lzma2", ErrFormat, "%v", err)
	}
	if len(out) > MaxDecompressed {
		return nil, errorf(int64(blk.dataStart), "xz.lzma2", ErrTooLarge, "decompresses past %d bytes", MaxDecompressed)
	}
	x86Decode(out, blk.start)
	// the LZMA2 reader reads no byte past its end marker: the block padding and the check of
	// the uncompressed (filtered back) data follow
	end := len(b) - in.Len()
	switch blk.check {
	case xzCheckNone:
	case xzCheckCRC32:
		at := xzStreamHeaderSize + (end-xzStreamHeaderSize+3)&^3
		if at+4 > len(b) {
			return nil, errorf(int64(end), "xz.check", ErrTruncated, "the stream ends before its check")
		}
		if crc32.ChecksumIEEE(out) != binary.LittleEndian.Uint32(b[at:]) {
			return nil, errorf(int64(at), "xz.check", ErrFormat, "the CRC32 of the decompressed data does not match")
		}
	default:
		// CRC64 and SHA-256 go unchecked: the bytes are measured and compared by hash anyway
	}
	return out, nil
}

// x86Decode reverses the x86 branch filter in place: the encoder turned the relative targets of
// CALL (e8) and JMP (e9) instructions into absolute ones so that repeated calls compress
// better; this turns them back. start is the stream position of buf[0]. A transcription of
// XZ Utils' simple/x86.c (public domain), decoding only.
func x86Decode(buf []byte, start uint32) {
	maskToAllowed := [8]bool{true, true, true, false, true, false, false, false}
	maskToBitNum := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	var prevMask uint32
	prevPos := -5
	if len(buf) < 5 {
		return
	}
	limit := len(buf) - 5
	for i := 0; i <= limit; i++ {
		b := buf[i]
		if b != 0xe8 && b != 0xe9 {
			continue
		}
		d := i - prevPos
		prevPos = i
		if d > 5 {
			prevMask = 0
		} else {
			for j := 0; j < d; j++ {
				prevMask &= 0x77
				prevMask <<= 1
			}
		}
		b4 := buf[i+4]
		if (b4 == 0 || b4 == 0xff) && maskToAllowed[(prevMask>>1)&7] && prevMask>>1 < 0x10 {
			src := binary.LittleEndian.Uint32(buf[i+1:])
			var dest uint32
			for {
				dest = src - (start + uint32(i) + 5)
				if prevMask == 0 {
					break
				}
				idx := maskToBitNum[prevMask>>1]
				b := byte(dest >> (24 - idx*8))
				if b != 0 && b != 0xff {
					break
				}
				src = dest ^ (1<<(32-idx*8) - 1)
			}
			dest &= 0x01ffffff
			dest |= 0 - (dest & 0x01000000)
			binary.LittleEndian.PutUint32(buf[i+1:], dest)
			i += 4
			prevMask = 0
		} else {
			prevMask |= 1
			if b4 == 0 || b4 == 0xff {
				prevMask |= 0x10
			}
		}
	}
}
