package card

import (
	"errors"
	"fmt"
)

// FactoryReset erases the OpenPGP application: every key, the PINs (back to
// 123456 / 12345678), the cardholder data (spec 3.4 section 7.2.16-7.2.17).
// TERMINATE DF is refused until the admin PIN is verified or blocked; when
// adminPIN is nil, FactoryReset blocks both PINs with wrong tries first,
// as gpg's factory-reset does, so a card whose admin PIN is lost can be
// reused. Cards without the life-cycle commands (most 2.0 cards) answer
// 6D00: then only the vendor's tools can reset them.
func (c *Card) FactoryReset(adminPIN []byte) error {
	if adminPIN != nil {
		if err := c.Verify(PW3, adminPIN); err != nil {
			return err
		}
	} else {
		if err := c.block(PW1Sign); err != nil {
			return err
		}
		if err := c.block(PW3); err != nil {
			return err
		}
	}
	if _, err := c.transmit(Command{INS: insTerminateDF}); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.SW == SWINSNotSupported {
			return fmt.Errorf("this card cannot be factory-reset by glint (no TERMINATE DF): %w", err)
		}
		return fmt.Errorf("terminate the OpenPGP application: %w", err)
	}
	return c.activate()
}

// activate finishes a factory reset (ACTIVATE FILE) and selects the fresh
// application. It also recovers a card left terminated by an interrupted reset.
func (c *Card) activate() error {
	if _, err := c.transmit(Command{INS: insActivateFile}); err != nil {
		return fmt.Errorf("activate the OpenPGP application after the reset: %w", err)
	}
	if err := c.selectApp(); err != nil {
		return err
	}
	return c.Refresh()
}

// block burns pw's retry counter with a PIN no card accepts (eight 0x40;
// gpg uses the same).
func (c *Card) block(pw PW) error {
	wrong := []byte{0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40}
	for i := 0; i < 16; i++ {
		err := c.Verify(pw, wrong)
		var be *BlockedError
		var pe *PINError
		switch {
		case errors.As(err, &be):
			return nil
		case errors.As(err, &pe):
			continue
		case err == nil:
			return fmt.Errorf("the card accepted a nonsense %s", pw)
		default:
			return err
		}
	}
	return fmt.Errorf("the %s did not block after 16 wrong tries", pw)
}

// ErrTerminated is returned by Open for a card left in termination state
// (an interrupted factory reset): Reactivate finishes the reset.
var ErrTerminated = errors.New("the card's OpenPGP application is terminated (an interrupted factory reset); finish it with glint card factory-reset")

// Reactivate finishes an interrupted factory reset on a terminated card.
func Reactivate(t Transport) (*Card, error) {
	c := &Card{t: t}
	// A terminated application answers SELECT with 6285 and is selected.
	if err := c.selectApp(); err != nil && !errors.Is(err, ErrTerminated) {
		return nil, err
	}
	if err := c.activate(); err != nil {
		return nil, err
	}
	return c, nil
}
