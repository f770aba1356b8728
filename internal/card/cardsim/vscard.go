package cardsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// QEMU's VSCard protocol (libcacard's vscard_common.h; QEMU's
// hw/usb/ccid-card-passthru.c), spoken by the "client" that owns the card
// to QEMU's ccid-card-passthru behind a usb-ccid reader. Every message is
// a 12-byte header {type, reader id, length} in network byte order and the
// payload. The client sends Init (magic "VSCD", version, capabilities),
// ReaderAdd, then ATR to insert the card; QEMU forwards the guest's APDUs
// and the client answers each with an APDU message.
const (
	vscInit          = 1
	vscError         = 2
	vscReaderAdd     = 3
	vscReaderRemove  = 4
	vscATR           = 5
	vscCardRemove    = 6
	vscAPDU          = 7
	vscFlush         = 8
	vscFlushComplete = 9

	vscVersion       = 2 // MAKE_VERSION(0, 0, 2)
	vscUndefinedID   = 0xFFFFFFFF
	vscHeaderSize    = 12
	maxVSCardPayload = 65536 + 16 // QEMU's VSCARD_IN_SIZE is 64 KiB
)

var vscMagic = []byte("VSCD")

// VSCardMessage is one decoded message.
type VSCardMessage struct {
	Type, Reader uint32
	Payload      []byte
}

// ReadVSCardMessage reads one message.
func ReadVSCardMessage(r io.Reader) (VSCardMessage, error) {
	var hdr [vscHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return VSCardMessage{}, err
	}
	m := VSCardMessage{Type: binary.BigEndian.Uint32(hdr[0:]), Reader: binary.BigEndian.Uint32(hdr[4:])}
	n := binary.BigEndian.Uint32(hdr[8:])
	if n > maxVSCardPayload {
		return m, &FrameError{Format: "VSCard", Err: fmt.Errorf("payload of %d bytes is more than %d", n, maxVSCardPayload)}
	}
	m.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, m.Payload); err != nil {
		return m, &FrameError{Format: "VSCard", Err: fmt.Errorf("payload of %d bytes: %w", n, err)}
	}
	return m, nil
}

func writeVSCard(w io.Writer, typ, reader uint32, payload []byte) error {
	b := make([]byte, vscHeaderSize, vscHeaderSize+len(payload))
	binary.BigEndian.PutUint32(b[0:], typ)
	binary.BigEndian.PutUint32(b[4:], reader)
	binary.BigEndian.PutUint32(b[8:], uint32(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// ServeVSCard inserts the card into QEMU's ccid-card-passthru over conn
// and answers the guest's APDUs until the connection ends. Use ATRT0 as
// the card's ATR: QEMU's reader announces T=0 only.
func (c *Card) ServeVSCard(conn net.Conn) error {
	init := append(append([]byte(nil), vscMagic...), 0, 0, 0, vscVersion, 0, 0, 0, 0)
	if err := writeVSCard(conn, vscInit, vscUndefinedID, init); err != nil {
		return err
	}
	if err := writeVSCard(conn, vscReaderAdd, vscUndefinedID, []byte("glint cardsim")); err != nil {
		return err
	}
	reader := uint32(0)
	inserted := false
	for {
		m, err := ReadVSCardMessage(conn)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		switch m.Type {
		case vscInit:
			if len(m.Payload) < 8 || string(m.Payload[:4]) != string(vscMagic) {
				return &FrameError{Format: "VSCard", Err: errors.New("init message without the VSCD magic")}
			}
		case vscError:
			if len(m.Payload) < 4 {
				return &FrameError{Format: "VSCard", Err: errors.New("short Error message")}
			}
			if code := binary.BigEndian.Uint32(m.Payload); code != 0 {
				return fmt.Errorf("QEMU refused the card (VSCard error %d)", code)
			}
			// The first success answers ReaderAdd with our reader id;
			// then insert the card.
			if !inserted {
				reader, inserted = m.Reader, true
				if err := writeVSCard(conn, vscATR, reader, c.ATR()); err != nil {
					return err
				}
			}
		case vscAPDU:
			if err := writeVSCard(conn, vscAPDU, reader, c.Process(m.Payload)); err != nil {
				return err
			}
		case vscFlush:
			if err := writeVSCard(conn, vscFlushComplete, reader, nil); err != nil {
				return err
			}
		default:
			return &FrameError{Format: "VSCard", Err: fmt.Errorf("unexpected message type %d", m.Type)}
		}
	}
}
