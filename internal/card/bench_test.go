package card_test

import (
	"testing"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
)

// BenchmarkGenerate times GENERATE ASYMMETRIC KEY PAIR on the simulator for
// each key type (the card's work only; a token is 10-100x slower):
//
//	go test -run XXX -bench Generate -benchtime 20x ./internal/card/
func BenchmarkGenerate(b *testing.B) {
	for _, alg := range card.Algorithms {
		b.Run(alg.String(), func(b *testing.B) {
			sim, err := cardsim.New(cardsim.Options{})
			if err != nil {
				b.Fatal(err)
			}
			c, err := card.Open(sim.Transport(true))
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Verify(card.PW3, card.DefaultPW3); err != nil {
				b.Fatal(err)
			}
			if err := c.SetAlgorithm(card.SlotSign, alg); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Generate(card.SlotSign); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignManifest is one manifest signature through the whole stack:
// PIN check, PSO:CDS on the simulator, the OpenPGP packet, go-crypto's check.
func BenchmarkSignManifest(b *testing.B) {
	for _, alg := range card.Algorithms {
		b.Run(alg.String(), func(b *testing.B) {
			sim, _ := cardsim.New(cardsim.Options{})
			c, _ := card.Open(sim.Transport(true))
			if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: alg, UserID: "b <b@example.org>", AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)}); err != nil {
				b.Fatal(err)
			}
			s, err := card.NewSigner(c, card.FixedPIN(card.DefaultPW1))
			if err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 4096)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Sign(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
