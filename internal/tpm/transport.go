package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// TPM 2.0 Part 2 (TPM_PT_MAX_RESPONSE_SIZE) and the TPM 1.2 TIS both keep a
// response within 4096 bytes on PC Client parts (PC Client PTP 1.05, 6.5.4.2);
// the Linux driver's buffer is 4096 too. A larger claimed size is a broken or
// hostile peer, so the socket reader refuses anything past this cap.
const maxResponseSize = 4096

// headerSize is tag(2) + size(4) + code(4), the same in TPM 1.2 and 2.0.
const headerSize = 10

// deviceTransport talks to /dev/tpm0 or /dev/tpmrm0: one write of the whole
// command, one read of the whole response (the kernel driver's contract).
type deviceTransport struct {
	mu sync.Mutex
	f  *os.File
}

func openDevice(path string) (*deviceTransport, error) {
	f, err := openBlocking(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: the device does not exist (is the TPM enabled in firmware and the tpm_tis/tpm_crb driver loaded?)", ErrNoTPM, path)
		}
		return nil, fmt.Errorf("%w at %s: %v", ErrNoTPM, path, err)
	}
	return &deviceTransport{f: f}, nil
}

func (d *deviceTransport) Send(cmd []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.f.Write(cmd); err != nil {
		return nil, fmt.Errorf("write to %s: %w", d.f.Name(), err)
	}
	buf := make([]byte, maxResponseSize)
	n, err := d.f.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("read from %s: %w (no response to the command)", d.f.Name(), err)
	}
	return checkResponse(buf[:n])
}

func (d *deviceTransport) Close() error { return d.f.Close() }

// socketTransport talks to swtpm's raw command channel (--server type=tcp or
// type=unixio). It connects once per command: swtpm serves one client at a
// time, so a connection held open would lock out every other process (e.g.
// tpm2-tools or a second glint) for as long as this handle lives.
type socketTransport struct {
	mu      sync.Mutex
	network string
	addr    string
}

// socketTimeout bounds one command; the slowest swtpm command (RSA-2048
// primary) takes well under a second.
const socketTimeout = 60 * time.Second

func (s *socketTransport) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := net.DialTimeout(s.network, s.addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w at swtpm:%s:%s: %v", ErrNoTPM, s.network, s.addr, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(socketTimeout)); err != nil {
		return nil, err
	}
	if _, err := c.Write(cmd); err != nil {
		return nil, fmt.Errorf("send to swtpm at %s: %w", s.addr, err)
	}
	return readResponse(c)
}

func (s *socketTransport) Close() error { return nil }

// readResponse reads one response whose length is given by its own header.
func readResponse(r io.Reader) ([]byte, error) {
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("read TPM response header: %w", err)
	}
	claimedSize := binary.BigEndian.Uint32(hdr[2:6])
	if claimedSize < headerSize || claimedSize > maxResponseSize {
		return nil, fmt.Errorf("TPM response claims %d bytes, outside %d..%d: not a TPM or a broken one", claimedSize, headerSize, maxResponseSize)
	}
	rsp := make([]byte, claimedSize)
	copy(rsp, hdr)
	if _, err := io.ReadFull(r, rsp[headerSize:]); err != nil {
		return nil, fmt.Errorf("read TPM response body (%d bytes): %w", claimedSize, err)
	}
	return rsp, nil
}

// checkResponse makes sure a response read in one piece is as long as its
// header says.
func checkResponse(rsp []byte) ([]byte, error) {
	if len(rsp) < headerSize {
		return nil, fmt.Errorf("TPM response is %d bytes, shorter than a header", len(rsp))
	}
	if claimed := binary.BigEndian.Uint32(rsp[2:6]); int64(claimed) != int64(len(rsp)) {
		return nil, fmt.Errorf("TPM response header claims %d bytes but %d arrived", claimed, len(rsp))
	}
	return rsp, nil
}

// rwAdapter lets the legacy TPM 1.2 package (which wants an io.ReadWriter)
// use a Transport: Write sends the command, Read hands back the response.
type rwAdapter struct {
	t   Transport
	rsp []byte
}

func (a *rwAdapter) Write(p []byte) (int, error) {
	rsp, err := a.t.Send(p)
	if err != nil {
		return 0, err
	}
	a.rsp = rsp
	return len(p), nil
}

func (a *rwAdapter) Read(p []byte) (int, error) {
	if a.rsp == nil {
		return 0, io.EOF
	}
	n := copy(p, a.rsp)
	a.rsp = a.rsp[n:]
	if len(a.rsp) == 0 {
		a.rsp = nil
	}
	return n, nil
}

// retryTransport resends a command the TPM answered with "retry": TPM 2.0
// TPM_RC_RETRY / TPM_RC_YIELDED / TPM_RC_TESTING (Part 2, 6.6.3) and TPM 1.2
// TPM_RETRY (Main Part 2, 16). The TPM did not start the command, so the
// identical bytes (same session nonces) are valid again. libtpms answers
// TPM_RC_RETRY to the first failed DA-protected authorisation after an
// orderly start while it moves its lockout state into NV.
type retryTransport struct{ Transport }

func (r *retryTransport) Send(cmd []byte) ([]byte, error) {
	delay := time.Millisecond
	for attempt := 0; ; attempt++ {
		rsp, err := r.Transport.Send(cmd)
		if err != nil {
			return nil, err
		}
		switch binary.BigEndian.Uint32(rsp[6:10]) {
		case 0x922, 0x908, 0x90A, 0x800:
			if attempt < 10 {
				time.Sleep(delay)
				delay *= 2
				continue
			}
		}
		return rsp, nil
	}
}
