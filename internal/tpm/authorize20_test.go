package tpm_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// approvalKeys are the kinds of approval key the design allows: NIST P-256
// (a dedicated approval key, or a P-256 card key) and RSA-2048 (a card
// key), RSA signing PKCS#1 v1.5 (what an OpenPGP card's PSO:CDS makes) or
// PSS.
func approvalKeys(t testing.TB) map[string]struct {
	key crypto.Signer
	pss bool
} {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]struct {
		key crypto.Signer
		pss bool
	}{
		"ECDSA-P256":   {ec, false},
		"RSA-2048":     {rk, false},
		"RSA-2048-PSS": {rk, true},
	}
}

var totpRef = []byte("glint-totp")

// A firmware update the owner approved: the secret sealed once unseals
// before the update with the first approval and after it with the second,
// and never with a stale approval or an unapproved state.
func TestSealAuthorizedSurvivesApprovedUpdate20(t *testing.T) {
	for name, k := range approvalKeys(t) {
		t.Run(name, func(t *testing.T) {
			dev := start20(t)
			auth := dev.(tpm.Authorizer)
			pcrs := []int{0, 2, 4, 7}
			secret := []byte("JBSWY3DPEHPK3PXP-totp-secret")
			now := currentPolicy(t, dev, tpm.SHA256, pcrs...)
			// Sealed at set-up to the state it is in: no private key needed.
			blob, err := auth.SealAuthorized(secret, k.key.Public(), totpRef, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := auth.UnsealAuthorized(blob, nil, nil); err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("sealed-to state without an approval: %q %v", got, err)
			}
			a1, err := tpm.SignApproval(now, totpRef, k.key, k.pss)
			if err != nil {
				t.Fatal(err)
			}
			got, err := auth.UnsealAuthorized(blob, a1, nil)
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("approved current state: %q %v", got, err)
			}

			// The owner approves the PCR 2 a new firmware will produce,
			// before it runs (predicted).
			next := tpm.PCRPolicy{Bank: tpm.SHA256, Values: map[int][]byte{}}
			for p, v := range now.Values {
				next.Values[p] = v
			}
			next.Values[2] = extendSim(tpm.SHA256, now.Values[2], []byte("new coreboot payload"))
			a2, err := tpm.SignApproval(next, totpRef, k.key, k.pss)
			if err != nil {
				t.Fatal(err)
			}
			// Not yet in that state: the TPM refuses (PolicyAuthorize).
			var pe *tpm.PolicyError
			if _, err := auth.UnsealAuthorized(blob, a2, nil); !errors.As(err, &pe) {
				t.Fatalf("approval for a state not reached: %v", err)
			}
			// "Boot the new firmware."
			if err := dev.Extend(2, []byte("new coreboot payload")); err != nil {
				t.Fatal(err)
			}
			// The stale approval, or none, no longer opens it: the TPM's guard.
			if _, err := auth.UnsealAuthorized(blob, a1, nil); !errors.As(err, &pe) {
				t.Fatalf("stale approval after the update: %v", err)
			}
			if _, err := auth.UnsealAuthorized(blob, nil, nil); !errors.As(err, &pe) {
				t.Fatalf("no approval after the update: %v", err)
			}
			got, err = auth.UnsealAuthorized(blob, a2, nil)
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("after the approved update: %q %v", got, err)
			}
			// An unapproved change (tampering) is refused.
			if err := dev.Extend(7, []byte("evil config")); err != nil {
				t.Fatal(err)
			}
			if _, err := auth.UnsealAuthorized(blob, a2, nil); !errors.As(err, &pe) {
				t.Fatalf("unapproved change: %v", err)
			}
		})
	}
}

func TestUnsealAuthorizedRefusals20(t *testing.T) {
	dev := start20(t)
	auth := dev.(tpm.Authorizer)
	keys := approvalKeys(t)
	owner, other := keys["ECDSA-P256"].key, keys["RSA-2048"].key
	pcrs := []int{0, 7}
	now := currentPolicy(t, dev, tpm.SHA256, pcrs...)
	blob, err := auth.SealAuthorized([]byte("disk key"), owner.Public(), []byte("glint-disk"), now, nil)
	if err != nil {
		t.Fatal(err)
	}
	byOther, _ := tpm.SignApproval(now, []byte("glint-disk"), other, false)
	forTOTP, _ := tpm.SignApproval(now, totpRef, owner, false)
	fewer, _ := tpm.SignApproval(currentPolicy(t, dev, tpm.SHA256, 7), []byte("glint-disk"), owner, false)
	damaged, _ := tpm.SignApproval(now, []byte("glint-disk"), owner, false)
	damaged.Signature = bytes.Clone(damaged.Signature)
	damaged.Signature[len(damaged.Signature)-3] ^= 1
	lied, _ := tpm.SignApproval(now, []byte("glint-disk"), owner, false)
	lied.Policy = currentPolicy(t, dev, tpm.SHA256, pcrs...)
	lied.Policy.Values[0] = bytes.Repeat([]byte{1}, 32) // values other than the signed ones
	for name, tc := range map[string]struct {
		a    *tpm.Approval
		says string
	}{
		"signed by another key":         {byOther, "a key other than the approval key"},
		"approval for another purpose":  {forTOTP, `approval for "glint-totp"`},
		"approval over fewer PCRs":      {fewer, "approves sha256 PCRs 7, this secret needs sha256 PCRs 0,7"},
		"damaged signature":             {damaged, "does not verify"},
		"values other than signed ones": {lied, "does not verify"},
	} {
		if _, err := auth.UnsealAuthorized(blob, tc.a, nil); !errors.Is(err, tpm.ErrApproval) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v", name, err)
		}
	}
	good, _ := tpm.SignApproval(now, []byte("glint-disk"), owner, false)
	if got, err := auth.UnsealAuthorized(blob, good, nil); err != nil || string(got) != "disk key" {
		t.Fatalf("good approval: %q %v", got, err)
	}
}

func TestSealAuthorizedWithPIN20(t *testing.T) {
	dev := start20(t)
	auth := dev.(tpm.Authorizer)
	key := approvalKeys(t)["ECDSA-P256"].key
	blob, err := auth.SealAuthorized([]byte("s"), key.Public(), totpRef, currentPolicy(t, dev, tpm.SHA256, 7), []byte("1234"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := auth.UnsealAuthorized(blob, nil, []byte("1234")); err != nil || string(got) != "s" {
		t.Fatalf("sealed-to state, right PIN: %q %v", got, err)
	}
	a, _ := tpm.SignApproval(currentPolicy(t, dev, tpm.SHA256, 7), totpRef, key, false)
	if _, err := auth.UnsealAuthorized(blob, a, []byte("9999")); !errors.Is(err, tpm.ErrAuthFail) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if got, err := auth.UnsealAuthorized(blob, a, []byte("1234")); err != nil || string(got) != "s" {
		t.Fatalf("right PIN: %q %v", got, err)
	}
}

// The approval and the blob are stored on disk; what is read back works.
func TestApprovalRoundTrip20(t *testing.T) {
	dev := start20(t)
	auth := dev.(tpm.Authorizer)
	for name, k := range approvalKeys(t) {
		blob, err := auth.SealAuthorized([]byte("s"), k.key.Public(), totpRef, currentPolicy(t, dev, tpm.SHA256, 0, 7), nil)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := tpm.SignApproval(currentPolicy(t, dev, tpm.SHA256, 0, 7), totpRef, k.key, k.pss)
		raw, err := a.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := tpm.ParseApproval(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := back.Check(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := auth.UnsealAuthorized(blob, back, nil); err != nil || string(got) != "s" {
			t.Fatalf("%s: %q %v", name, got, err)
		}
	}
}
