package flash

import (
	"bytes"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// goSigner signs in process with a fresh OpenPGP key (go-crypto), so the
// fuzz seeds are real signed bundles without a gpg home.
type goSigner struct{ e *openpgp.Entity }

func (g goSigner) Sign(m []byte) ([]byte, error) {
	var b bytes.Buffer
	err := openpgp.ArmoredDetachSign(&b, g.e, bytes.NewReader(m), &packet.Config{})
	return b.Bytes(), err
}
func (g goSigner) String() string { return "go key" }

// FuzzParseBundle: a bundle arrives from a download or a USB stick.
// Seeded with real signed bundles; asserts no panic, the caps, and that a
// parsed bundle's header re-encodes to the bytes it was parsed from.
func FuzzParseBundle(f *testing.F) {
	e, err := openpgp.NewEntity("Publisher", "", "p@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		f.Fatal(err)
	}
	for _, img := range [][]byte{{0xff}, bytes.Repeat([]byte{0x5a}, 3000)} {
		raw, err := BuildBundle(img, "Emulation QEMU x86 q35/ich9", "seed", goSigner{e})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	keys := openpgp.EntityList{e}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		b, err := ParseBundle(untrusted)
		if err != nil {
			return
		}
		if len(b.Image) == 0 || len(b.Image) > MaxChipSize || len(b.Signature) > maxBundleSig || len(b.Board) > maxBundleLabel {
			t.Fatalf("caps: %d %d %d", len(b.Image), len(b.Signature), len(b.Board))
		}
		if !bytes.Equal(untrusted[:len(b.header)], b.header) || len(b.header)+len(b.Image)+2+len(b.Signature) != len(untrusted) {
			t.Fatal("parts do not add up to the input")
		}
		b.Verify(keys)
	})
}
