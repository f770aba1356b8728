// Package ccid talks to a USB smart card reader, or a token with a built-in
// one (Nitrokey 3, Nitrokey Pro, Librem Key, YubiKey), with the USB CCID
// class protocol ("Universal Serial Bus Device Class: Smart Card CCID",
// revision 1.1), directly over Linux usbfs: no pcscd, no libusb, no cgo, so
// it runs in glint's initramfs.
//
// A Reader is a card.Transport. It powers the card on (IccPowerOn, the
// answer is the ATR), sends each APDU in a PC_to_RDR_XfrBlock and reads
// the RDR_to_PC_DataBlock, waiting through time-extension replies (a token
// generating an RSA-4096 key asks for more time every second or so, for
// minutes). It speaks the short- and extended-APDU exchange levels that
// tokens use; on a TPDU-level reader it sends T=0 TPDUs (short APDUs, Le
// dropped from case 4, GET RESPONSE done by internal/card), which is what
// QEMU's usb-ccid reader takes. T=1 TPDU readers are refused with a message.
//
// Only the CCID interface is claimed, and Close releases it: on a Nitrokey 3
// the same USB device carries the FIDO/CTAPHID interface that glint's HOTP
// code uses through hidraw, which stays bound to usbhid.
//
//	devs, err := ccid.Find()            // every CCID interface on the USB buses
//	r, err := ccid.Open(devs[0])
//	c, err := card.Open(r)
package ccid

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Message types (CCID 1.1 sections 6.1 and 6.2).
const (
	msgIccPowerOn    = 0x62
	msgIccPowerOff   = 0x63
	msgGetSlotStatus = 0x65
	msgXfrBlock      = 0x6F
	msgDataBlock     = 0x80
	msgSlotStatus    = 0x81
	headerSize       = 10
	// MaxMessage caps any reader's dwMaxCCIDMessageLength: an extended
	// APDU of 65536 data bytes plus header (CCID 1.1 section 5.1).
	MaxMessage = 65544 + headerSize
)

// Command status in bits 7-6 of bStatus (CCID 1.1 section 6.2.6).
const (
	cmdStatusOK       = 0
	cmdStatusFailed   = 1
	cmdStatusTimeExt  = 2
	iccStatusNotThere = 2 // bits 1-0: no card present
)

// ParseError is a malformed message from the reader.
type ParseError struct {
	Field string
	Err   error
}

func (e *ParseError) Error() string { return "ccid: malformed " + e.Field + ": " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

// ReaderError is a reader's "command failed" answer (bError, section 6.2.6).
type ReaderError struct {
	Op    string
	Code  byte
	Slot  byte
	NoICC bool
}

func (e *ReaderError) Error() string {
	if e.NoICC {
		return fmt.Sprintf("ccid %s: no card in the reader (removed?)", e.Op)
	}
	text := map[byte]string{
		0xFF: "command aborted", 0xFE: "card mute (no answer; removed or not powered?)",
		0xFD: "parity error", 0xFC: "overrun", 0xFB: "hardware error", 0xF8: "bad ATR TS",
		0xF7: "bad ATR TCK", 0xF6: "protocol not supported", 0xF5: "class not supported",
		0xF4: "procedure byte conflict", 0xF3: "deactivated protocol", 0xF2: "busy with automatic sequence",
		0xF0: "PIN timeout", 0xEF: "PIN cancelled", 0xE0: "slot busy", 0x00: "command not supported",
	}[e.Code]
	if text == "" {
		text = "reader error"
	}
	return fmt.Sprintf("ccid %s: %s (bError %02X)", e.Op, text, e.Code)
}

// message builds a PC_to_RDR message: type, dwLength (little-endian), slot,
// seq, three message-specific bytes, data.
func message(typ byte, slot, seq byte, spec [3]byte, data []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(data))
	b[0] = typ
	binary.LittleEndian.PutUint32(b[1:], uint32(len(data)))
	b[5], b[6] = slot, seq
	copy(b[7:], spec[:])
	return append(b, data...)
}

// Response is one RDR_to_PC message.
type Response struct {
	Type      byte
	Slot, Seq byte
	Status    byte // bStatus
	Error     byte // bError
	Chain     byte // bChainParameter (DataBlock) or bClockStatus
	Data      []byte
}

// CommandStatus is bits 7-6 of bStatus.
func (r *Response) CommandStatus() int { return int(r.Status >> 6) }

// ParseResponse decodes one complete RDR_to_PC message.
func ParseResponse(untrusted []byte) (*Response, error) {
	if len(untrusted) < headerSize {
		return nil, &ParseError{Field: "header", Err: fmt.Errorf("%d bytes, need %d", len(untrusted), headerSize)}
	}
	n := binary.LittleEndian.Uint32(untrusted[1:5])
	if n > MaxMessage-headerSize {
		return nil, &ParseError{Field: "dwLength", Err: fmt.Errorf("%d is more than %d", n, MaxMessage-headerSize)}
	}
	if int(n) != len(untrusted)-headerSize {
		return nil, &ParseError{Field: "dwLength", Err: fmt.Errorf("says %d data bytes, message has %d", n, len(untrusted)-headerSize)}
	}
	switch untrusted[0] {
	case msgDataBlock, msgSlotStatus, 0x82, 0x83, 0x84:
	default:
		return nil, &ParseError{Field: "message type", Err: fmt.Errorf("%02X is not a reader-to-host bulk message", untrusted[0])}
	}
	return &Response{
		Type: untrusted[0], Slot: untrusted[5], Seq: untrusted[6],
		Status: untrusted[7], Error: untrusted[8], Chain: untrusted[9],
		Data: append([]byte(nil), untrusted[headerSize:]...),
	}, nil
}

// messageLength reads dwLength from a message's first bytes, so the reader
// knows how much more to fetch after the first USB packet.
func messageLength(first []byte) (int, error) {
	if len(first) < headerSize {
		return 0, &ParseError{Field: "header", Err: fmt.Errorf("first packet of %d bytes", len(first))}
	}
	n := binary.LittleEndian.Uint32(first[1:5])
	if n > MaxMessage-headerSize {
		return 0, &ParseError{Field: "dwLength", Err: fmt.Errorf("%d is more than %d", n, MaxMessage-headerSize)}
	}
	return headerSize + int(n), nil
}

// Exchange levels of dwFeatures (CCID 1.1 section 5.1, table 5.1-1).
type Level int

const (
	LevelCharacter Level = iota
	LevelTPDU
	LevelShortAPDU
	LevelExtendedAPDU
)

func (l Level) String() string {
	return [...]string{"character", "TPDU", "short APDU", "extended APDU"}[l]
}

// Descriptor is the parts of the smart card class descriptor (CCID 1.1
// section 5.1) glint uses.
type Descriptor struct {
	Protocols  uint32 // bit 0 T=0, bit 1 T=1
	Features   uint32
	MaxMessage int
	Level      Level
}

// ParseDescriptor decodes the 54-byte class descriptor (type 21h).
func ParseDescriptor(untrusted []byte) (Descriptor, error) {
	var d Descriptor
	if len(untrusted) < 0x36 || untrusted[0] < 0x36 || untrusted[1] != 0x21 {
		return d, &ParseError{Field: "class descriptor", Err: errors.New("not a 54-byte CCID class descriptor")}
	}
	d.Protocols = binary.LittleEndian.Uint32(untrusted[6:])
	d.Features = binary.LittleEndian.Uint32(untrusted[40:])
	d.MaxMessage = int(binary.LittleEndian.Uint32(untrusted[44:]))
	if d.MaxMessage < headerSize+5 {
		return d, &ParseError{Field: "dwMaxCCIDMessageLength", Err: fmt.Errorf("%d", d.MaxMessage)}
	}
	if d.MaxMessage > MaxMessage {
		d.MaxMessage = MaxMessage
	}
	switch {
	case d.Features&0x40000 != 0:
		d.Level = LevelExtendedAPDU
	case d.Features&0x20000 != 0:
		d.Level = LevelShortAPDU
	case d.Features&0x10000 != 0:
		d.Level = LevelTPDU
	default:
		d.Level = LevelCharacter
	}
	return d, nil
}
