package ccid

import (
	"encoding/binary"
	"fmt"
)

// Device is one CCID interface found on a USB bus.
type Device struct {
	SysPath      string // /sys/bus/usb/devices/1-2
	Bus, Addr    int    // /dev/bus/usb/BBB/AAA
	Vendor       uint16
	Product      uint16
	Manufacturer string
	ProductName  string
	Serial       string
	Interface    int
	BulkIn       byte // endpoint addresses
	BulkOut      byte
	MaxPacket    int // bulk-in wMaxPacketSize
	Descriptor   Descriptor
}

func (d Device) String() string {
	name := d.ProductName
	if name == "" {
		name = fmt.Sprintf("%04x:%04x", d.Vendor, d.Product)
	}
	if d.Manufacturer != "" {
		name = d.Manufacturer + " " + name
	}
	return fmt.Sprintf("%s (USB %03d/%03d, interface %d)", name, d.Bus, d.Addr, d.Interface)
}

// maxDescriptors caps the raw descriptors read from sysfs.
const maxDescriptors = 64 << 10

// ccidInterface is what ParseConfig finds for one CCID interface.
type ccidInterface struct {
	number          int
	bulkIn, bulkOut byte
	maxPacket       int
	desc            Descriptor
}

// ParseConfig walks a device's raw descriptors (sysfs "descriptors": the
// device descriptor, then the active configuration) and returns its CCID
// interfaces (class 0Bh) with their bulk endpoints and class descriptor.
func ParseConfig(untrusted []byte) ([]ccidInterface, error) {
	if len(untrusted) > maxDescriptors {
		return nil, &ParseError{Field: "USB descriptors", Err: fmt.Errorf("%d bytes", len(untrusted))}
	}
	var out []ccidInterface
	var cur *ccidInterface
	for off := 0; off < len(untrusted); {
		if off+2 > len(untrusted) {
			return nil, &ParseError{Field: "USB descriptor", Err: fmt.Errorf("truncated at %d", off)}
		}
		l, typ := int(untrusted[off]), untrusted[off+1]
		if l < 2 || off+l > len(untrusted) {
			return nil, &ParseError{Field: "USB descriptor", Err: fmt.Errorf("length %d at %d", l, off)}
		}
		d := untrusted[off : off+l]
		switch typ {
		case 0x04: // interface
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
			if l >= 9 && d[5] == 0x0B {
				cur = &ccidInterface{number: int(d[2])}
			}
		case 0x21: // smart card class descriptor
			if cur != nil {
				desc, err := ParseDescriptor(d)
				if err != nil {
					return nil, err
				}
				cur.desc = desc
			}
		case 0x05: // endpoint
			if cur != nil && l >= 7 && d[3]&3 == 2 { // bulk
				if d[2]&0x80 != 0 {
					cur.bulkIn = d[2]
					cur.maxPacket = int(binary.LittleEndian.Uint16(d[4:]) & 0x7FF)
				} else {
					cur.bulkOut = d[2]
				}
			}
		}
		off += l
	}
	if cur != nil {
		out = append(out, *cur)
	}
	var ok []ccidInterface
	for _, c := range out {
		if c.bulkIn != 0 && c.bulkOut != 0 && c.maxPacket > 0 && c.desc.MaxMessage > 0 {
			ok = append(ok, c)
		}
	}
	return ok, nil
}
