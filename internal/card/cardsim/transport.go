package cardsim

import (
	"errors"
	"io/fs"
)

// Transport returns an in-process card.Transport to this card. ext says
// whether it passes extended APDUs.
func (c *Card) Transport(ext bool) *Transport { return &Transport{c: c, ext: ext} }

// Transport is the simulator as a card.Transport (no reader in between).
type Transport struct {
	c   *Card
	ext bool
	// Sent counts APDUs, for tests that check chaining and GET RESPONSE.
	Sent int
}

func (t *Transport) Transmit(apdu []byte) ([]byte, error) {
	t.Sent++
	return t.c.Process(apdu), nil
}

func (t *Transport) ExtendedLength() bool { return t.ext }

func (t *Transport) Close() error { return nil }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
