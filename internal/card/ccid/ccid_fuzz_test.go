package ccid

import (
	"errors"
	"testing"
)

// qemuConfig is QEMU usb-ccid's configuration as its source declares it
// (hw/usb/dev-smartcard-reader.c: qemu_ccid_descriptor, desc_iface0):
// configuration, interface (class 0B), the 54-byte class descriptor, an
// interrupt-in and two bulk endpoints.
var qemuConfig = concat(
	[]byte{9, 2, 0x5D, 0, 1, 1, 0, 0xE0, 50},
	[]byte{9, 4, 0, 0, 3, 0x0B, 0, 0, 4},
	[]byte{0x36, 0x21, 0x10, 0x01, 0x00, 0x07, 0x01, 0x00, 0x00, 0x00, // dwProtocols T=0
		0xA0, 0x0F, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x80, 0x25, 0x00, 0x00, 0x00, 0xC2, 0x01, 0x00, 0x00,
		0xFE, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xFE, 0x04, 0x01, 0x00, // dwFeatures: TPDU level
		0x12, 0x00, 0x01, 0x00, // dwMaxCCIDMessageLength
		0xFF, 0xFF, 0x00, 0x00, 0x01, 0x01},
	[]byte{7, 5, 0x81, 3, 64, 0, 255},
	[]byte{7, 5, 0x82, 2, 64, 0, 0},
	[]byte{7, 5, 0x03, 2, 64, 0, 0},
)

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func checkErr(t *testing.T, err error) {
	var pe *ParseError
	if err != nil && !errors.As(err, &pe) {
		t.Fatalf("untyped error %T %v", err, err)
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte{0x80, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0x90, 0})
	f.Add([]byte{0x81, 0, 0, 0, 0, 0, 1, 0x42, 0xFE, 0})
	f.Add([]byte{0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		checkErr(t, err)
		if err == nil && len(r.Data) != len(b)-headerSize {
			t.Fatal("data length")
		}
		_, err = messageLength(b)
		checkErr(t, err)
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add(qemuConfig)
	f.Fuzz(func(t *testing.T, b []byte) {
		ifs, err := ParseConfig(b)
		checkErr(t, err)
		for _, i := range ifs {
			if i.maxPacket <= 0 || i.desc.MaxMessage > MaxMessage {
				t.Fatalf("interface %+v", i)
			}
		}
	})
}

func TestParseQEMUConfig(t *testing.T) {
	ifs, err := ParseConfig(qemuConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 {
		t.Fatalf("%d CCID interfaces", len(ifs))
	}
	i := ifs[0]
	if i.number != 0 || i.bulkIn != 0x82 || i.bulkOut != 0x03 || i.maxPacket != 64 || i.desc.Level != LevelTPDU || i.desc.Protocols != 1 || i.desc.MaxMessage != 0x10012 {
		t.Fatalf("QEMU's reader read as %+v", i)
	}
}
