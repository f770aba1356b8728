package cardsim

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func FuzzReadVPCDFrame(f *testing.F) {
	f.Add([]byte{0, 1, 4})
	f.Add([]byte{0, 5, 0, 0xA4, 4, 0, 0})
	f.Add([]byte{0, 0})
	f.Add([]byte{0xFF, 0xFF, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			msg, err := ReadVPCDFrame(r)
			if err != nil {
				var fe *FrameError
				if !errors.As(err, &fe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("untyped error %T %v", err, err)
				}
				return
			}
			if len(msg) == 0 || len(msg) > 0xFFFF {
				t.Fatalf("frame of %d bytes", len(msg))
			}
		}
	})
}

// FuzzProcess feeds arbitrary APDUs to the card: it must answer every one
// with at least a status word and never panic.
func FuzzProcess(f *testing.F) {
	f.Add([]byte{0, 0xA4, 4, 0, 6, 0xD2, 0x76, 0, 1, 0x24, 1})
	f.Add([]byte{0, 0xCA, 0, 0x6E, 0})
	f.Add([]byte{0x10, 0xDB, 0x3F, 0xFF, 2, 0x4D, 0})
	f.Add([]byte{0, 0xDB, 0x3F, 0xFF, 0x0A, 0x4D, 0x08, 0xB6, 0, 0x7F, 0x48, 2, 0x92, 0x20, 0x5F})
	f.Fuzz(func(t *testing.T, apdu []byte) {
		c, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Admin PIN verified first, so PUT DATA and key import paths run.
		c.Process([]byte{0, 0x20, 0, 0x83, 8, '1', '2', '3', '4', '5', '6', '7', '8'})
		if r := c.Process(apdu); len(r) < 2 {
			t.Fatalf("answer of %d bytes", len(r))
		}
	})
}

func FuzzReadVSCardMessage(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 12, 'V', 'S', 'C', 'D', 0, 0, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0xCA, 0, 0x6E, 0})
	f.Add([]byte{0, 0, 0, 7, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			m, err := ReadVSCardMessage(r)
			if err != nil {
				var fe *FrameError
				if !errors.As(err, &fe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("untyped error %T %v", err, err)
				}
				return
			}
			if len(m.Payload) > maxVSCardPayload {
				t.Fatalf("payload of %d bytes", len(m.Payload))
			}
		}
	})
}
