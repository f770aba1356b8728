package cardsim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// vsmartcard's vpcd protocol (virtualsmartcard/src/vpcd/vpcd.c): pcscd's
// vpcd driver listens on a TCP port (35963 by default, the reader.conf
// DEVICENAME /dev/null:PORT); the virtual card connects. Every message is a
// 2-byte big-endian length and that many bytes. A 1-byte message is a
// control code: 00 power off, 01 power on, 02 reset (no answer), 04 ATR
// (answered with the ATR). Anything longer is a command APDU, answered with
// the response APDU.
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdATR      = 0x04
)

// ReadVPCDFrame reads one length-prefixed vpcd message.
func ReadVPCDFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:])) // at most 65535: the cap is the format's
	if n == 0 {
		return nil, &FrameError{Format: "vpcd", Err: errors.New("empty message")}
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, &FrameError{Format: "vpcd", Err: fmt.Errorf("message of %d bytes: %w", n, err)}
	}
	return b, nil
}

// FrameError is a malformed message from a reader emulation (vpcd, QEMU).
type FrameError struct {
	Format string
	Err    error
}

func (e *FrameError) Error() string {
	return "cardsim: malformed " + e.Format + " message: " + e.Err.Error()
}
func (e *FrameError) Unwrap() error { return e.Err }

func writeVPCDFrame(w io.Writer, b []byte) error {
	if len(b) > 0xFFFF {
		return fmt.Errorf("vpcd message of %d bytes", len(b))
	}
	_, err := w.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	return err
}

// ServeVPCD connects the card to pcscd's vpcd reader at addr
// ("127.0.0.1:35963") and answers it until ctx ends, reconnecting when
// pcscd restarts. The card is "inserted" while connected.
func (c *Card) ServeVPCD(ctx context.Context, addr string) error {
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		err = c.serveVPCDConn(conn)
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fe *FrameError
		if errors.As(err, &fe) {
			return err
		}
	}
}

func (c *Card) serveVPCDConn(conn net.Conn) error {
	for {
		msg, err := ReadVPCDFrame(conn)
		if err != nil {
			return err
		}
		if len(msg) == 1 {
			switch msg[0] {
			case vpcdPowerOff, vpcdReset:
				c.PowerOff()
			case vpcdPowerOn:
			case vpcdATR:
				if err := writeVPCDFrame(conn, c.ATR()); err != nil {
					return err
				}
			default:
				return &FrameError{Format: "vpcd", Err: fmt.Errorf("unknown control code %02X", msg[0])}
			}
			continue
		}
		if err := writeVPCDFrame(conn, c.Process(msg)); err != nil {
			return err
		}
	}
}
