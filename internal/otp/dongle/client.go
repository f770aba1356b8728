package dongle

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/glint-boot/glint/internal/secret"
)

// Device carries HID Feature reports to a dongle. Buffers are in hidraw
// form: byte 0 is the report ID (0 for these dongles), then the report.
// GetFeature fills buf (whose byte 0 the caller sets to the report ID) and
// returns how many bytes it wrote, report ID included. The Linux hidraw
// device (OpenHidraw) and the simulator (package dongletest) implement it,
// so the client code that runs in tests is the code that runs on hardware.
type Device interface {
	SetFeature(buf []byte) error
	GetFeature(buf []byte) (int, error)
	Close() error
}

const (
	// HOTPSlot is the Nitrokey Pro's HOTP slot 3 as the firmware numbers
	// it (0x10 + 3). It is the only slot VERIFY_OTP_CODE checks
	// (firmware cmd_verify_code, HOTP_VERIFY_SLOT_NO), so glint uses it
	// like Heads' hotp_verification.
	HOTPSlot = 0x13
	// SlotName is the slot's label, as Heads' tool writes it, so a dongle
	// programmed by either shows the same in the Nitrokey app.
	SlotName = "HEADS Validation"
	// MaxSecretLen is the slot's secret size (firmware SECRET_LENGTH).
	MaxSecretLen = 40
	// LookAhead is how many counters VERIFY_OTP_CODE tries: c .. c+9
	// (firmware validate_code_from_hotp_slot, calculate_ahead_values).
	LookAhead = 10

	pinFieldLen        = 25 // FirstAuthenticate.card_password
	tempPasswordLen    = 25 // FirstAuthenticate.temporary_password
	otpDataChunk       = 30 // SendOTPData.data
	tokenIDLen         = 13 // WriteToOTPSlot.slot_token_id
	offsetNotFound     = 0xFE
	configUse8Digits   = 1 << 0
	defaultFirstDelay  = 200 * time.Millisecond
	defaultPollDelay   = 100 * time.Millisecond
	defaultPolls       = 40
	storageStatusStart = 22 // GET_DEVICE_STATUS: StatusResponsePayloadStorage at payload+22
)

// Client speaks the Nitrokey Pro / Storage / Librem Key report protocol.
// The zero value of every field but Dev is a sensible default.
type Client struct {
	Dev Device
	// Sleep waits between sending a request and polling its answer; nil
	// means time.Sleep. Tests pass a function that does not wait.
	Sleep func(time.Duration)
	// Rand supplies temporary admin passwords; nil means crypto/rand.
	Rand io.Reader
	// FirstDelay, PollDelay and Polls shape the wait for an answer: the
	// reference client waits 200 ms (the Storage returns empty reports
	// sooner), then polls. Zero means 200 ms, 100 ms and 40.
	FirstDelay, PollDelay time.Duration
	Polls                 int
	// Digits is the HOTP code length Program configures: 6 (default) or 8.
	Digits int
}

func (c *Client) sleep(d time.Duration) {
	if c.Sleep != nil {
		c.Sleep(d)
		return
	}
	time.Sleep(d)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// transact sends one request and returns the matching answer. It accepts
// an answer only if it is ready, its own CRC is valid and it echoes our
// request's CRC, as the reference client does (src/device.c
// device_receive): a stale answer to an earlier request never passes.
func (c *Client) transact(cmd command, payload []byte) (Response, error) {
	req, err := newRequest(cmd, payload)
	if err != nil {
		return Response{}, err
	}
	var buf [HIDBufferSize]byte
	copy(buf[1:], req[:])
	defer secret.Wipe(buf[:]) // requests may carry a PIN or the secret
	defer secret.Wipe(req[:])
	if err := c.Dev.SetFeature(buf[:]); err != nil {
		return Response{}, fmt.Errorf("dongle %v: send: %w", cmd, err)
	}
	c.sleep(orDefault(c.FirstDelay, defaultFirstDelay))
	polls := orDefault(c.Polls, defaultPolls)
	var last Response
	for i := 0; i < polls; i++ {
		if i > 0 {
			c.sleep(orDefault(c.PollDelay, defaultPollDelay))
		}
		secret.Wipe(buf[:])
		n, err := c.Dev.GetFeature(buf[:])
		if err != nil {
			return Response{}, fmt.Errorf("dongle %v: receive: %w", cmd, err)
		}
		if n != HIDBufferSize {
			continue // the Storage sometimes returns a short, empty report
		}
		r, err := ParseResponse(buf[1:])
		if err != nil {
			continue
		}
		last = r
		if r.DeviceStatus != deviceReady || !r.CRCValid || r.RequestCRC != req.crc() {
			continue
		}
		if r.Command != byte(cmd) {
			return Response{}, fmt.Errorf("dongle %v: the answer is for %v", cmd, command(r.Command))
		}
		return r, nil
	}
	why := "no ready answer"
	switch {
	case last.DeviceStatus == deviceBusy || last.DeviceStatus == deviceReceivedReport:
		why = "still busy"
	case last.DeviceStatus == deviceError:
		why = "the dongle reports an internal error"
	case last.CRCValid && last.RequestCRC != req.crc():
		why = "answers did not match the request"
	}
	return Response{}, fmt.Errorf("dongle %v: %s after %d polls: %w", cmd, why, polls, ErrNoAnswer)
}

// Info is what a dongle says about itself.
type Info struct {
	FirmwareMajor, FirmwareMinor int
	// CardSerial is the OpenPGP card's serial number, as the Nitrokey app
	// and Heads' "hotp_verification info" show it.
	CardSerial uint32
	// AdminRetries and UserRetries are the OpenPGP card's remaining PIN
	// tries (PW3 and PW1). Show AdminRetries before asking for the PIN.
	AdminRetries, UserRetries int
}

// Firmware is the version as Nitrokey writes it: "v0.15".
func (i Info) Firmware() string { return fmt.Sprintf("v%d.%d", i.FirmwareMajor, i.FirmwareMinor) }

// Info reads the firmware version, card serial and PIN retry counters.
func (c *Client) Info() (Info, error) {
	var info Info
	r, err := c.transact(cmdGetAdminRetryCount, nil)
	if err != nil {
		return info, err
	}
	info.AdminRetries = int(r.Payload[0])
	if r, err = c.transact(cmdGetUserRetryCount, nil); err != nil {
		return info, err
	}
	info.UserRetries = int(r.Payload[0])
	if r, err = c.transact(cmdGetStatus, nil); err != nil {
		return info, err
	}
	// GET_STATUS payload: firmware minor, major, card serial (u32 LE), 5
	// config bytes (firmware cmd_get_status).
	info.FirmwareMinor, info.FirmwareMajor = int(r.Payload[0]), int(r.Payload[1])
	info.CardSerial = binary.LittleEndian.Uint32(r.Payload[2:6])
	if info.FirmwareMinor == 1 {
		// The Storage answers GET_STATUS with a placeholder version; its
		// real version and card serial are in GET_DEVICE_STATUS (the
		// reference client's device_get_status does the same).
		if r, err = c.transact(cmdGetDeviceStatus, nil); err != nil {
			return info, err
		}
		s := r.Payload[storageStatusStart:]
		info.FirmwareMajor, info.FirmwareMinor = int(s[4]), int(s[5])
		info.CardSerial = binary.LittleEndian.Uint32(s[20:24])
	}
	return info, nil
}

// AdminTries returns how many admin PIN tries the card has left, and
// ErrPINLocked when none: call it before asking the owner for the PIN, so
// "no PIN tries left" is said before anyone types one.
func (c *Client) AdminTries() (int, error) {
	r, err := c.transact(cmdGetAdminRetryCount, nil)
	if err != nil {
		return 0, err
	}
	if r.Payload[0] == 0 {
		return 0, ErrPINLocked
	}
	return int(r.Payload[0]), nil
}

// AdminSession is a successful admin login (FIRST_AUTHENTICATE): the
// dongle accepts slot writes with its temporary password until it is
// unplugged. Login checks the PIN before anything is written, so a caller
// can check it, then program the dongle, and only then replace the secret
// it keeps elsewhere (glint otp seal --hotp): a mistyped PIN changes
// nothing anywhere.
type AdminSession struct {
	c    *Client
	temp [tempPasswordLen]byte
}

// Close forgets the temporary password.
func (s *AdminSession) Close() { secret.Wipe(s.temp[:]) }

// Login authenticates with the admin PIN. It checks the tries left first
// and refuses to try when none are (ErrPINLocked); a wrong PIN is a
// *WrongPINError with the tries left.
func (c *Client) Login(adminPIN []byte) (*AdminSession, error) {
	if len(adminPIN) == 0 || len(adminPIN) > pinFieldLen || bytes.IndexByte(adminPIN, 0) >= 0 {
		return nil, fmt.Errorf("the admin PIN must be 1 to %d characters without NUL", pinFieldLen)
	}
	if _, err := c.AdminTries(); err != nil {
		return nil, err
	}
	s := &AdminSession{c: c}
	if err := c.login(adminPIN, &s.temp); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Program writes secret into the HOTP slot with its counter set to counter
// (the next counter glint will use), after authenticating with the admin
// PIN (Login, then AdminSession.Program). The dongle forgets any earlier
// secret in the slot.
func (c *Client) Program(adminPIN, secret []byte, counter uint64) error {
	if err := c.checkProgram(secret); err != nil {
		return err
	}
	s, err := c.Login(adminPIN)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Program(secret, counter)
}

func (c *Client) checkProgram(secret []byte) error {
	if len(secret) == 0 || len(secret) > MaxSecretLen {
		return fmt.Errorf("HOTP secret is %d bytes; the dongle's slot holds 1 to %d", len(secret), MaxSecretLen)
	}
	if digits := orDefault(c.Digits, 6); digits != 6 && digits != 8 {
		return fmt.Errorf("the dongle computes 6- or 8-digit codes, not %d", digits)
	}
	return nil
}

// login runs FIRST_AUTHENTICATE with a fresh random temporary password.
func (c *Client) login(adminPIN []byte, temp *[tempPasswordLen]byte) error {
	// A fresh random temporary password: the firmware keeps it as proof
	// of the admin login for the following commands. The reference tool
	// sends zeros (device_clear_buffers wipes it), which any other program
	// on the machine could replay until the dongle is unplugged.
	rnd := c.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, temp[:]); err != nil {
		return fmt.Errorf("temporary admin password: %w", err)
	}

	var auth [pinFieldLen + tempPasswordLen]byte
	defer secret.Wipe(auth[:])
	copy(auth[:pinFieldLen], adminPIN)
	copy(auth[pinFieldLen:], temp[:])
	r, err := c.transact(cmdFirstAuthenticate, auth[:])
	if err != nil {
		return err
	}
	secret.Wipe(r.Payload[:])
	switch r.Status {
	case StatusOK:
	case StatusWrongPassword:
		left := -1
		if rr, err := c.transact(cmdGetAdminRetryCount, nil); err == nil {
			left = int(rr.Payload[0])
		}
		if left == 0 {
			return fmt.Errorf("%w: %w", &WrongPINError{TriesLeft: 0}, ErrPINLocked)
		}
		return &WrongPINError{TriesLeft: left}
	default:
		return &StatusError{Command: cmdFirstAuthenticate.String(), Status: r.Status}
	}
	return nil
}

// Program writes hotpSecret and counter into the HOTP slot with this login.
func (s *AdminSession) Program(hotpSecret []byte, counter uint64) error {
	c, temp := s.c, s.temp
	defer secret.Wipe(temp[:])
	if err := c.checkProgram(hotpSecret); err != nil {
		return err
	}
	digits := orDefault(c.Digits, 6)

	// SEND_OTP_DATA: temporary password, type, id, 30 data bytes. 'S'
	// chunks land at id*30 in the slot's 40-byte secret; the firmware
	// zero-pads, which HMAC-SHA-1 does for keys shorter than its 64-byte
	// block anyway (RFC 2104 section 2), so the codes are those of hotpSecret.
	send := func(kind byte, id int, data []byte) error {
		var p [tempPasswordLen + 2 + otpDataChunk]byte
		defer secret.Wipe(p[:])
		copy(p[:], temp[:])
		p[tempPasswordLen] = kind
		p[tempPasswordLen+1] = byte(id)
		copy(p[tempPasswordLen+2:], data)
		r, err := c.transact(cmdSendOTPData, p[:])
		secret.Wipe(r.Payload[:]) // the firmware echoes the slot's secret here
		if err != nil {
			return err
		}
		if r.Status != StatusOK {
			return &StatusError{Command: cmdSendOTPData.String(), Status: r.Status}
		}
		return nil
	}
	for id := 0; id*otpDataChunk < len(hotpSecret); id++ {
		end := min((id+1)*otpDataChunk, len(hotpSecret))
		if err := send('S', id, hotpSecret[id*otpDataChunk:end]); err != nil {
			return err
		}
	}
	if err := send('N', 0, []byte(SlotName)); err != nil {
		return err
	}

	// WRITE_TO_SLOT: temporary password, slot, counter (u64 LE), config,
	// token ID. This commits what SEND_OTP_DATA staged.
	var w [tempPasswordLen + 1 + 8 + 1 + tokenIDLen]byte
	defer secret.Wipe(w[:])
	copy(w[:], temp[:])
	w[tempPasswordLen] = HOTPSlot
	binary.LittleEndian.PutUint64(w[tempPasswordLen+1:], counter)
	if digits == 8 {
		w[tempPasswordLen+9] = configUse8Digits
	}
	r, err := c.transact(cmdWriteToSlot, w[:])
	if err != nil {
		return err
	}
	if r.Status != StatusOK {
		return &StatusError{Command: cmdWriteToSlot.String(), Status: r.Status}
	}
	return nil
}

// Verification is the dongle's verdict on a code.
type Verification struct {
	Valid bool
	// Offset is how far ahead of its own counter the dongle found the
	// code (0..9) when Valid: that many codes were computed since the
	// dongle's last good check and never shown to it (someone else used
	// the secret, or boots ran without the dongle). Pass it to
	// otp.CheckVerifyOffset.
	Offset int
	// OffsetKnown: the protocol tells the offset. The Nitrokey Pro,
	// Storage and Librem Key do (VERIFY_OTP_CODE payload byte 1). The
	// Nitrokey 3's Secrets App answers VerifyCode with pass or fail only
	// (trussed-secrets-app verify_code: 9000 or 6300), so on it skipped
	// codes cannot be counted, only the verdict shown.
	OffsetKnown bool
}

// String is the verdict in words, as the boot screen shows it: a plain
// "VALID" only when the dongle saw every code glint computed.
func (v Verification) String() string {
	switch {
	case !v.Valid:
		return "INVALID: the dongle's LED is red"
	case !v.OffsetKnown:
		return "VALID: the dongle's LED is green (this dongle cannot tell whether codes were skipped)"
	case v.Offset == 1:
		return "VALID, but 1 code was skipped since the dongle's last check: a code was computed that the dongle never saw"
	case v.Offset > 1:
		return fmt.Sprintf("VALID, but %d codes were skipped since the dongle's last check: codes were computed that the dongle never saw", v.Offset)
	}
	return "VALID: the dongle's LED is green"
}

// Verify asks the dongle to check an HOTP code. The dongle looks at its
// counters c..c+9; a match at c+k moves its counter to c+k+1 and lights
// the LED green, a miss changes nothing and lights it red.
func (c *Client) Verify(code uint32) (Verification, error) {
	var p [4]byte
	binary.LittleEndian.PutUint32(p[:], code)
	r, err := c.transact(cmdVerifyOTPCode, p[:])
	if err != nil {
		return Verification{}, err
	}
	switch r.Status {
	case StatusOK:
	case StatusNotProgrammed:
		return Verification{}, ErrNotProgrammed
	default:
		return Verification{}, &StatusError{Command: cmdVerifyOTPCode.String(), Status: r.Status}
	}
	valid, off := r.Payload[0], r.Payload[1]
	switch {
	case valid == 1 && off < LookAhead:
		return Verification{Valid: true, Offset: int(off), OffsetKnown: true}, nil
	case valid == 0:
		return Verification{OffsetKnown: true}, nil
	}
	return Verification{}, fmt.Errorf("dongle VERIFY_OTP_CODE: answer makes no sense (valid=%d, offset=%d)", valid, off)
}

// Program writes secret and counter into dev's HOTP slot (see Client.Program).
func Program(dev Device, adminPIN, secret []byte, counter uint64) error {
	return (&Client{Dev: dev}).Program(adminPIN, secret, counter)
}

// Verify asks dev to check an HOTP code (see Client.Verify).
//
// It drops the look-ahead offset, so skipped codes would show as a plain
// "valid": the boot screen uses Client.Verify and Verification.String.
func Verify(dev Device, code uint32) (ok bool, err error) {
	v, err := (&Client{Dev: dev}).Verify(code)
	return v.Valid, err
}

// GetInfo reads dev's firmware version, card serial and PIN retries.
func GetInfo(dev Device) (Info, error) {
	return (&Client{Dev: dev}).Info()
}
