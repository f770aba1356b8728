package card

import (
	"encoding/binary"
	"errors"
)

// Instruction bytes of the OpenPGP card application (spec 3.4, section 7.1)
// and ISO 7816-4.
const (
	insSelect              byte = 0xA4
	insGetData             byte = 0xCA
	insVerify              byte = 0x20
	insChangeReferenceData byte = 0x24
	insResetRetryCounter   byte = 0x2C
	insGenerateAsymmetric  byte = 0x47
	insPutData             byte = 0xDA
	insPutDataOdd          byte = 0xDB
	insPSO                 byte = 0x2A
	insGetResponse         byte = 0xC0
	insTerminateDF         byte = 0xE6
	insActivateFile        byte = 0x44
)

// claChain is the CLA bit that marks "more commands of this chain follow"
// (ISO 7816-4 section 5.1.1.1).
const claChain byte = 0x10

// Limits of ISO 7816-4 APDUs (section 5.1).
const (
	MaxShortLc    = 255
	MaxShortNe    = 256
	MaxExtendedLc = 65535
	MaxExtendedNe = 65536
)

// Command is one command APDU.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	// Ne is the maximum number of response bytes expected: 0 for none, up
	// to 256 for a short APDU (Le=00 means 256), up to 65536 extended.
	Ne int
}

// Bytes encodes c as a short APDU, or an extended one when extended is set
// (ISO 7816-4 section 5.1: cases 1, 2S/2E, 3S/3E, 4S/4E).
func (c Command) Bytes(extended bool) ([]byte, error) {
	out := []byte{c.CLA, c.INS, c.P1, c.P2}
	nc := len(c.Data)
	if !extended {
		if nc > MaxShortLc || c.Ne > MaxShortNe {
			return nil, errors.New("command too long for a short APDU")
		}
		if nc > 0 {
			out = append(out, byte(nc))
			out = append(out, c.Data...)
		}
		if c.Ne > 0 {
			out = append(out, byte(c.Ne)) // 256 encodes as 00
		}
		return out, nil
	}
	if nc > MaxExtendedLc || c.Ne > MaxExtendedNe {
		return nil, errors.New("command too long for an extended APDU")
	}
	if nc == 0 && c.Ne == 0 {
		return out, nil
	}
	out = append(out, 0)
	if nc > 0 {
		out = binary.BigEndian.AppendUint16(out, uint16(nc))
		out = append(out, c.Data...)
	}
	if c.Ne > 0 {
		out = binary.BigEndian.AppendUint16(out, uint16(c.Ne)) // 65536 encodes as 0000
	}
	return out, nil
}

// ParseCommand decodes a command APDU (the card's side: the simulator uses
// it). extended reports whether the encoding was extended.
func ParseCommand(untrusted []byte) (c Command, extended bool, err error) {
	const f = "command APDU"
	n := len(untrusted)
	if n < 4 {
		return c, false, parseErrorf(f, "header", 0, "%d bytes, need 4: %w", n, ErrTruncated)
	}
	if n > 4+3+MaxExtendedLc+2 {
		return c, false, parseErrorf(f, "length", 0, "%d bytes: %w", n, ErrTooLarge)
	}
	c.CLA, c.INS, c.P1, c.P2 = untrusted[0], untrusted[1], untrusted[2], untrusted[3]
	body := untrusted[4:]
	switch {
	case len(body) == 0: // case 1
		return c, false, nil
	case len(body) == 1: // case 2S
		c.Ne = int(body[0])
		if c.Ne == 0 {
			c.Ne = 256
		}
		return c, false, nil
	case body[0] != 0: // case 3S or 4S
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
		case 2 + lc:
			c.Ne = int(body[1+lc])
			if c.Ne == 0 {
				c.Ne = 256
			}
		default:
			return c, false, parseErrorf(f, "Lc", 4, "Lc %d does not match %d body bytes", lc, len(body))
		}
		c.Data = append([]byte(nil), body[1:1+lc]...)
		return c, false, nil
	case len(body) == 3: // case 2E
		c.Ne = int(binary.BigEndian.Uint16(body[1:]))
		if c.Ne == 0 {
			c.Ne = 65536
		}
		return c, true, nil
	case len(body) < 3:
		return c, false, parseErrorf(f, "extended Lc", 4, "%d body bytes: %w", len(body), ErrTruncated)
	}
	lc := int(binary.BigEndian.Uint16(body[1:3]))
	if lc == 0 {
		return c, true, parseErrorf(f, "extended Lc", 5, "Lc 0 with a body")
	}
	switch len(body) {
	case 3 + lc:
	case 5 + lc:
		c.Ne = int(binary.BigEndian.Uint16(body[3+lc:]))
		if c.Ne == 0 {
			c.Ne = 65536
		}
	default:
		return c, true, parseErrorf(f, "extended Lc", 5, "Lc %d does not match %d body bytes", lc, len(body))
	}
	c.Data = append([]byte(nil), body[3:3+lc]...)
	return c, true, nil
}

// splitResponse separates a response APDU into its data and status word.
func splitResponse(untrusted []byte) (data []byte, sw uint16, err error) {
	if len(untrusted) < 2 {
		return nil, 0, parseErrorf("response APDU", "status word", len(untrusted), "%d bytes: %w", len(untrusted), ErrTruncated)
	}
	n := len(untrusted) - 2
	return untrusted[:n], binary.BigEndian.Uint16(untrusted[n:]), nil
}
