package pcsc

import (
	"encoding/binary"
	"errors"
	"testing"
)

func FuzzParseReaderStates(f *testing.F) {
	b := make([]byte, maxReaders*readerStateSize)
	copy(b, "glint cardsim 00 00\x00")
	binary.LittleEndian.PutUint32(b[132:], 0x34)
	binary.LittleEndian.PutUint32(b[176:], 12)
	f.Add(b)
	f.Add(make([]byte, maxReaders*readerStateSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseReaderStates(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, r := range rs {
			if len(r.Name) >= maxReaderName || len(r.ATR) > maxATRSize {
				t.Fatalf("reader %q ATR %d bytes", r.Name, len(r.ATR))
			}
		}
	})
}

func FuzzParseTransmitReply(f *testing.F) {
	b := make([]byte, 32)
	binary.LittleEndian.PutUint32(b[24:], 0x102)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseTransmitReply(b)
		if err == nil && (n < 2 || n > maxBufferExt) {
			t.Fatalf("length %d accepted", n)
		}
		if err != nil {
			var pe *ParseError
			var e *Error
			if !errors.As(err, &pe) && !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}
