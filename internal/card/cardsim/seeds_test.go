package cardsim

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/glint-boot/glint/internal/card"
)

var update = flag.Bool("update", false, "rewrite the fuzz seeds in ../testdata")

// TestWriteFuzzSeeds writes (with -update) the simulator's DO 6E (3.4 and 2.1, before and
// after a key is generated) as seeds for card.FuzzParseApplicationData, and
// checks that the parser reads them.
func TestWriteFuzzSeeds(t *testing.T) {
	for _, spec2 := range []bool{false, true} {
		sim, err := New(Options{Spec2: spec2})
		if err != nil {
			t.Fatal(err)
		}
		c, err := card.Open(sim.Transport(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.RSA2048, UserID: "a <a@b>", AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)}); err != nil {
			t.Fatal(err)
		}
		raw, err := c.GetData(0x6E)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := card.ParseApplicationData(raw); err != nil {
			t.Fatal(err)
		}
		if !*update {
			continue
		}
		name := "appdata-sim34.bin"
		if spec2 {
			name = "appdata-sim21.bin"
		}
		if err := os.WriteFile(filepath.Join("..", "testdata", name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
