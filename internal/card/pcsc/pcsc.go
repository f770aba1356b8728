// Package pcsc is a pure-Go client of pcscd, the PC/SC daemon of
// workstations (pcsc-lite), so `glint card ...` reaches a token that pcscd
// already holds without libpcsclite or cgo.
//
// It speaks pcsc-lite's client protocol 4.4 (pcsc-lite 1.8.24 to 2.2; 2.3
// servers, protocol 4.5 and 4.6, still accept 4.4 clients, and a server that
// insists on 4.5 gets it: the messages glint uses did not change) over the
// unix socket $PCSCLITE_CSOCK_NAME or /run/pcscd/pcscd.comm. The messages
// are the C structs of pcsc-lite's winscard_msg.h in the machine's byte
// order (little-endian on every machine glint runs on), each preceded by a
// {size, command} header; reader states are eventhandler.h's READER_STATE.
//
//	c, err := pcsc.Dial("")
//	readers, err := c.Readers()
//	cd, err := c.Connect(readers[0].Name)   // a card.Transport
package pcsc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// DefaultSocket is pcscd's socket when $PCSCLITE_CSOCK_NAME is unset.
const DefaultSocket = "/run/pcscd/pcscd.comm"

// Socket returns the socket path pcsc-lite's own clients would use.
func Socket() string {
	if s := os.Getenv("PCSCLITE_CSOCK_NAME"); s != "" {
		return s
	}
	return DefaultSocket
}

// Commands (winscard_msg.h, enum pcsc_msg_commands).
const (
	cmdEstablishContext = 0x01
	cmdReleaseContext   = 0x02
	cmdConnect          = 0x04
	cmdDisconnect       = 0x06
	cmdBeginTransaction = 0x07
	cmdEndTransaction   = 0x08
	cmdTransmit         = 0x09
	cmdVersion          = 0x11
	cmdGetReadersState  = 0x12
)

// Sizes of pcsc-lite's structures and limits (pcsclite.h).
const (
	maxReaderName    = 128
	maxATRSize       = 33
	maxReaders       = 16    // PCSCLITE_MAX_READERS_CONTEXTS
	readerStateSize  = 184   // READER_STATE: name, 3 x u32, ATR[33], pad, 2 x u32
	maxBufferExt     = 65548 // MAX_BUFFER_SIZE_EXTENDED: 4+3+65536+3+2
	scopeSystem      = 2
	shareShared      = 2
	protocolT0       = 1
	protocolT1       = 2
	leaveCard        = 0
	ioRequestSize    = 16     // SCARD_IO_REQUEST: two unsigned longs on 64-bit Linux
	stateFlagPresent = 0x0004 // SCARD_PRESENT in READER_STATE.readerState
)

// Error is a PC/SC return value other than SCARD_S_SUCCESS.
type Error struct {
	Op   string
	Code uint32
}

func (e *Error) Error() string {
	msg := map[uint32]string{
		0x80100008: "insufficient buffer",
		0x80100009: "unknown reader",
		0x8010000A: "timeout",
		0x8010000B: "sharing violation: another program holds the card (gpg's scdaemon? run gpgconf --kill scdaemon)",
		0x8010000C: "no smart card in the reader",
		0x8010000F: "protocol mismatch",
		0x80100016: "not transacted",
		0x80100017: "reader unavailable",
		0x8010001D: "no PC/SC service",
		0x8010001E: "service stopped (client/server protocol mismatch?)",
		0x8010002E: "no readers",
		0x80100066: "card unresponsive",
		0x80100067: "card unpowered",
		0x80100068: "card was reset",
		0x80100069: "card was removed",
	}[e.Code]
	if msg == "" {
		msg = "PC/SC error"
	}
	return fmt.Sprintf("pcscd %s: %s (0x%08X)", e.Op, msg, e.Code)
}

// ErrSharingViolation is the code for "another program holds the card".
const ErrSharingViolation uint32 = 0x8010000B

// ParseError is a malformed message from pcscd.
type ParseError struct {
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	return "pcscd sent a malformed " + e.Field + ": " + e.Err.Error()
}
func (e *ParseError) Unwrap() error { return e.Err }

// Client is one connection to pcscd with one application context.
type Client struct {
	conn    net.Conn
	context uint32
	minor   int32
}

// timeout bounds one pcscd exchange; an RSA-4096 generation on a slow
// token is the longest card operation.
const timeout = 10 * time.Minute

// Dial connects to pcscd at socket ("" for Socket()), agrees on the
// protocol version and establishes a context.
func Dial(socket string) (*Client, error) {
	if socket == "" {
		socket = Socket()
	}
	for _, minor := range []int32{4, 5} {
		c, retry, err := dial(socket, minor)
		if err == nil {
			return c, nil
		}
		if !retry {
			return nil, err
		}
	}
	return nil, errors.New("pcscd speaks a client protocol glint does not know")
}

func dial(socket string, minor int32) (c *Client, retry bool, err error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, false, fmt.Errorf("connect to pcscd at %s (is pcscd running?): %w", socket, err)
	}
	c = &Client{conn: conn, minor: minor}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	v := make([]byte, 12)
	binary.LittleEndian.PutUint32(v[0:], 4)
	binary.LittleEndian.PutUint32(v[4:], uint32(minor))
	resp, err := c.call(cmdVersion, v, 12)
	if err != nil {
		return nil, false, err
	}
	if rv := binary.LittleEndian.Uint32(resp[8:]); rv != 0 {
		srvMajor, srvMinor := int32(binary.LittleEndian.Uint32(resp[0:])), int32(binary.LittleEndian.Uint32(resp[4:]))
		return nil, srvMajor == 4 && srvMinor > minor, fmt.Errorf("pcscd speaks protocol %d.%d: %w", srvMajor, srvMinor, &Error{Op: "version", Code: rv})
	}
	e := make([]byte, 12)
	binary.LittleEndian.PutUint32(e[0:], scopeSystem)
	resp, err = c.call(cmdEstablishContext, e, 12)
	if err != nil {
		return nil, false, err
	}
	if rv := binary.LittleEndian.Uint32(resp[8:]); rv != 0 {
		return nil, false, &Error{Op: "establish context", Code: rv}
	}
	c.context = binary.LittleEndian.Uint32(resp[4:])
	return c, false, nil
}

// Close releases the context and closes the socket.
func (c *Client) Close() error {
	r := make([]byte, 8)
	binary.LittleEndian.PutUint32(r, c.context)
	c.call(cmdReleaseContext, r, 8)
	return c.conn.Close()
}

// call sends one message and reads a reply of exactly n bytes.
func (c *Client) call(cmd uint32, body []byte, n int) ([]byte, error) {
	if err := c.send(cmd, body); err != nil {
		return nil, err
	}
	return c.recv(n)
}

func (c *Client) send(cmd uint32, body []byte) error {
	c.conn.SetDeadline(time.Now().Add(timeout))
	msg := make([]byte, 8, 8+len(body))
	binary.LittleEndian.PutUint32(msg[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(msg[4:], cmd)
	msg = append(msg, body...)
	if _, err := c.conn.Write(msg); err != nil {
		return fmt.Errorf("pcscd: %w", err)
	}
	return nil
}

func (c *Client) recv(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.conn, b); err != nil {
		return nil, fmt.Errorf("pcscd closed the connection: %w", err)
	}
	return b, nil
}

// Reader is one reader pcscd knows.
type Reader struct {
	Name        string
	CardPresent bool
	ATR         []byte
}

// Readers lists the readers and whether a card is in each.
func (c *Client) Readers() ([]Reader, error) {
	if err := c.send(cmdGetReadersState, nil); err != nil {
		return nil, err
	}
	raw, err := c.recv(maxReaders * readerStateSize)
	if err != nil {
		return nil, err
	}
	return ParseReaderStates(raw)
}

// ParseReaderStates decodes pcscd's array of READER_STATE.
func ParseReaderStates(untrusted []byte) ([]Reader, error) {
	if len(untrusted) != maxReaders*readerStateSize {
		return nil, &ParseError{Field: "reader state list", Err: fmt.Errorf("%d bytes, want %d", len(untrusted), maxReaders*readerStateSize)}
	}
	var out []Reader
	for i := 0; i < maxReaders; i++ {
		rs := untrusted[i*readerStateSize : (i+1)*readerStateSize]
		name := rs[:maxReaderName]
		if name[0] == 0 {
			continue
		}
		end := strings.IndexByte(string(name), 0)
		if end < 0 {
			return nil, &ParseError{Field: "reader name", Err: errors.New("not terminated")}
		}
		state := binary.LittleEndian.Uint32(rs[132:])
		atrLen := binary.LittleEndian.Uint32(rs[176:])
		r := Reader{Name: string(name[:end]), CardPresent: state&stateFlagPresent != 0}
		if atrLen <= maxATRSize {
			r.ATR = append([]byte(nil), rs[140:140+atrLen]...)
		}
		out = append(out, r)
	}
	return out, nil
}

// Card is a connection to the card in one reader; it is a card.Transport.
type Card struct {
	c        *Client
	handle   int32
	protocol uint32
	reader   string
	inTx     bool
}

// Connect opens the card in reader (shared, T=0 or T=1) and begins a
// transaction so no other program interleaves commands until Close.
func (c *Client) Connect(reader string) (*Card, error) {
	if len(reader) >= maxReaderName {
		return nil, fmt.Errorf("reader name longer than %d bytes", maxReaderName-1)
	}
	b := make([]byte, 152)
	binary.LittleEndian.PutUint32(b[0:], c.context)
	copy(b[4:4+maxReaderName], reader)
	binary.LittleEndian.PutUint32(b[132:], shareShared)
	binary.LittleEndian.PutUint32(b[136:], protocolT0|protocolT1)
	resp, err := c.call(cmdConnect, b, 152)
	if err != nil {
		return nil, err
	}
	if rv := binary.LittleEndian.Uint32(resp[148:]); rv != 0 {
		return nil, &Error{Op: "connect to " + reader, Code: rv}
	}
	cd := &Card{c: c, handle: int32(binary.LittleEndian.Uint32(resp[140:])), protocol: binary.LittleEndian.Uint32(resp[144:]), reader: reader}
	bt := make([]byte, 8)
	binary.LittleEndian.PutUint32(bt, uint32(cd.handle))
	resp, err = c.call(cmdBeginTransaction, bt, 8)
	if err != nil {
		return nil, err
	}
	if rv := binary.LittleEndian.Uint32(resp[4:]); rv != 0 {
		cd.disconnect()
		return nil, &Error{Op: "begin transaction", Code: rv}
	}
	cd.inTx = true
	return cd, nil
}

// Reader is the reader's name.
func (cd *Card) Reader() string { return cd.reader }

// Transmit sends one APDU (card.Transport).
func (cd *Card) Transmit(apdu []byte) ([]byte, error) {
	if len(apdu) > maxBufferExt {
		return nil, fmt.Errorf("APDU of %d bytes is longer than pcscd takes", len(apdu))
	}
	b := make([]byte, 32)
	binary.LittleEndian.PutUint32(b[0:], uint32(cd.handle))
	binary.LittleEndian.PutUint32(b[4:], cd.protocol)
	binary.LittleEndian.PutUint32(b[8:], ioRequestSize)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(apdu)))
	binary.LittleEndian.PutUint32(b[16:], cd.protocol)
	binary.LittleEndian.PutUint32(b[20:], ioRequestSize)
	binary.LittleEndian.PutUint32(b[24:], maxBufferExt)
	if err := cd.c.send(cmdTransmit, b); err != nil {
		return nil, err
	}
	if _, err := cd.c.conn.Write(apdu); err != nil {
		return nil, fmt.Errorf("pcscd: %w", err)
	}
	resp, err := cd.c.recv(32)
	if err != nil {
		return nil, err
	}
	n, err := ParseTransmitReply(resp)
	if err != nil {
		return nil, err
	}
	return cd.c.recv(n)
}

// ParseTransmitReply decodes the transmit_struct reply and returns the
// number of response bytes that follow it.
func ParseTransmitReply(untrusted []byte) (int, error) {
	if len(untrusted) != 32 {
		return 0, &ParseError{Field: "transmit reply", Err: fmt.Errorf("%d bytes, want 32", len(untrusted))}
	}
	if rv := binary.LittleEndian.Uint32(untrusted[28:]); rv != 0 {
		return 0, &Error{Op: "transmit", Code: rv}
	}
	n := binary.LittleEndian.Uint32(untrusted[24:])
	if n > maxBufferExt || n < 2 {
		return 0, &ParseError{Field: "transmit reply", Err: fmt.Errorf("response length %d outside 2..%d", n, maxBufferExt)}
	}
	return int(n), nil
}

// ExtendedLength is true: pcscd passes extended APDUs to readers whose
// driver takes them (the card's own capabilities decide whether glint sends
// them).
func (cd *Card) ExtendedLength() bool { return true }

// Close ends the transaction, disconnects (leaving the card powered, as gpg
// expects) and closes the connection to pcscd.
func (cd *Card) Close() error {
	if cd.inTx {
		b := make([]byte, 12)
		binary.LittleEndian.PutUint32(b[0:], uint32(cd.handle))
		binary.LittleEndian.PutUint32(b[4:], leaveCard)
		cd.c.call(cmdEndTransaction, b, 12)
		cd.inTx = false
	}
	cd.disconnect()
	return cd.c.Close()
}

func (cd *Card) disconnect() {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b[0:], uint32(cd.handle))
	binary.LittleEndian.PutUint32(b[4:], leaveCard)
	cd.c.call(cmdDisconnect, b, 12)
}
