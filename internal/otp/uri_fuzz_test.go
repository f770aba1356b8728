package otp

import (
	"reflect"
	"testing"
)

func FuzzParseURI(f *testing.F) {
	// Real samples: what glint writes, what Heads' seal-totp.sh writes,
	// Google's Key Uri Format examples, and what oathtool users paste.
	seeds := []string{
		"otpauth://totp/glint:ThinkPad%20X230%20PF0ABCDE?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=glint",
		"otpauth://hotp/glint:x230?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=glint&counter=0",
		"otpauth://totp/x230?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		"otpauth://totp/TPMTOTP?secret=MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
		"otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
		"otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30",
		"otpauth://totp/a?secret=gezdgnbvgy3tqojq%3D%3D&algorithm=SHA512&digits=8&period=60",
		"otpauth://hotp/a%20b?secret=AEBAGBAF&digits=8&counter=18446744073709551615",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, untrusted string) {
		k, err := ParseURI(untrusted)
		if err != nil {
			return
		}
		uri, err := k.URI()
		if err != nil {
			t.Fatalf("parsed key %+v cannot be written back: %v", k, err)
		}
		k2, err := ParseURI(uri)
		if err != nil {
			t.Fatalf("ParseURI(URI()) failed on %q: %v", uri, err)
		}
		if !reflect.DeepEqual(k, k2) {
			t.Fatalf("round trip changed the key:\n%+v\n%+v", k, k2)
		}
	})
}
