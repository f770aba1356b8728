package approval

import (
	"bytes"
	"testing"
)

// FuzzParseSigVal: gpg-agent's (and a card's) answer to PKSIGN. Seeded
// with the RSA and ECDSA shapes libgcrypt prints; asserts no panic and
// signature sizes within the key's.
func FuzzParseSigVal(f *testing.F) {
	f.Add(append(append([]byte("(7:sig-val(5:ecdsa(1:r32:"), bytes.Repeat([]byte{1}, 32)...), append([]byte(")(1:s32:"), append(bytes.Repeat([]byte{2}, 32), []byte(")))")...)...)...))
	f.Add(append(append([]byte("(7:sig-val(3:rsa(1:s256:"), bytes.Repeat([]byte{3}, 256)...), []byte(")))")...))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		_, sig, err := parseSigVal(untrusted, 256)
		if err == nil && (len(sig) == 0 || len(sig) > 256) {
			t.Fatalf("signature of %d bytes", len(sig))
		}
		assuanData(untrusted)
	})
}
