package tpm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func endorser(t *testing.T, dev tpm.TPM) tpm.Endorser {
	t.Helper()
	e, ok := dev.(tpm.Endorser)
	if !ok {
		t.Fatalf("%s does not implement tpm.Endorser", dev.Version())
	}
	return e
}

func secret(t *testing.T) []byte {
	s := make([]byte, tpm.CredentialSecretSize)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// The whole enrolment proof on a real TPM: the verifier knows only the EK
// (checked against the manufacturer CA) and the AK's public key, encrypts a
// secret with MakeCredential, and the TPM gives it back only for that AK.
func TestCredentialActivation(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			spec, ca := swtpmtest.StartWithEKCert(t, v)
			dev := open(t, spec)
			e := endorser(t, dev)
			ek, err := e.EK()
			if err != nil {
				t.Fatalf("EK: %v", err)
			}
			if ek.Version != v || len(ek.Public) == 0 {
				t.Fatalf("EK = %+v", ek)
			}
			cert, err := ek.ParseCertificate()
			if err != nil {
				t.Fatalf("EK certificate: %v", err)
			}
			roots, inter := []*x509.Certificate{ca.Root}, []*x509.Certificate{ca.Intermediate}
			if err := tpm.VerifyEKCertificate(cert, roots, inter, time.Now()); err != nil {
				t.Fatalf("EK certificate chain: %v", err)
			}
			// Without the intermediate, or against another root, it fails.
			if err := tpm.VerifyEKCertificate(cert, roots, nil, time.Now()); err == nil {
				t.Fatal("EK certificate verified without its intermediate CA")
			}
			if err := tpm.VerifyEKCertificate(cert, roots, inter, cert.NotBefore.Add(-time.Hour)); err == nil {
				t.Fatal("EK certificate verified before its validity period")
			}
			if err := tpm.VerifyEKCertificate(cert, []*x509.Certificate{otherCA(t)}, inter, time.Now()); err == nil {
				t.Fatal("EK certificate verified against an unrelated root")
			}
			fp, err := ek.Fingerprint()
			if err != nil || len(fp) != 64 {
				t.Fatalf("Fingerprint = %q, %v", fp, err)
			}

			ak, err := e.CreateLabeledAK([]byte("https://attest.example"))
			if err != nil {
				t.Fatalf("CreateLabeledAK: %v", err)
			}
			want := secret(t)
			cred, err := tpm.MakeCredential(ek, ak.Public, want, rand.Reader)
			if err != nil {
				t.Fatalf("MakeCredential: %v", err)
			}
			got, err := e.ActivateCredential(ak, cred)
			if err != nil {
				t.Fatalf("ActivateCredential: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("activated %x, want %x", got, want)
			}

			// A credential made for another AK of the same TPM is refused:
			// the TPM binds the secret to the AK's name (2.0) or the
			// AIK's public key digest (1.2).
			other, err := e.CreateLabeledAK([]byte("another server"))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(other.Public, ak.Public) {
				t.Fatal("two labels gave the same AK")
			}
			forOther, err := tpm.MakeCredential(ek, other.Public, want, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			var ce *tpm.CredentialError
			if _, err := e.ActivateCredential(ak, forOther); !errors.As(err, &ce) {
				t.Fatalf("credential for another AK: err = %v, want *CredentialError", err)
			}

			// An altered blob is refused (integrity HMAC on 2.0, GCM on 1.2).
			bad := &tpm.Credential{EKEncrypted: cred.EKEncrypted, Blob: bytes.Clone(cred.Blob)}
			bad.Blob[len(bad.Blob)-1] ^= 1
			if _, err := e.ActivateCredential(ak, bad); err == nil {
				t.Fatal("an altered credential blob activated")
			}

			// The AK survives being stored and read back (TPM 1.2 keeps
			// its only copy of the key this way).
			stored, err := ak.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			back, err := tpm.ParseAK(stored)
			if err != nil {
				t.Fatalf("ParseAK: %v", err)
			}
			cred2, _ := tpm.MakeCredential(ek, back.Public, want, rand.Reader)
			if got, err := e.ActivateCredential(back, cred2); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("ActivateCredential with the stored AK: %x, %v", got, err)
			}
			nonce := []byte("0123456789abcdef0123")
			q, err := dev.Quote(back, map[tpm.Version]tpm.Alg{tpm.Version12: tpm.SHA1, tpm.Version20: tpm.SHA256}[v], []int{0, 7}, nonce)
			if err != nil {
				t.Fatalf("Quote with the stored AK: %v", err)
			}
			if err := tpm.VerifyQuote(back.Public, q, nonce); err != nil {
				t.Fatalf("VerifyQuote: %v", err)
			}
		})
	}
}

// A credential made for one TPM's EK does not open on another TPM, even
// with an AK of the same public key (the swtpm test TPMs share seeds, so
// this TPM is manufactured separately with a fresh EK).
func TestCredentialOtherTPM(t *testing.T) {
	spec, _ := swtpmtest.StartWithEKCert(t, tpm.Version20)
	e1 := endorser(t, open(t, spec))
	ek1, err := e1.EK()
	if err != nil {
		t.Fatal(err)
	}
	e2 := endorser(t, open(t, swtpmtest.Start(t, tpm.Version20)))
	ek2, err := e2.EK()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ek1.Public, ek2.Public) {
		t.Skip("both swtpm templates derived the same EK; cannot tell TPMs apart")
	}
	if ek2.Certificate != nil {
		t.Fatalf("a TPM manufactured without an EK certificate reports one")
	}
	ak2, err := e2.CreateLabeledAK(nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := tpm.MakeCredential(ek1, ak2.Public, secret(t), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var ce *tpm.CredentialError
	if _, err := e2.ActivateCredential(ak2, cred); !errors.As(err, &ce) {
		t.Fatalf("credential for another TPM's EK: err = %v, want *CredentialError", err)
	}
}

func TestCheckAKPublicRefusesAnEK(t *testing.T) {
	e := endorser(t, start20(t))
	ek, err := e.EK()
	if err != nil {
		t.Fatal(err)
	}
	if err := tpm.CheckAKPublic(tpm.Version20, ek.Public); err == nil {
		t.Fatal("an EK (decryption key) was accepted as an attestation key")
	}
	ak, err := e.CreateLabeledAK(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tpm.CheckAKPublic(tpm.Version20, ak.Public); err != nil {
		t.Fatalf("glint's own AK refused: %v", err)
	}
	if _, err := tpm.MakeCredential(ek, ek.Public, secret(t), rand.Reader); err == nil {
		t.Fatal("MakeCredential accepted an EK as the AK")
	}
}

// otherCA is a self-signed CA that signed nothing glint has seen.
func otherCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "unrelated CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// On a TPM glint has taken for its owner (owner and lockout authorisations
// set), the OS, which does not know them, can still enrol: the EK and the
// labelled AKs are the endorsement hierarchy's.
func TestAttestWithoutOwnerAuth(t *testing.T) {
	spec := swtpmtest.Start(t, tpm.Version20)
	owner := open(t, spec)
	auth := tpm.HierarchyAuth{Owner: bytes.Repeat([]byte{1}, 32), Lockout: bytes.Repeat([]byte{2}, 32)}
	if err := owner.SetHierarchyAuth(auth); err != nil {
		t.Fatal(err)
	}
	os := open(t, spec) // a new handle: no UseAuth
	if _, err := os.CreateAK(); err == nil {
		t.Fatal("the owner-hierarchy AK was created without the owner authorisation")
	}
	e := endorser(t, os)
	ek, err := e.EK()
	if err != nil {
		t.Fatal(err)
	}
	ak, err := e.CreateLabeledAK([]byte("https://attest.example"))
	if err != nil {
		t.Fatalf("labelled AK without owner auth: %v", err)
	}
	want := secret(t)
	cred, _ := tpm.MakeCredential(ek, ak.Public, want, rand.Reader)
	if got, err := e.ActivateCredential(ak, cred); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("activate: %v", err)
	}
	nonce := []byte("nonce")
	q, err := os.Quote(ak, tpm.SHA256, []int{0, 1, 2, 3, 4, 5, 6, 7}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if err := tpm.VerifyQuote(ak.Public, q, nonce); err != nil {
		t.Fatal(err)
	}
}
