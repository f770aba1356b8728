package card_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
)

func newSim(t testing.TB, opts cardsim.Options) (*cardsim.Card, *card.Card) {
	t.Helper()
	sim, err := cardsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := card.Open(sim.Transport(!opts.NoExtendedLength))
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

const uid = "Glint Owner <owner@example.org>"

// keyAndSign generates an owner key of type alg on a fresh simulated card,
// exports it, signs a message and checks both with go-crypto.
func TestGenerateExportSign(t *testing.T) {
	for _, alg := range card.Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			if testing.Short() && alg.RSABits == 4096 {
				t.Skip("RSA-4096 generation is slow")
			}
			sim, c := newSim(t, cardsim.Options{})
			start := time.Now()
			k, pub, err := c.GenerateOwnerKey(card.GenerateOptions{
				Algorithm: alg, UserID: uid, AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: generate on the simulator %v, whole owner-key flow %v", alg, sim.LastGenerate().Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
			if err != nil {
				t.Fatal(err)
			}
			if len(el) != 1 || !bytes.Equal(el[0].PrimaryKey.Fingerprint, k.Fingerprint()) {
				t.Fatalf("exported key is not the card key")
			}
			if _, ok := el[0].Identities[uid]; !ok {
				t.Fatalf("user ID missing: %v", el[0].Identities)
			}
			if !bytes.Equal(c.App().Keys[card.SlotSign].Fingerprint[:], k.Fingerprint()) {
				t.Fatal("fingerprint not recorded on the card")
			}
			// A new session (the card's key read back, as on the next boot).
			c2, err := card.Open(sim.Transport(true))
			if err != nil {
				t.Fatal(err)
			}
			s, err := card.NewSigner(c2, card.FixedPIN(card.DefaultPW1))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			msg := []byte("glint manifest v1\nsha256 ... vmlinuz\n")
			for i := 0; i < 2; i++ { // the second signature reuses the kept PIN
				sig, err := s.Sign(msg)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := openpgp.CheckArmoredDetachedSignature(el, bytes.NewReader(msg), bytes.NewReader(sig), nil); err != nil {
					t.Fatalf("signature %d does not verify: %v", i, err)
				}
				if _, err := openpgp.CheckArmoredDetachedSignature(el, bytes.NewReader(append(msg, 'x')), bytes.NewReader(sig), nil); err == nil {
					t.Fatal("signature verifies over a changed message")
				}
			}
			if got := sim.State().SigCount; got != 3 { // self-signature + 2
				t.Errorf("signature counter %d, want 3", got)
			}
		})
	}
}

func TestWrongPINAndBlocked(t *testing.T) {
	sim, c := newSim(t, cardsim.Options{})
	if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.NISTP256, UserID: uid, AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)}); err != nil {
		t.Fatal(err)
	}
	var asked []card.PINRequest
	prompt := func(r card.PINRequest) ([]byte, error) {
		asked = append(asked, r)
		if len(asked) == 1 {
			return []byte("999999"), nil
		}
		return []byte("123456"), nil
	}
	s, err := card.NewSigner(c, prompt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || asked[0].Tries != 3 || asked[0].Retry || asked[1].Tries != 2 || !asked[1].Retry {
		t.Fatalf("prompts: %+v", asked)
	}
	if !strings.Contains(asked[1].Prompt(), "2 tries left") || !strings.Contains(asked[1].Prompt(), "Wrong PIN") {
		t.Errorf("prompt text %q", asked[1].Prompt())
	}
	if st := sim.State(); st.PW1Tries != 3 {
		t.Errorf("a good PIN did not reset the counter: %d", st.PW1Tries)
	}
	// Three wrong PINs block it; the error explains what to do.
	for i := 3; i >= 1; i-- {
		err := c.Verify(card.PW1Sign, []byte("000000"))
		var pe *card.PINError
		var be *card.BlockedError
		if i > 1 && (!errors.As(err, &pe) || pe.Remaining != i-1) {
			t.Fatalf("try %d: %v", i, err)
		}
		if i == 1 && !errors.As(err, &be) {
			t.Fatalf("last try: %v", err)
		}
	}
	s2, _ := card.NewSigner(c, card.FixedPIN(card.DefaultPW1))
	_, err = s2.Sign([]byte("x"))
	var be *card.BlockedError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "admin PIN") {
		t.Fatalf("blocked PIN: %v", err)
	}
	// The admin PIN unblocks it.
	if err := c.Verify(card.PW3, card.DefaultPW3); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetPIN([]byte("654321")); err != nil {
		t.Fatal(err)
	}
	s3, _ := card.NewSigner(c, card.FixedPIN([]byte("654321")))
	if _, err := s3.Sign([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestFixedPINTriesOnce(t *testing.T) {
	sim, c := newSim(t, cardsim.Options{})
	if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.Ed25519, UserID: uid, AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)}); err != nil {
		t.Fatal(err)
	}
	s, _ := card.NewSigner(c, card.FixedPIN([]byte("111111")))
	if _, err := s.Sign([]byte("x")); err == nil {
		t.Fatal("signed with a wrong PIN")
	}
	if got := sim.State().PW1Tries; got != 2 {
		t.Fatalf("a PIN from a file burnt %d tries, want 1", 3-got)
	}
}

func TestChangePINAndResetCode(t *testing.T) {
	_, c := newSim(t, cardsim.Options{})
	if err := c.ChangePIN(card.PW1Sign, card.DefaultPW1, []byte("24681357")); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangePIN(card.PW1Sign, card.DefaultPW1, []byte("11112222")); err == nil {
		t.Fatal("old PIN accepted after the change")
	}
	if err := c.ChangePIN(card.PW1Sign, []byte("24681357"), []byte("123")); err == nil {
		t.Fatal("3-character PIN accepted")
	}
	if err := c.ChangePIN(card.PW3, card.DefaultPW3, []byte("admin-pin-2")); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(card.PW3, []byte("admin-pin-2")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetResetCode([]byte("reset-code-1")); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetPINWithCode([]byte("reset-code-1"), []byte("999888")); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(card.PW1Sign, []byte("999888")); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetPINWithCode([]byte("reset-code-X"), []byte("999888")); err == nil {
		t.Fatal("wrong reset code accepted")
	}
}

func TestFactoryReset(t *testing.T) {
	for _, withAdmin := range []bool{true, false} {
		sim, c := newSim(t, cardsim.Options{})
		if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.NISTP256, UserID: uid, AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)}); err != nil {
			t.Fatal(err)
		}
		if err := c.ChangePIN(card.PW3, card.DefaultPW3, []byte("lost-admin-pin")); err != nil {
			t.Fatal(err)
		}
		var admin []byte
		if withAdmin {
			admin = []byte("lost-admin-pin")
		}
		if err := c.FactoryReset(admin); err != nil {
			t.Fatal(err)
		}
		if c.App().Keys[card.SlotSign].Present() {
			t.Fatal("key survived the reset")
		}
		st := sim.State()
		if st.Keys[0] != nil || !bytes.Equal(st.PW3, card.DefaultPW3) || st.PW1Tries != 3 {
			t.Fatalf("not factory state: %+v", st)
		}
		if _, err := c.Key(); !errors.Is(err, card.ErrNoKey) {
			t.Fatalf("Key after reset: %v", err)
		}
	}
}

// An interrupted reset (terminated, not activated) is finished by Reactivate.
func TestInterruptedReset(t *testing.T) {
	sim, _ := newSim(t, cardsim.Options{})
	tr := sim.Transport(true)
	for _, apdu := range [][]byte{{0, 0x20, 0, 0x83, 8, '1', '2', '3', '4', '5', '6', '7', '8'}, {0, 0xE6, 0, 0}} {
		resp, _ := tr.Transmit(apdu)
		if !bytes.HasSuffix(resp, []byte{0x90, 0}) {
			t.Fatalf("% X -> % X", apdu, resp)
		}
	}
	if _, err := card.Open(tr); !errors.Is(err, card.ErrTerminated) {
		t.Fatalf("Open of a terminated card: %v", err)
	}
	c, err := card.Reactivate(tr)
	if err != nil {
		t.Fatal(err)
	}
	if c.App().PWStatus.PW3Tries != 3 {
		t.Fatal("not reactivated")
	}
}

// Without extended length the client chains commands and collects long
// answers with GET RESPONSE (the T=0 reader path, QEMU's usb-ccid).
func TestShortAPDUsOnly(t *testing.T) {
	sim, err := cardsim.New(cardsim.Options{NoExtendedLength: true})
	if err != nil {
		t.Fatal(err)
	}
	tr := sim.Transport(false)
	c, err := card.Open(tr)
	if err != nil {
		t.Fatal(err)
	}
	k, pub, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.RSA3072, UserID: uid, AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) == 0 || k == nil {
		t.Fatal("no key")
	}
	// An RSA-3072 import chains its 400-byte key data.
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ImportKey(card.SlotAuth, priv); err != nil {
		t.Fatal(err)
	}
	pk, err := c.ReadPublicKey(card.SlotAuth)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := pk.Crypto()
	if !got.(*rsa.PublicKey).Equal(&priv.PublicKey) {
		t.Fatal("imported key reads back different")
	}
}

func TestImportAndSign(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, priv := range []crypto.Signer{ec, ed, rk} {
		_, c := newSim(t, cardsim.Options{})
		if err := c.Verify(card.PW3, card.DefaultPW3); err != nil {
			t.Fatal(err)
		}
		if err := c.ImportKey(card.SlotSign, priv); err != nil {
			t.Fatal(err)
		}
		pk, err := c.ReadPublicKey(card.SlotSign)
		if err != nil {
			t.Fatal(err)
		}
		created := time.Unix(1700000000, 0)
		k, err := card.NewOpenPGPKey(pk, created)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteKeyMetadata(card.SlotSign, k.Fingerprint(), created); err != nil {
			t.Fatal(err)
		}
		pub, err := c.Export(uid, card.FixedPIN(card.DefaultPW1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub)); err != nil {
			t.Fatal(err)
		}
	}
}

// A 2.1 card: no VERIFY without data, lengths in C0, RSA only.
func TestSpec2Card(t *testing.T) {
	_, c := newSim(t, cardsim.Options{Spec2: true})
	if c.App().AID.Major != 2 || c.App().MaxCommand != 0x7FF {
		t.Fatalf("2.1 card read as %+v", c.App())
	}
	if err := c.Verify(card.PW3, card.DefaultPW3); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAlgorithm(card.SlotSign, card.Ed25519); err == nil {
		t.Fatal("a 2.1 card took Ed25519")
	}
	if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.RSA2048, UserID: uid, AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)}); err != nil {
		t.Fatal(err)
	}
}
