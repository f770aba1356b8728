package dongle

import (
	"errors"
	"fmt"
)

// Status is the command status in response byte 6 (firmware
// CMD_STATUS_*; client src/command_id.h enum command_status).
type Status byte

const (
	StatusOK             Status = 0
	StatusWrongCRC       Status = 1
	StatusWrongSlot      Status = 2
	StatusNotProgrammed  Status = 3
	StatusWrongPassword  Status = 4
	StatusNotAuthorized  Status = 5
	StatusTimestamp      Status = 6
	StatusNoName         Status = 7
	StatusNotSupported   Status = 8
	StatusUnknownCommand Status = 9
	StatusAESDecFailed   Status = 10
)

var statusWords = map[Status]string{
	StatusOK:             "ok",
	StatusWrongCRC:       "the dongle received a corrupted request (bad CRC); check the USB connection and try again",
	StatusWrongSlot:      "the dongle has no such OTP slot; its firmware may be too old for HOTP verification",
	StatusNotProgrammed:  "the HOTP slot is not programmed",
	StatusWrongPassword:  "wrong PIN",
	StatusNotAuthorized:  "the dongle refused the temporary admin password (the admin session was lost, perhaps by a replug); try again",
	StatusTimestamp:      "the dongle's clock warning is set",
	StatusNoName:         "the slot needs a name",
	StatusNotSupported:   "the dongle does not support this",
	StatusUnknownCommand: "the dongle does not know this command; update its firmware",
	StatusAESDecFailed:   "the dongle's AES key is not set up; run its 'regenerate' (new AES key) step or a factory reset",
}

func (s Status) String() string {
	if w, ok := statusWords[s]; ok {
		return w
	}
	return fmt.Sprintf("unknown status %d", byte(s))
}

var (
	// ErrNotProgrammed: the dongle's HOTP slot 0x13 holds no secret.
	ErrNotProgrammed = errors.New("the dongle's HOTP slot is not programmed: run glint otp seal --hotp")
	// ErrWrongPIN is what a *WrongPINError matches.
	ErrWrongPIN = errors.New("wrong admin PIN")
	// ErrPINLocked: no admin PIN tries left on the card.
	ErrPINLocked = errors.New("the dongle's admin PIN is locked (0 tries left): unblock it with the OpenPGP card's reset code or factory-reset the card, then program HOTP again")
	// ErrNoAnswer: the dongle never gave a ready, matching answer.
	ErrNoAnswer = errors.New("the dongle did not answer: unplug it, plug it in again and retry")
)

// StatusError is a command the dongle refused.
type StatusError struct {
	Command string
	Status  Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("dongle %s: %v", e.Command, e.Status)
}

// WrongPINError says the admin PIN was wrong and how many tries remain.
// The Nitrokey Pro and Librem Key check the admin PIN on their OpenPGP
// card (it is the card's PW3), so every wrong try here burns a card retry.
type WrongPINError struct {
	TriesLeft int // -1 if the dongle did not say
}

func (e *WrongPINError) Error() string {
	if e.TriesLeft < 0 {
		return "wrong admin PIN (the dongle did not say how many tries are left; a wrong try costs one of the OpenPGP card's admin PIN tries)"
	}
	return fmt.Sprintf("wrong admin PIN: %d tries left on the card (it is the OpenPGP card's admin PIN; at 0 the card locks)", e.TriesLeft)
}

func (e *WrongPINError) Unwrap() error { return ErrWrongPIN }
