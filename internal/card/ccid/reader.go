package ccid

import (
	"errors"
	"fmt"
	"time"
)

// Bulk is the pair of bulk endpoints of the CCID interface.
type Bulk interface {
	// Out writes one whole message.
	Out(msg []byte) error
	// In reads up to len(p) bytes, returning when a short packet ends the
	// transfer or p is full; ErrTimeout when nothing came within timeout.
	In(p []byte, timeout time.Duration) (int, error)
	// MaxPacket is the bulk-in endpoint's wMaxPacketSize.
	MaxPacket() int
	Close() error
}

// ErrTimeout is Bulk.In's "no data yet".
var ErrTimeout = errors.New("ccid: bulk read timed out")

// Reader is one CCID slot with a card; it implements card.Transport.
type Reader struct {
	bulk Bulk
	desc Descriptor
	seq  byte
	atr  []byte
	// Timeout bounds one APDU, time extensions included (default 10 min:
	// RSA-4096 generation on slow tokens).
	Timeout time.Duration
	// poll is one bulk-in wait; a reader that NAKs until the card answers
	// (QEMU's usb-ccid sends no time extensions) is polled again until
	// Timeout.
	poll time.Duration
}

// NewReader powers the card on over bulk and returns the reader.
func NewReader(bulk Bulk, desc Descriptor) (*Reader, error) {
	if desc.Level == LevelCharacter {
		return nil, errors.New("ccid: character-level readers are not supported")
	}
	if desc.Level == LevelTPDU && desc.Protocols&1 == 0 {
		return nil, errors.New("ccid: this reader exchanges T=1 TPDUs, which glint does not speak (tokens and most readers exchange APDUs)")
	}
	r := &Reader{bulk: bulk, desc: desc, Timeout: 10 * time.Minute, poll: 2 * time.Second}
	atr, err := r.powerOn()
	if err != nil {
		return nil, err
	}
	r.atr = atr
	return r, nil
}

// ATR is the card's answer to reset.
func (r *Reader) ATR() []byte { return r.atr }

// Descriptor is the reader's class descriptor.
func (r *Reader) Descriptor() Descriptor { return r.desc }

func (r *Reader) powerOn() ([]byte, error) {
	// bPowerSelect 0: automatic voltage selection.
	resp, err := r.call("power on", msgIccPowerOn, [3]byte{0, 0, 0}, nil)
	if err != nil {
		return nil, err
	}
	if len(resp.Data) < 2 {
		return nil, &ReaderError{Op: "power on", Code: 0xFE}
	}
	return resp.Data, nil
}

// ExtendedLength reports whether extended APDUs pass this reader.
func (r *Reader) ExtendedLength() bool { return r.desc.Level == LevelExtendedAPDU }

// Transmit sends one command APDU and returns the response APDU.
func (r *Reader) Transmit(apdu []byte) ([]byte, error) {
	if len(apdu) < 4 {
		return nil, fmt.Errorf("ccid: APDU of %d bytes", len(apdu))
	}
	if r.desc.Level == LevelTPDU {
		apdu = t0TPDU(apdu)
	}
	if headerSize+len(apdu) > r.desc.MaxMessage {
		return nil, fmt.Errorf("ccid: APDU of %d bytes does not fit the reader's %d-byte messages", len(apdu), r.desc.MaxMessage)
	}
	resp, err := r.call("transfer", msgXfrBlock, [3]byte{0, 0, 0}, apdu)
	if err != nil {
		return nil, err
	}
	out := resp.Data
	// An extended-APDU reader splits a response longer than its messages
	// (bChainParameter 01 begin, 03 continue; section 6.2.1): ask for the
	// rest with empty XfrBlocks, wLevelParameter 0010h.
	for resp.Chain == 0x01 || resp.Chain == 0x03 {
		if resp, err = r.call("transfer", msgXfrBlock, [3]byte{0, 0x10, 0}, nil); err != nil {
			return nil, err
		}
		if len(out)+len(resp.Data) > MaxMessage {
			return nil, &ParseError{Field: "chained response", Err: errors.New("longer than an extended APDU")}
		}
		out = append(out, resp.Data...)
	}
	if len(out) < 2 {
		return nil, &ParseError{Field: "response APDU", Err: fmt.Errorf("%d bytes", len(out))}
	}
	return out, nil
}

// t0TPDU turns a short command APDU into a T=0 TPDU (ISO 7816-3 section
// 12.2): case 1 gets P3 = 00, case 4 loses its Le (the card answers 61xx
// and internal/card sends GET RESPONSE).
func t0TPDU(apdu []byte) []byte {
	switch {
	case len(apdu) == 4:
		return append(append([]byte(nil), apdu...), 0)
	case len(apdu) > 5 && apdu[4] != 0 && len(apdu) == 6+int(apdu[4]):
		return apdu[:len(apdu)-1]
	}
	return apdu
}

// call sends one message and reads its answer, skipping time extensions.
func (r *Reader) call(op string, typ byte, spec [3]byte, data []byte) (*Response, error) {
	r.seq++
	seq := r.seq
	if err := r.bulk.Out(message(typ, 0, seq, spec, data)); err != nil {
		return nil, fmt.Errorf("ccid %s: %w", op, err)
	}
	deadline := time.Now().Add(r.Timeout)
	for {
		msg, err := r.readMessage(deadline)
		if err != nil {
			return nil, fmt.Errorf("ccid %s: %w", op, err)
		}
		resp, err := ParseResponse(msg)
		if err != nil {
			return nil, err
		}
		if resp.Seq != seq {
			continue // a stale answer to an earlier, timed-out command
		}
		switch resp.CommandStatus() {
		case cmdStatusTimeExt:
			continue // the card wants more time (section 6.2.6)
		case cmdStatusFailed:
			return nil, &ReaderError{Op: op, Code: resp.Error, Slot: resp.Slot, NoICC: resp.Status&3 == iccStatusNotThere}
		case cmdStatusOK:
			return resp, nil
		}
		return nil, &ParseError{Field: "bStatus", Err: fmt.Errorf("%02X", resp.Status)}
	}
}

// readMessage reads one RDR_to_PC message: the first packet tells the
// length, the rest is read in one transfer of exactly that size, so no
// zero-length packet is needed when the length is a multiple of the packet
// size.
func (r *Reader) readMessage(deadline time.Time) ([]byte, error) {
	first := make([]byte, r.bulk.MaxPacket())
	var n int
	for {
		var err error
		n, err = r.bulk.In(first, r.poll)
		if errors.Is(err, ErrTimeout) {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("no answer from the card within %v", r.Timeout)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if n > 0 {
			break
		}
	}
	total, err := messageLength(first[:n])
	if err != nil {
		return nil, err
	}
	if total > r.desc.MaxMessage && total > headerSize+261 {
		return nil, &ParseError{Field: "dwLength", Err: fmt.Errorf("message of %d bytes is longer than the reader's %d", total, r.desc.MaxMessage)}
	}
	msg := make([]byte, total)
	got := copy(msg, first[:n])
	if n > total {
		got = total
	}
	for got < total {
		m, err := r.bulk.In(msg[got:], time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("read the rest of a %d-byte message: %w", total, err)
		}
		if m == 0 {
			return nil, &ParseError{Field: "message", Err: fmt.Errorf("ended after %d of %d bytes", got, total)}
		}
		got += m
	}
	return msg, nil
}

// Close powers the card off and releases the interface.
func (r *Reader) Close() error {
	r.Timeout = 5 * time.Second
	r.call("power off", msgIccPowerOff, [3]byte{}, nil)
	return r.bulk.Close()
}
