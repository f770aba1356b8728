package pcsc_test

import (
	"bytes"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/card/cardsim/pcscdtest"
	"github.com/glint-boot/glint/internal/card/pcsc"
)

// The whole chain a workstation uses: glint's pure-Go client -> a real
// pcscd -> vsmartcard's vpcd driver -> the simulated card.
func TestThroughPCSCD(t *testing.T) {
	sim, err := cardsim.New(cardsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := pcscdtest.Start(t, sim)
	client, err := pcsc.Dial(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	readers, err := client.Readers()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("readers: %+v", readers)
	tr, err := client.Connect(d.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := card.Open(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, pub, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.RSA2048, UserID: "Owner <o@example.org>", AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := card.NewSigner(c, card.FixedPIN(card.DefaultPW1))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(el, bytes.NewReader([]byte("hello")), bytes.NewReader(sig), nil); err != nil {
		t.Fatal(err)
	}
}
