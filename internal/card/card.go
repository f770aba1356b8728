package card

import (
	"errors"
	"fmt"
)

// Transport carries APDUs to one card: a CCID reader over usbfs
// (internal/card/ccid), pcscd (internal/card/pcsc), or the simulator
// in-process. Higher layers never know which one they have.
type Transport interface {
	// Transmit sends one command APDU and returns the response APDU
	// (data followed by the two status bytes).
	Transmit(apdu []byte) ([]byte, error)
	// ExtendedLength reports whether the path to the card passes extended
	// APDUs (a T=0 TPDU-level reader such as QEMU's usb-ccid does not;
	// then glint uses short APDUs, command chaining and GET RESPONSE).
	ExtendedLength() bool
	Close() error
}

// maxResponseTotal caps the bytes collected over GET RESPONSE rounds: the
// largest answer glint asks for is an RSA-8192 public key (about 1.1 KiB);
// 64 KiB is the most one extended APDU can carry.
const maxResponseTotal = 65536 + 256

// Card is the OpenPGP application on one card. It is not safe for
// concurrent use; the card itself serialises commands anyway.
type Card struct {
	t   Transport
	app *ApplicationData
	// ext: send extended APDUs (the card and the transport both take them).
	ext bool
}

// Open selects the OpenPGP application and reads its application data.
func Open(t Transport) (*Card, error) {
	c := &Card{t: t}
	if err := c.selectApp(); err != nil {
		return nil, err
	}
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the transport (releasing the USB interface or the pcscd
// connection).
func (c *Card) Close() error { return c.t.Close() }

func (c *Card) selectApp() error {
	_, err := c.transmit(Command{INS: insSelect, P1: 0x04, P2: 0x00, Data: openPGPAID})
	var se *StatusError
	if errors.As(err, &se) && se.SW == SWTerminated {
		return ErrTerminated
	}
	if errors.As(err, &se) && (se.SW == SWFileNotFound || se.SW>>8 == 0x6A) {
		return fmt.Errorf("no OpenPGP application on this card (SELECT: %04X): is it an OpenPGP card, Nitrokey, YubiKey or Librem Key?", se.SW)
	}
	return err
}

// Refresh re-reads the application related data (after a change).
func (c *Card) Refresh() error {
	raw, err := c.GetData(tagAppData)
	if err != nil {
		return fmt.Errorf("read the card's application data: %w", err)
	}
	app, err := ParseApplicationData(raw)
	if err != nil {
		return err
	}
	c.app = app
	c.ext = c.t.ExtendedLength() && app.ExtendedLength
	return nil
}

// App is the application data read by Open or the last Refresh.
func (c *Card) App() *ApplicationData { return c.app }

// transmit sends cmd, chaining long data and collecting long answers.
func (c *Card) transmit(cmd Command) ([]byte, error) {
	maxLc := MaxShortLc
	if c.ext {
		maxLc = MaxExtendedLc
		if c.app != nil && c.app.MaxCommand > 0 && c.app.MaxCommand < maxLc {
			maxLc = c.app.MaxCommand
		}
	}
	data := cmd.Data
	for len(data) > maxLc {
		part := cmd
		part.CLA |= claChain
		part.Data, part.Ne = data[:maxLc], 0
		if _, err := c.exchange(part); err != nil {
			return nil, err
		}
		data = data[maxLc:]
	}
	cmd.Data = data
	return c.exchange(cmd)
}

// exchange sends one APDU and follows 61xx (GET RESPONSE) and 6Cxx.
func (c *Card) exchange(cmd Command) ([]byte, error) {
	if !c.ext && cmd.Ne > MaxShortNe {
		cmd.Ne = MaxShortNe
	}
	if c.ext && c.app != nil && c.app.MaxResponse > 0 && cmd.Ne > c.app.MaxResponse {
		cmd.Ne = c.app.MaxResponse
	}
	var out []byte
	for round := 0; ; round++ {
		raw, err := cmd.Bytes(c.ext)
		if err != nil {
			return nil, err
		}
		resp, err := c.t.Transmit(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", insName(cmd.INS), err)
		}
		data, sw, err := splitResponse(resp)
		if err != nil {
			return nil, err
		}
		if len(out)+len(data) > maxResponseTotal {
			return nil, parseErrorf("response APDU", "data", len(out), "more than %d bytes over GET RESPONSE: %w", maxResponseTotal, ErrTooLarge)
		}
		out = append(out, data...)
		switch {
		case sw == SWOK:
			return out, nil
		case sw>>8 == 0x61 && round < maxResponseTotal/256+2:
			ne := int(sw & 0xFF)
			if ne == 0 {
				ne = 256
			}
			cmd = Command{CLA: cmd.CLA &^ claChain, INS: insGetResponse, Ne: ne}
		case sw>>8 == 0x6C && round == 0:
			ne := int(sw & 0xFF)
			if ne == 0 {
				ne = 256
			}
			cmd.Ne = ne
			out = out[:0]
		default:
			return nil, &StatusError{Ins: cmd.INS, SW: sw}
		}
	}
}

// GetData reads one data object (GET DATA, spec 3.4 section 7.2.6).
func (c *Card) GetData(tag uint16) ([]byte, error) {
	return c.transmit(Command{INS: insGetData, P1: byte(tag >> 8), P2: byte(tag), Ne: MaxExtendedNe})
}

// PutData writes one data object; most need the admin PIN verified first
// (spec 3.4 section 7.2.8).
func (c *Card) PutData(tag uint16, value []byte) error {
	_, err := c.transmit(Command{INS: insPutData, P1: byte(tag >> 8), P2: byte(tag), Data: value})
	return err
}

// Status is what `glint card status` shows.
type Status struct {
	*ApplicationData
	Name     string // cardholder name, gpg's "Surname<<Given" form
	URL      string // where the public key can be fetched
	SigCount int    // signatures made with the signature key
}

// Status re-reads the application data and the cardholder, URL and
// signature counter objects.
func (c *Card) Status() (*Status, error) {
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	s := &Status{ApplicationData: c.app}
	if raw, err := c.GetData(tagCardholder); err == nil {
		if v, ok, err := FindTLV(raw, tagName); err == nil && ok {
			s.Name = string(v)
		}
	}
	if raw, err := c.GetData(tagURL); err == nil {
		s.URL = string(raw)
	}
	if raw, err := c.GetData(tagSecuritySupport); err == nil {
		if v, ok, err := FindTLV(raw, tagSigCounter); err == nil && ok && len(v) <= 4 {
			for _, b := range v {
				s.SigCount = s.SigCount<<8 | int(b)
			}
		}
	}
	return s, nil
}
