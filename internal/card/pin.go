package card

import (
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/secret"
)

// PIN lengths of spec 3.4 section 4.3: PW1 at least 6, PW3 at least 8
// characters; the maxima come from DO C4.
const (
	MinPW1Length = 6
	MinPW3Length = 8
)

// Factory PINs of every OpenPGP card (spec 3.4 section 4.3).
var (
	DefaultPW1 = []byte("123456")
	DefaultPW3 = []byte("12345678")
)

// PINStatus reads the PW status bytes (retry counters) afresh.
func (c *Card) PINStatus() (PWStatus, error) {
	raw, err := c.GetData(tagPWStatus)
	if err != nil {
		return PWStatus{}, err
	}
	return ParsePWStatus(raw)
}

// Verify presents a PIN (VERIFY, spec 3.4 section 7.2.2). A wrong PIN is a
// *PINError with the tries left; a blocked one a *BlockedError.
func (c *Card) Verify(pw PW, pin []byte) error {
	if len(pin) == 0 {
		return errors.New("empty PIN")
	}
	_, err := c.transmit(Command{INS: insVerify, P2: byte(pw), Data: pin})
	return c.pinResult(pw, err)
}

// Verified asks the card whether pw is verified in this session (VERIFY
// with no data; spec 3.4 section 7.2.2, cards 3.0 and later). Older cards
// may answer neither 9000 nor 63Cx; then Verified reports false.
func (c *Card) Verified(pw PW) (bool, error) {
	_, err := c.transmit(Command{INS: insVerify, P2: byte(pw)})
	if err == nil {
		return true, nil
	}
	var se *StatusError
	if errors.As(err, &se) {
		return false, nil
	}
	return false, err
}

// pinResult turns a VERIFY-like status into the typed PIN errors.
func (c *Card) pinResult(pw PW, err error) error {
	var se *StatusError
	if !errors.As(err, &se) {
		return err
	}
	switch {
	case se.SW&0xFFF0 == 0x63C0:
		if se.SW&0xF == 0 {
			return &BlockedError{PW: pw}
		}
		return &PINError{PW: pw, Remaining: int(se.SW & 0xF)}
	case se.SW == SWAuthBlocked:
		return &BlockedError{PW: pw}
	case se.SW == SWSecurityStatus:
		// The OpenPGP card answers a wrong PIN with 6982 and no count:
		// read the counter.
		st, err2 := c.PINStatus()
		if err2 != nil {
			return &PINError{PW: pw, Remaining: -1}
		}
		if st.Tries(pw) == 0 {
			return &BlockedError{PW: pw}
		}
		return &PINError{PW: pw, Remaining: st.Tries(pw)}
	case se.SW == SWWrongLength:
		return fmt.Errorf("the card refused the %s's length (%w)", pw, err)
	}
	return err
}

// ChangePIN replaces PW1 or PW3 (CHANGE REFERENCE DATA, spec 3.4 section
// 7.2.3); old is checked like VERIFY and a wrong one costs a try.
func (c *Card) ChangePIN(pw PW, old, new []byte) error {
	if pw == PW1Other {
		pw = PW1Sign
	}
	if err := checkPINLength(pw, new); err != nil {
		return err
	}
	data := make([]byte, 0, len(old)+len(new))
	data = append(data, old...)
	data = append(data, new...)
	defer secret.Wipe(data)
	_, err := c.transmit(Command{INS: insChangeReferenceData, P2: byte(pw), Data: data})
	return c.pinResult(pw, err)
}

// ResetPIN sets a new user PIN and resets its retry counter, with the admin
// PIN verified before (RESET RETRY COUNTER P1=02, spec 3.4 section 7.2.4).
func (c *Card) ResetPIN(newPW1 []byte) error {
	if err := checkPINLength(PW1Sign, newPW1); err != nil {
		return err
	}
	_, err := c.transmit(Command{INS: insResetRetryCounter, P1: 0x02, P2: byte(PW1Sign), Data: newPW1})
	return err
}

// ResetPINWithCode does the same with the reset code (P1=00).
func (c *Card) ResetPINWithCode(resetCode, newPW1 []byte) error {
	if err := checkPINLength(PW1Sign, newPW1); err != nil {
		return err
	}
	data := append(append([]byte(nil), resetCode...), newPW1...)
	defer secret.Wipe(data)
	_, err := c.transmit(Command{INS: insResetRetryCounter, P1: 0x00, P2: byte(PW1Sign), Data: data})
	var se *StatusError
	if errors.As(err, &se) && (se.SW == SWSecurityStatus || se.SW == SWAuthBlocked || se.SW&0xFFF0 == 0x63C0) {
		return fmt.Errorf("the reset code was refused (wrong, blocked or never set): %w", err)
	}
	return err
}

// SetResetCode stores a reset code (PUT DATA D3; admin PIN verified).
func (c *Card) SetResetCode(rc []byte) error {
	if len(rc) != 0 && len(rc) < 8 {
		return errors.New("a reset code has at least 8 characters")
	}
	return c.PutData(tagResettingCode, rc)
}

func checkPINLength(pw PW, pin []byte) error {
	min, max := MinPW1Length, 0
	if pw == PW3 {
		min = MinPW3Length
	}
	if len(pin) < min {
		return fmt.Errorf("a new %s needs at least %d characters", pw, min)
	}
	if c := maxPINLen(pw); c > 0 {
		max = c
	}
	if max > 0 && len(pin) > max {
		return fmt.Errorf("a new %s may have at most %d characters", pw, max)
	}
	return nil
}

// maxPINLen is 127 (the C4 field's 7 bits); the card's own limit is
// checked by the card.
func maxPINLen(PW) int { return 127 }
