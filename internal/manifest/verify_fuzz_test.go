package manifest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// FuzzCheckSignature feeds hostile signatures and manifests to the
// signature check: no panic, and every failure is a *TamperError (bad or
// unknown signature) or a *ParseError (owner-signed but malformed, which a
// fuzzer cannot produce without the key, so only seeds reach it).
func FuzzCheckSignature(f *testing.F) {
	owner, err := openpgp.NewEntity("Owner", "", "owner@example.org", nil)
	if err != nil {
		f.Fatal(err)
	}
	keyring := openpgp.EntityList{owner}
	text := []byte(sampleManifest)
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, owner, bytes.NewReader(text), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(text, sig.Bytes())
	f.Add(text, sig.Bytes()[:sig.Len()/2])
	f.Add([]byte("x"), sig.Bytes())
	f.Add(text, []byte("-----BEGIN PGP SIGNATURE-----\n\nwsBc\n=AAAA\n-----END PGP SIGNATURE-----\n"))
	f.Add(text, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Fuzz(func(t *testing.T, text, sig []byte) {
		res, err := CheckSignature(text, sig, keyring)
		if err == nil {
			if res == nil || res.Manifest == nil {
				t.Fatal("nil result without error")
			}
			return
		}
		var te *TamperError
		var pe *ParseError
		if !errors.As(err, &te) && !errors.As(err, &pe) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
	})
}
