package otp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestURIBuild(t *testing.T) {
	k := Key{Type: TypeTOTP, Issuer: "glint", Account: "ThinkPad X230 PF0ABCDE", Secret: rfc4226Secret}
	got, err := k.URI()
	if err != nil {
		t.Fatal(err)
	}
	want := "otpauth://totp/glint:ThinkPad%20X230%20PF0ABCDE?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=glint"
	if got != want {
		t.Errorf("URI()\n got %s\nwant %s", got, want)
	}

	h := Key{Type: TypeHOTP, Issuer: "glint & co/é", Account: "a b?c#d%e+f", Secret: []byte{1, 2, 3, 4, 5}, Digits: 8, Counter: 42}
	got, err = h.URI()
	if err != nil {
		t.Fatal(err)
	}
	want = "otpauth://hotp/glint%20%26%20co%2F%C3%A9:a%20b%3Fc%23d%25e%2Bf?secret=AEBAGBAF&issuer=glint%20%26%20co%2F%C3%A9&digits=8&counter=42"
	if got != want {
		t.Errorf("URI()\n got %s\nwant %s", got, want)
	}
	back, err := ParseURI(got)
	if err != nil {
		t.Fatal(err)
	}
	if back.Issuer != h.Issuer || back.Account != h.Account || back.Counter != 42 || back.Digits != 8 {
		t.Errorf("round trip lost fields: %+v", back)
	}

	s := Key{Type: TypeTOTP, Account: "host", Secret: rfc4226Secret, Algorithm: SHA512, Digits: 8, Period: 60 * time.Second}
	got, err = s.URI()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "&algorithm=SHA512&digits=8&period=60") || strings.Contains(got, "issuer") {
		t.Errorf("non-default parameters: %s", got)
	}
}

func TestURIBuildRejects(t *testing.T) {
	base := Key{Type: TypeTOTP, Issuer: "glint", Account: "m", Secret: rfc4226Secret}
	cases := map[string]func(*Key){
		"colon in account":   func(k *Key) { k.Account = "a:b" },
		"colon in issuer":    func(k *Key) { k.Issuer = "a:b" },
		"empty account":      func(k *Key) { k.Account = "" },
		"newline in account": func(k *Key) { k.Account = "a\nb" },
		"invalid UTF-8":      func(k *Key) { k.Account = "\xff" },
		"leading space":      func(k *Key) { k.Account = " a" },
		"no secret":          func(k *Key) { k.Secret = nil },
		"9 digits":           func(k *Key) { k.Digits = 9 },
		"HOTP with SHA256":   func(k *Key) { k.Type, k.Algorithm = TypeHOTP, SHA256 },
		"no type":            func(k *Key) { k.Type = 0 },
		"half-second period": func(k *Key) { k.Period = 1500 * time.Millisecond },
	}
	for name, mutate := range cases {
		k := base
		mutate(&k)
		if _, err := k.URI(); err == nil {
			t.Errorf("%s: URI() accepted %+v", name, k)
		}
	}
}

func TestParseURI(t *testing.T) {
	// Heads' seal-totp.sh form: no issuer, host name as the label.
	k, err := ParseURI("otpauth://totp/x230?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	if err != nil {
		t.Fatal(err)
	}
	want := Key{Type: TypeTOTP, Account: "x230", Secret: rfc4226Secret, Algorithm: SHA1, Digits: 6, Period: 30 * time.Second}
	if !reflect.DeepEqual(k, want) {
		t.Errorf("got %+v\nwant %+v", k, want)
	}
	// Google's documented example, with lower-case base32, padding, "+"
	// for a space, an encoded colon and a space after it.
	k, err = ParseURI("OTPAUTH://TOTP/ACME+Co%3A%20john.doe@email.com?secret=hxdmvjecjjwsrb3hwizr4ifugftmxboz%3D%3D%3D&issuer=ACME+Co&algorithm=sha1&digits=6&period=30&image=x")
	if err == nil {
		t.Errorf("label %q with '+' in the path is a literal plus; issuer mismatch should be refused, got %+v", "ACME+Co", k)
	}
	k, err = ParseURI("otpauth://totp/ACME%20Co:%20john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME+Co&algorithm=SHA1&digits=6&period=30&image=x")
	if err != nil {
		t.Fatal(err)
	}
	if k.Issuer != "ACME Co" || k.Account != "john.doe@email.com" || len(k.Secret) != 20 {
		t.Errorf("got %+v", k)
	}
}

func TestParseURIRejects(t *testing.T) {
	const sec = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	cases := map[string]string{
		"http scheme":         "http://totp/a?secret=" + sec,
		"unknown type":        "otpauth://motp/a?secret=" + sec,
		"no query":            "otpauth://totp/a",
		"no secret":           "otpauth://totp/a?issuer=x",
		"bad base32":          "otpauth://totp/a?secret=GEZ1",
		"empty secret":        "otpauth://totp/a?secret=",
		"duplicate secret":    "otpauth://totp/a?secret=" + sec + "&secret=" + sec,
		"issuer mismatch":     "otpauth://totp/x:a?secret=" + sec + "&issuer=y",
		"hotp no counter":     "otpauth://hotp/a?secret=" + sec,
		"counter overflow":    "otpauth://hotp/a?secret=" + sec + "&counter=18446744073709551616",
		"digits 10":           "otpauth://totp/a?secret=" + sec + "&digits=10",
		"period 0":            "otpauth://totp/a?secret=" + sec + "&period=0",
		"period two days":     "otpauth://totp/a?secret=" + sec + "&period=172800",
		"algorithm md5":       "otpauth://totp/a?secret=" + sec + "&algorithm=MD5",
		"bad escape":          "otpauth://totp/a%zz?secret=" + sec,
		"truncated escape":    "otpauth://totp/a%2?secret=" + sec,
		"empty account":       "otpauth://totp/glint:?secret=" + sec,
		"control in account":  "otpauth://totp/a%0Ab?secret=" + sec,
		"two colons":          "otpauth://totp/a:b:c?secret=" + sec,
		"secret too long":     "otpauth://totp/a?secret=" + strings.Repeat("A", 300),
		"URI too long":        "otpauth://totp/a?secret=" + sec + "&x=" + strings.Repeat("A", MaxURILen),
		"hotp with SHA256":    "otpauth://hotp/a?secret=" + sec + "&counter=1&algorithm=SHA256",
		"too many parameters": "otpauth://totp/a?secret=" + sec + strings.Repeat("&x=1", 40),
	}
	for name, uri := range cases {
		_, err := ParseURI(uri)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: ParseURI(%q) = %v, want a *ParseError", name, uri, err)
		}
	}
}

func TestMachineAccount(t *testing.T) {
	cases := []struct{ host, product, serial, want string }{
		{"x230", "2325AB1", "PF0ABCDE", "2325AB1 PF0ABCDE"},
		{"x230", "To Be Filled By O.E.M.", "To Be Filled By O.E.M.", "x230"},
		{"x230", "KGPE-D16", "Default string", "KGPE-D16"},
		{"", " ", "", "this machine"},
		{"localhost", "", "", "this machine"},
		{"h", "Vendor:Model\tX", "", "Vendor-Model X"},
		{"h", strings.Repeat("é", 40), "", strings.Repeat("é", 32)},
	}
	for _, c := range cases {
		got := MachineAccount(c.host, c.product, c.serial)
		if got != c.want {
			t.Errorf("MachineAccount(%q, %q, %q) = %q, want %q", c.host, c.product, c.serial, got, c.want)
		}
		k := Key{Type: TypeTOTP, Issuer: "glint", Account: got, Secret: rfc4226Secret}
		if err := k.Validate(); err != nil {
			t.Errorf("MachineAccount result %q is not a valid label: %v", got, err)
		}
	}
	sys := fstest.MapFS{
		"class/dmi/id/product_name":   {Data: []byte("ThinkPad X230\n")},
		"class/dmi/id/product_serial": {Data: []byte("PF0ABCDE\n")},
	}
	p, s := ReadDMI(sys)
	if p != "ThinkPad X230" || s != "PF0ABCDE" {
		t.Errorf("ReadDMI = %q, %q", p, s)
	}
	if p, s := ReadDMI(fstest.MapFS{}); p != "" || s != "" {
		t.Errorf("ReadDMI on empty sysfs = %q, %q", p, s)
	}
}
