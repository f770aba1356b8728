package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Open connects to the TPM named by spec (see the package doc for the forms)
// and returns the verbs for whichever family answers.
func Open(spec string) (TPM, error) {
	t, err := openTransport(spec)
	if err != nil {
		return nil, err
	}
	dev, err := OpenTransport(&retryTransport{Transport: t})
	if err != nil {
		t.Close()
		if errors.Is(err, ErrNoTPM) {
			return nil, err // already names the device
		}
		return nil, fmt.Errorf("open TPM %s: %w", spec, err)
	}
	return dev, nil
}

func openTransport(spec string) (Transport, error) {
	switch {
	case strings.HasPrefix(spec, "swtpm:tcp:"):
		addr := strings.TrimPrefix(spec, "swtpm:tcp:")
		if !strings.Contains(addr, ":") {
			return nil, fmt.Errorf("TPM spec %q: want swtpm:tcp:HOST:PORT", spec)
		}
		return &socketTransport{network: "tcp", addr: addr}, nil
	case strings.HasPrefix(spec, "swtpm:unix:"):
		path := strings.TrimPrefix(spec, "swtpm:unix:")
		if path == "" {
			return nil, fmt.Errorf("TPM spec %q: want swtpm:unix:PATH", spec)
		}
		return &socketTransport{network: "unix", addr: path}, nil
	case strings.HasPrefix(spec, "/"):
		return openDevice(spec)
	}
	return nil, fmt.Errorf("TPM spec %q not understood: use a device path (/dev/tpmrm0, /dev/tpm0), swtpm:tcp:HOST:PORT or swtpm:unix:PATH", spec)
}

// Command tags: TPM 2.0 Part 2, 6.9 (TPM_ST_NO_SESSIONS) and TPM 1.2 Main
// Part 2, 6 (TPM_TAG_RQU_COMMAND / TPM_TAG_RSP_COMMAND).
const (
	tagNoSessions20 = 0x8001
	tagSessions20   = 0x8002
	tagRsp12        = 0x00C4
)

// OpenTransport detects the TPM family behind t and returns its verbs. A TPM
// that has not seen a Startup (swtpm without startup flags, some early-boot
// raw devices) is started with Startup(CLEAR).
func OpenTransport(t Transport) (TPM, error) {
	// TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES, TPM_PT_MANUFACTURER, 1).
	// A TPM 1.2 answers any TPM 2.0 tag with its own response tag and
	// TPM_BADTAG (TPM 1.2 Main Part 2, 16), which is how the family shows.
	probe := []byte{0x80, 0x01, 0, 0, 0, 22, 0, 0, 0x01, 0x7A, 0, 0, 0, 6, 0, 0, 0x01, 0x05, 0, 0, 0, 1}
	rsp, err := t.Send(probe)
	if err != nil {
		return nil, err
	}
	tag := binary.BigEndian.Uint16(rsp[0:2])
	code := binary.BigEndian.Uint32(rsp[6:10])
	switch tag {
	case tagNoSessions20, tagSessions20:
		if code == rcInitialize {
			// TPM2_Startup(TPM_SU_CLEAR): Part 3, 9.3.
			rsp, err := t.Send([]byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0})
			if err != nil {
				return nil, err
			}
			if c := binary.BigEndian.Uint32(rsp[6:10]); c != 0 {
				return nil, wrap20("TPM2_Startup", rcError(c))
			}
		} else if code != 0 {
			return nil, wrap20("TPM2_GetCapability", rcError(code))
		}
		return &tpm20{t: t}, nil
	case tagRsp12:
		return open12(t)
	}
	return nil, errors.New("the device answered with an unknown response tag: neither TPM 1.2 nor TPM 2.0")
}
