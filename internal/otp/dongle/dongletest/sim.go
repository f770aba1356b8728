// Package dongletest is a Nitrokey Pro simulator for tests: it speaks the
// HID Feature report protocol the way the firmware does (Nitrokey
// nitrokey-pro-firmware src/keyboard/report_protocol.c and src/hotp/hotp.c,
// as summarised in glint's protocol notes), so the dongle client, and
// commands built on it, can be tested without hardware.
//
// It is written from the protocol description, not from the client, so a
// misunderstanding in one is not silently mirrored in the other; the CRC
// is shared because its test vectors pin it.
//
// What it cannot show: the LED (green or red after VERIFY), the OpenPGP
// card behind FIRST_AUTHENTICATE (it keeps the admin PIN and its retry
// counter itself), touch or button presses, USB timing and the real
// firmware's busy periods (it is busy for a fixed number of polls), flash
// wear, and what happens on replug (temporary passwords are lost then).
package dongletest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
)

const (
	reportSize   = 64
	crcLen       = 60
	secretLen    = 40 // firmware SECRET_LENGTH
	nameLen      = 15 // firmware OTP_slot.name
	hotpSlots    = 4  // firmware NUMBER_OF_HOTP_SLOTS: 0x10..0x13
	verifySlot   = 3  // firmware cmd_verify_code: HOTP_VERIFY_SLOT_NO
	lookAhead    = 10
	maxPINTries  = 3
	factoryAdmin = "12345678"
)

// Command and status numbers, from the protocol notes.
const (
	cGetStatus       = 0x00
	cWriteToSlot     = 0x01
	cFirstAuth       = 0x07
	cAdminRetries    = 0x09
	cUserRetries     = 0x0F
	cSendOTPData     = 0x17
	cVerifyOTPCode   = 0x18
	sOK              = 0
	sWrongCRC        = 1
	sWrongSlot       = 2
	sNotProgrammed   = 3
	sWrongPassword   = 4
	sNotAuthorized   = 5
	sNoName          = 7
	sUnknownCommand  = 9
	devReady         = 0
	devBusy          = 1
	offsetNoMatch    = 0xFE
	tempPasswordSize = 25
)

type slot struct {
	programmed bool
	secret     [secretLen]byte
	name       [nameLen]byte
	counter    uint64
	config     byte
}

// Sim is a simulated Nitrokey Pro. It is safe for concurrent use. Set the
// exported fields before use; New gives factory defaults.
type Sim struct {
	mu sync.Mutex

	AdminPIN     string
	AdminRetries int
	UserRetries  int
	FwMajor      byte
	FwMinor      byte
	CardSerial   uint32
	// BusyPolls is how many GET_REPORTs after each request answer "busy"
	// before the real answer, to exercise the client's polling.
	BusyPolls int

	// Fault injection, each for the next answer only: things a healthy
	// dongle does not do but a USB line or a confused device might.
	CorruptNextAnswer bool // flip a byte after the CRC was computed
	StaleNextAnswer   bool // answer with the CRC of an earlier request

	slots [hotpSlots]slot

	tempPassword    [tempPasswordSize]byte
	tempPasswordSet bool
	transaction     bool
	staged          slot

	answer    [reportSize]byte
	busyLeft  int
	lastCRC   uint32
	closed    bool
	requests  []byte // command bytes in order
	tempsSeen [][tempPasswordSize]byte
}

// New returns a simulator in factory state: admin PIN 12345678, three tries
// each, firmware v0.15, empty slots, busy for one poll after each request.
func New() *Sim {
	return &Sim{AdminPIN: factoryAdmin, AdminRetries: maxPINTries, UserRetries: maxPINTries,
		FwMajor: 0, FwMinor: 15, CardSerial: 0x000a1b2c, BusyPolls: 1}
}

var errClosed = errors.New("dongletest: device closed")

// SetFeature receives a request in hidraw form (report ID 0, then 64 bytes).
func (s *Sim) SetFeature(buf []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if len(buf) != 1+reportSize || buf[0] != 0 {
		return fmt.Errorf("dongletest: SET_FEATURE wants report ID 0 and %d bytes, got %d bytes", reportSize, len(buf))
	}
	var req [reportSize]byte
	copy(req[:], buf[1:])
	s.handle(req)
	s.busyLeft = s.BusyPolls
	return nil
}

// GetFeature returns the answer to the last request, after BusyPolls
// "busy" answers.
func (s *Sim) GetFeature(buf []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	if len(buf) < 1+reportSize || buf[0] != 0 {
		return 0, fmt.Errorf("dongletest: GET_FEATURE wants report ID 0 and room for %d bytes", reportSize)
	}
	out := s.answer
	if s.busyLeft > 0 {
		s.busyLeft--
		out[0] = devBusy // the CRC stays that of the ready answer, so it no longer matches
	} else {
		switch {
		case s.CorruptNextAnswer:
			s.CorruptNextAnswer = false
			out[10] ^= 0x40
		case s.StaleNextAnswer:
			s.StaleNextAnswer = false
			binary.LittleEndian.PutUint32(out[2:], s.lastCRC^1)
			binary.LittleEndian.PutUint32(out[crcLen:], dongle.CRC(out[:crcLen]))
		}
	}
	copy(buf[1:], out[:])
	return 1 + reportSize, nil
}

// Close makes later calls fail, like an unplugged device.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *Sim) handle(req [reportSize]byte) {
	var out [reportSize]byte
	cmd := req[0]
	s.requests = append(s.requests, cmd)
	crc := dongle.CRC(req[:crcLen])
	out[1] = cmd
	binary.LittleEndian.PutUint32(out[2:], crc)
	s.lastCRC = crc
	status := byte(sOK)
	payload := out[7:crcLen]
	if crc != binary.LittleEndian.Uint32(req[crcLen:]) {
		status = sWrongCRC
	} else {
		status = s.dispatch(cmd, req[1:crcLen], payload)
	}
	out[6] = status
	out[0] = devReady
	binary.LittleEndian.PutUint32(out[crcLen:], dongle.CRC(out[:crcLen]))
	s.answer = out
}

func (s *Sim) validTemp(p []byte) bool {
	return s.tempPasswordSet && bytes.Equal(p[:tempPasswordSize], s.tempPassword[:])
}

func (s *Sim) dispatch(cmd byte, in, out []byte) byte {
	switch cmd {
	case cGetStatus:
		out[0], out[1] = s.FwMinor, s.FwMajor
		binary.LittleEndian.PutUint32(out[2:], s.CardSerial)
		return sOK
	case cAdminRetries:
		out[0] = byte(s.AdminRetries)
		return sOK
	case cUserRetries:
		out[0] = byte(s.UserRetries)
		return sOK
	case cFirstAuth:
		// The firmware drops the previous admin session first, then asks
		// the card; the PIN is a C string in 25 bytes.
		s.tempPasswordSet = false
		pin := in[:25]
		if i := bytes.IndexByte(pin, 0); i >= 0 {
			pin = pin[:i]
		}
		if s.AdminRetries == 0 {
			return sWrongPassword
		}
		if string(pin) != s.AdminPIN {
			s.AdminRetries--
			return sWrongPassword
		}
		s.AdminRetries = maxPINTries
		copy(s.tempPassword[:], in[25:50])
		s.tempPasswordSet = true
		s.tempsSeen = append(s.tempsSeen, s.tempPassword)
		return sOK
	case cSendOTPData:
		if !s.validTemp(in) {
			return sNotAuthorized
		}
		if !s.transaction {
			s.staged = slot{}
		}
		s.transaction = true
		kind, id, data := in[25], int(in[26]), in[27:57]
		switch kind {
		case 'N':
			copy(s.staged.name[:], data)
			copy(out, s.staged.name[:])
		case 'S':
			off := id * len(data)
			if off > secretLen {
				off = 0
			}
			copy(s.staged.secret[off:], data)
			copy(out, s.staged.secret[:]) // the firmware echoes the secret
		}
		return sOK
	case cWriteToSlot:
		if !s.validTemp(in) || !s.transaction {
			return sNotAuthorized
		}
		s.transaction = false
		slotNo := in[25]
		if s.staged.name[0] == 0 {
			return sNoName
		}
		if slotNo < 0x10 || slotNo >= 0x10+hotpSlots {
			return sWrongSlot // TOTP slots exist on the device but not here
		}
		st := s.staged
		st.counter = binary.LittleEndian.Uint64(in[26:34])
		st.config = in[34]
		st.programmed = true
		s.slots[slotNo&0x0F] = st
		return sOK
	case cVerifyOTPCode:
		sl := &s.slots[verifySlot]
		if !sl.programmed {
			return sNotProgrammed
		}
		code := binary.LittleEndian.Uint32(in[:4])
		digits := 6
		if sl.config&1 != 0 {
			digits = 8
		}
		for k := uint64(0); k < lookAhead; k++ {
			// The firmware computes with the whole zero-padded 40-byte slot.
			want, err := otp.HOTP(otp.SHA1, sl.secret[:], sl.counter+k, digits)
			if err == nil && want == code {
				sl.counter += k + 1
				out[0], out[1] = 1, byte(k)
				return sOK
			}
		}
		out[0], out[1] = 0, offsetNoMatch
		return sOK
	}
	return sUnknownCommand
}

// SlotCounter returns the HOTP slot's counter and whether it is programmed.
func (s *Sim) SlotCounter() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slots[verifySlot].counter, s.slots[verifySlot].programmed
}

// SlotName returns the verification slot's name, NULs trimmed.
func (s *Sim) SlotName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(bytes.TrimRight(s.slots[verifySlot].name[:], "\x00"))
}

// SlotSecret returns the verification slot's 40-byte secret.
func (s *Sim) SlotSecret() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.slots[verifySlot].secret[:])
}

// Requests returns the command bytes received, in order.
func (s *Sim) Requests() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.requests)
}

// TemporaryPasswords returns every temporary admin password a successful
// FIRST_AUTHENTICATE carried.
func (s *Sim) TemporaryPasswords() [][tempPasswordSize]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][tempPasswordSize]byte(nil), s.tempsSeen...)
}
