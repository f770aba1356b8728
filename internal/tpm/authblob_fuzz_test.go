package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

func seedPolicy() PCRPolicy {
	return PCRPolicy{Bank: SHA256, Values: map[int][]byte{0: make([]byte, 32), 2: bytes.Repeat([]byte{0xab}, 32), 7: bytes.Repeat([]byte{7}, 32)}}
}

// FuzzParseApproval: approvals are read from /boot, which anyone with the
// disk can write. Seeded with real signed approvals (P-256, RSA-2048
// PKCS#1 and PSS); asserts no panic and parse(marshal(parse(x))) == parse(x).
func FuzzParseApproval(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, a := range []func() (*Approval, error){
		func() (*Approval, error) { return SignApproval(seedPolicy(), []byte("glint-totp"), ec, false) },
		func() (*Approval, error) { return SignApproval(seedPolicy(), []byte("glint-disk"), rk, false) },
		func() (*Approval, error) { return SignApproval(seedPolicy(), nil, rk, true) },
		func() (*Approval, error) {
			p := seedPolicy()
			p.Epoch = &Epoch{Index: 0x0180474f, Name: append([]byte{0, 0x0b}, bytes.Repeat([]byte{0xe}, 32)...), Value: 1 << 40}
			return SignApproval(p, []byte("glint-totp"), ec, false)
		},
	} {
		ap, err := a()
		if err != nil {
			f.Fatal(err)
		}
		raw, err := ap.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		a, err := ParseApproval(untrusted)
		if err != nil {
			return
		}
		raw, err := a.Marshal()
		if err != nil {
			t.Fatalf("a parsed approval does not marshal: %v", err)
		}
		b, err := ParseApproval(raw)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		raw2, _ := b.Marshal()
		if !bytes.Equal(raw, raw2) {
			t.Fatal("round trip changed the approval")
		}
		a.Check()
	})
}

// FuzzParseAuthorizedBlob: authorized sealed blobs live on /boot too.
// Seeded with encodings of real field sizes; asserts no panic and a
// byte-exact round trip.
func FuzzParseAuthorizedBlob(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	name, _ := ApprovalKeyName(ec.Public())
	for _, b := range []*authorizedBlob{
		{Bank: SHA256, PCRs: []int{0, 1, 2, 3, 4, 7}, KeyName: name, PolicyRef: []byte("glint-totp"), PCRBranch: make([]byte, 32), Parts: [][]byte{make([]byte, 78), make([]byte, 126)}},
		{Bank: SHA1, PIN: true, PCRs: []int{7}, KeyName: name, PCRBranch: bytes.Repeat([]byte{9}, 32), Parts: [][]byte{{1}, {2}}},
		{Bank: SHA256, PCRs: []int{0, 1, 2, 3, 4, 7}, KeyName: name, PolicyRef: []byte("glint-totp+epoch"), PCRBranch: make([]byte, 32),
			Epoch: &Epoch{Index: 0x0180474f, Name: append([]byte{0, 0x0b}, bytes.Repeat([]byte{0xe}, 32)...), Value: 7}, Parts: [][]byte{make([]byte, 78), make([]byte, 126)}},
	} {
		raw, err := b.marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		b, err := parseAuthorizedBlob(untrusted)
		if err != nil {
			return
		}
		raw, err := b.marshal()
		if err != nil {
			t.Fatalf("a parsed blob does not marshal: %v", err)
		}
		if !bytes.Equal(raw, untrusted) {
			t.Fatal("round trip changed the blob")
		}
	})
}
