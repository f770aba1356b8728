package card

import (
	"errors"
	"fmt"
)

// ParseError is returned for every malformed response the card (or a reader
// in between) sends: an APDU shorter than its status word, a BER-TLV whose
// length runs past its buffer, a key attribute with an unknown algorithm id.
// Field names what was being read, Offset where in the buffer.
type ParseError struct {
	Format string // "APDU", "TLV", "application data", "public key", ...
	Field  string
	Offset int
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("card: malformed %s: %s at offset %d: %v", e.Format, e.Field, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func parseErrorf(format, field string, off int, msg string, a ...any) error {
	return &ParseError{Format: format, Field: field, Offset: off, Err: fmt.Errorf(msg, a...)}
}

// ErrTruncated is wrapped by a ParseError when a length runs past the data.
var ErrTruncated = errors.New("truncated")

// ErrTooLarge is wrapped by a ParseError when a length exceeds its absolute cap.
var ErrTooLarge = errors.New("larger than the limit")

// StatusError is a card's answer other than 9000 (ISO 7816-4 section 5.6).
type StatusError struct {
	Ins byte   // the command's instruction byte
	SW  uint16 // the status word
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("card refused %s: status %04X (%s)", insName(e.Ins), e.SW, swText(e.SW))
}

// Status words the OpenPGP card application uses (OpenPGP card spec 3.4,
// section 7.5; ISO 7816-4 section 5.6).
const (
	SWOK                 uint16 = 0x9000
	SWTerminated         uint16 = 0x6285 // selected file in termination state
	SWMemoryFailure      uint16 = 0x6581
	SWWrongLength        uint16 = 0x6700
	SWLastCommandInChain uint16 = 0x6883
	SWChainingNotSupp    uint16 = 0x6884
	SWSecurityStatus     uint16 = 0x6982 // PIN not verified, or wrong PIN
	SWAuthBlocked        uint16 = 0x6983 // PIN blocked: retry counter is 0
	SWConditionsOfUse    uint16 = 0x6985
	SWIncorrectData      uint16 = 0x6A80
	SWFileNotFound       uint16 = 0x6A82
	SWDataNotFound       uint16 = 0x6A88
	SWWrongP1P2          uint16 = 0x6B00
	SWINSNotSupported    uint16 = 0x6D00
	SWCLANotSupported    uint16 = 0x6E00
	SWNoDiagnosis        uint16 = 0x6F00
)

func swText(sw uint16) string {
	switch {
	case sw == SWTerminated:
		return "the OpenPGP application is terminated; a factory reset must finish with ACTIVATE FILE"
	case sw == SWMemoryFailure:
		return "memory failure"
	case sw == SWWrongLength:
		return "wrong length"
	case sw == SWLastCommandInChain:
		return "last command of a chain expected"
	case sw == SWChainingNotSupp:
		return "command chaining not supported"
	case sw == SWSecurityStatus:
		return "security status not satisfied: PIN not verified or wrong"
	case sw == SWAuthBlocked:
		return "PIN blocked"
	case sw == SWConditionsOfUse:
		return "conditions of use not satisfied"
	case sw == SWIncorrectData:
		return "incorrect parameters in the data field"
	case sw == SWFileNotFound:
		return "application or file not found"
	case sw == SWDataNotFound:
		return "referenced data not found"
	case sw == SWWrongP1P2:
		return "wrong parameters P1-P2"
	case sw == SWINSNotSupported:
		return "instruction not supported"
	case sw == SWCLANotSupported:
		return "class not supported"
	case sw&0xFFF0 == 0x63C0:
		return fmt.Sprintf("verification failed, %d tries left", sw&0xF)
	case sw>>8 == 0x6C:
		return "wrong Le"
	}
	return "unknown status"
}

func insName(ins byte) string {
	switch ins {
	case insSelect:
		return "SELECT"
	case insGetData:
		return "GET DATA"
	case insVerify:
		return "VERIFY"
	case insChangeReferenceData:
		return "CHANGE REFERENCE DATA"
	case insResetRetryCounter:
		return "RESET RETRY COUNTER"
	case insGenerateAsymmetric:
		return "GENERATE ASYMMETRIC KEY PAIR"
	case insPutData, insPutDataOdd:
		return "PUT DATA"
	case insPSO:
		return "PSO"
	case insGetResponse:
		return "GET RESPONSE"
	case insTerminateDF:
		return "TERMINATE DF"
	case insActivateFile:
		return "ACTIVATE FILE"
	}
	return fmt.Sprintf("INS %02X", ins)
}

// PW names one of the card's passwords (OpenPGP card spec 3.4, section 4.3).
type PW byte

const (
	PW1Sign  PW = 0x81 // user PIN, for PSO:COMPUTE DIGITAL SIGNATURE
	PW1Other PW = 0x82 // user PIN, for decryption and authentication
	PW3      PW = 0x83 // admin PIN
)

func (p PW) String() string {
	switch p {
	case PW1Sign, PW1Other:
		return "user PIN"
	case PW3:
		return "admin PIN"
	}
	return fmt.Sprintf("PW %02X", byte(p))
}

// PINError is a wrong PIN: the card counted a failed try.
type PINError struct {
	PW        PW
	Remaining int // tries left; -1 when the card did not say
}

func (e *PINError) Error() string {
	if e.Remaining < 0 {
		return fmt.Sprintf("wrong %s", e.PW)
	}
	return fmt.Sprintf("wrong %s: %d %s left before it is blocked", e.PW, e.Remaining, plural(e.Remaining, "try", "tries"))
}

// BlockedError is a PIN whose retry counter reached zero.
type BlockedError struct{ PW PW }

func (e *BlockedError) Error() string {
	if e.PW == PW3 {
		return "the admin PIN is blocked after too many wrong tries: the card can only be factory-reset now " +
			"(glint card factory-reset, which erases its keys)"
	}
	return "the user PIN is blocked after too many wrong tries: unblock it with the admin PIN " +
		"(glint card unblock, or gpg --card-edit, admin, passwd, 2) or the reset code; " +
		"the keys on the card are still there"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
