package card

import "encoding/binary"

// BER-TLV as the OpenPGP card uses it (ISO 7816-4 section 5.2; OpenPGP card
// spec 3.4 section 4.4.1): tags of one or two bytes (a first byte with the low
// five bits set announces a second), lengths of one byte, or 81 xx, or
// 82 xx xx. Constructed tags (bit 6 of the first byte) hold more TLVs.

// maxTLVDepth bounds nesting when searching (6E > 73 > C5 is depth 3).
const maxTLVDepth = 8

// TLV is one decoded data object; Value aliases the parsed buffer.
type TLV struct {
	Tag   uint16
	Value []byte
}

// constructed reports whether tag holds nested TLVs.
func constructed(tag uint16) bool {
	first := tag
	if tag > 0xFF {
		first = tag >> 8
	}
	return first&0x20 != 0
}

// ParseTLVs decodes a sequence of BER-TLVs that must fill untrusted exactly.
// Padding bytes 00 and FF between objects are skipped (ISO 7816-4 5.2).
func ParseTLVs(untrusted []byte) ([]TLV, error) {
	var out []TLV
	off := 0
	for off < len(untrusted) {
		if b := untrusted[off]; b == 0x00 || b == 0xFF {
			off++
			continue
		}
		t, n, err := parseOneTLV(untrusted, off)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		off += n
	}
	return out, nil
}

func parseOneTLV(buf []byte, off int) (TLV, int, error) {
	const f = "TLV"
	start := off
	tag := uint16(buf[off])
	off++
	if tag&0x1F == 0x1F {
		if off >= len(buf) {
			return TLV{}, 0, parseErrorf(f, "tag", off, "two-byte tag: %w", ErrTruncated)
		}
		if buf[off]&0x80 != 0 {
			return TLV{}, 0, parseErrorf(f, "tag", off, "tags longer than two bytes are not used by the OpenPGP card")
		}
		tag = tag<<8 | uint16(buf[off])
		off++
	}
	if off >= len(buf) {
		return TLV{}, 0, parseErrorf(f, "length", off, "tag %X: %w", tag, ErrTruncated)
	}
	l := int(buf[off])
	off++
	switch {
	case l < 0x80:
	case l == 0x81:
		if off+1 > len(buf) {
			return TLV{}, 0, parseErrorf(f, "length", off, "tag %X: %w", tag, ErrTruncated)
		}
		l = int(buf[off])
		off++
	case l == 0x82:
		if off+2 > len(buf) {
			return TLV{}, 0, parseErrorf(f, "length", off, "tag %X: %w", tag, ErrTruncated)
		}
		l = int(binary.BigEndian.Uint16(buf[off:]))
		off += 2
	default:
		return TLV{}, 0, parseErrorf(f, "length", off-1, "tag %X: length byte %02X not used by the OpenPGP card", tag, l)
	}
	if l > len(buf)-off {
		return TLV{}, 0, parseErrorf(f, "value", off, "tag %X claims %d bytes, %d remain: %w", tag, l, len(buf)-off, ErrTruncated)
	}
	return TLV{Tag: tag, Value: buf[off : off+l]}, off + l - start, nil
}

// FindTLV searches untrusted (a TLV sequence) depth-first for tag, looking
// inside constructed objects. ok is false when the tag is absent; err is set
// when the bytes on the way are malformed.
func FindTLV(untrusted []byte, tag uint16) (value []byte, ok bool, err error) {
	return findTLV(untrusted, tag, 0)
}

func findTLV(buf []byte, tag uint16, depth int) ([]byte, bool, error) {
	if depth > maxTLVDepth {
		return nil, false, parseErrorf("TLV", "nesting", 0, "deeper than %d: %w", maxTLVDepth, ErrTooLarge)
	}
	tlvs, err := ParseTLVs(buf)
	if err != nil {
		return nil, false, err
	}
	for _, t := range tlvs {
		if t.Tag == tag {
			return t.Value, true, nil
		}
		if constructed(t.Tag) {
			v, ok, err := findTLV(t.Value, tag, depth+1)
			if err != nil || ok {
				return v, ok, err
			}
		}
	}
	return nil, false, nil
}

// AppendTLV encodes one BER-TLV (the shortest length form).
func AppendTLV(dst []byte, tag uint16, value []byte) []byte {
	if tag > 0xFF {
		dst = append(dst, byte(tag>>8), byte(tag))
	} else {
		dst = append(dst, byte(tag))
	}
	switch l := len(value); {
	case l < 0x80:
		dst = append(dst, byte(l))
	case l <= 0xFF:
		dst = append(dst, 0x81, byte(l))
	default:
		dst = append(dst, 0x82, byte(l>>8), byte(l))
	}
	return append(dst, value...)
}
