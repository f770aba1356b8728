package eventlog

import (
	"encoding/binary"
)

// reader walks an untrusted byte slice. Every read is bounds-checked and
// reports the field it was reading, so an error names the offset and the
// field instead of panicking.
type reader struct {
	b   []byte
	off int
	// base is added to offsets in errors (e.g. a log that starts inside a
	// larger memory region).
	base int64
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) pos() int64 { return r.base + int64(r.off) }

func (r *reader) bytes(n int, field string) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, errorf(r.pos(), field, ErrTruncated, "need %d bytes, %d remain", n, r.remaining())
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v, nil
}

func (r *reader) u8(field string) (uint8, error) {
	b, err := r.bytes(1, field)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16(field string) (uint16, error) {
	b, err := r.bytes(2, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32(field string) (uint32, error) {
	b, err := r.bytes(4, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// sized reads a length-prefixed blob whose length was already read as claimed,
// checking it against the cap and the bytes that remain before slicing.
func (r *reader) sized(claimed uint64, limit int, field string) ([]byte, error) {
	if claimed > uint64(limit) {
		return nil, errorf(r.pos(), field, ErrTooLarge, "claims %d bytes, limit %d", claimed, limit)
	}
	return r.bytes(int(claimed), field)
}

// restIsZero reports whether what remains is zero padding: firmware hands
// over fixed-size buffers (cbmem, ACPI log areas) padded with zeros after the
// last event. At least a pcrIndex and an eventType (8 bytes) of zeros are
// required, so a log cut inside the next event's header is still reported
// as truncated.
func (r *reader) restIsZero() bool {
	if r.remaining() < 8 {
		return false
	}
	for _, c := range r.b[r.off:] {
		if c != 0 {
			return false
		}
	}
	return true
}
