package ownerauth

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

var (
	userPIN  = []byte("482910")
	adminPIN = []byte("73519204")
	backupPW = []byte("tulip orbit canyon velvet")
)

// memoryKey makes an owner key as the wizard's "in memory, then to the
// card" path does: an OpenPGP key made by go-crypto, its encrypted export
// (the backup on the USB drive) and the primary key as a crypto.Signer for
// the card's key import.
func memoryKey(t *testing.T, cfg *packet.Config) (backup []byte, priv crypto.Signer, e *openpgp.Entity) {
	t.Helper()
	e, err := openpgp.NewEntity("Owner", "", "owner@example.org", cfg)
	if err != nil {
		t.Fatal(err)
	}
	switch k := e.PrivateKey.PrivateKey.(type) {
	case *rsa.PrivateKey:
		priv = k
	case *eddsa.PrivateKey:
		priv = ed25519.NewKeyFromSeed(k.D)
	default:
		t.Fatalf("unexpected key type %T", k)
	}
	if err := e.EncryptPrivateKeys(backupPW, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes(), priv, e
}

// simCard is a fresh simulated OpenPGP card 3.4 with the given PINs set.
func simCard(t *testing.T) *card.Card {
	t.Helper()
	sim, err := cardsim.New(cardsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := card.Open(sim.Transport(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ChangePIN(card.PW3, card.DefaultPW3, adminPIN); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangePIN(card.PW1Sign, card.DefaultPW1, userPIN); err != nil {
		t.Fatal(err)
	}
	return c
}

func signer(t *testing.T, c *card.Card) *card.Signer {
	t.Helper()
	s, err := card.NewSigner(c, card.FixedPIN(userPIN))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func identity(b byte) *tpm.Identity {
	id := &tpm.Identity{Kind: tpm.IdentitySRKName}
	id.Digest[0] = b
	return id
}

// TestCardAndBackupGiveOneSecret: a key made in memory, written to the
// card, and its encrypted backup file give the same owner secret (so the
// backup administers the TPM the card took), every time, and a different
// one for another TPM.
func TestCardAndBackupGiveOneSecret(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *packet.Config
	}{
		{"rsa2048", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048}},
		{"ed25519", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backup, priv, e := memoryKey(t, tc.cfg)
			c := simCard(t)
			if err := c.Verify(card.PW3, adminPIN); err != nil {
				t.Fatal(err)
			}
			if err := c.ImportKey(card.SlotSign, priv); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteKeyMetadata(card.SlotSign, e.PrimaryKey.Fingerprint, e.PrimaryKey.CreationTime); err != nil {
				t.Fatal(err)
			}
			s := signer(t, c)
			id := identity(1)
			fromCard, err := FromCard(s, id, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckDeterministic(s, id); err != nil {
				t.Fatal(err)
			}
			k, err := manifest.NewKeySigner(backup, backupPW)
			if err != nil {
				t.Fatal(err)
			}
			fromFile, err := FromKeyFile(k, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(fromCard) != 32 || !bytes.Equal(fromCard, fromFile) {
				t.Fatalf("card %x, backup file %x: they must agree", fromCard, fromFile)
			}
			other, err := FromCard(s, identity(2), nil)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(other, fromCard) {
				t.Fatal("two TPMs get the same owner secret")
			}
		})
	}
}

// TestNISTP256CardNeedsPassphrase: a P-256 key on the card signs with a
// random nonce (as real cards do), so it cannot be the source; the method
// says so, and the passphrase gives a stable secret bound to the key.
func TestNISTP256CardNeedsPassphrase(t *testing.T) {
	c := simCard(t)
	if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.NISTP256, UserID: "Owner <o@example.org>", AdminPIN: adminPIN, Prompt: card.FixedPIN(userPIN)}); err != nil {
		t.Fatal(err)
	}
	s := signer(t, c)
	if err := CheckDeterministic(s, identity(1)); !errors.Is(err, ErrNotDeterministic) {
		t.Fatalf("a P-256 card key passed the determinism check: %v", err)
	}
	if _, err := FromCard(s, identity(1), nil); err == nil {
		t.Fatal("no passphrase asked for a P-256 card key")
	}
	pass := func() ([]byte, error) { return []byte("anchor velvet ribbon meadow copper"), nil }
	a, err := FromCard(s, identity(1), pass)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FromCard(s, identity(1), pass)
	if !bytes.Equal(a, b) {
		t.Fatal("passphrase secret not stable")
	}
	if _, err := FromPassphrase([]byte("short"), nil); err == nil {
		t.Fatal("a short passphrase was accepted")
	}
}

func TestMethodOf(t *testing.T) {
	for _, tc := range []struct {
		alg    packet.PublicKeyAlgorithm
		onCard bool
		want   Method
	}{
		{packet.PubKeyAlgoRSA, true, Signature},
		{packet.PubKeyAlgoRSA, false, Signature},
		{packet.PubKeyAlgoEdDSA, true, Signature},
		{packet.PubKeyAlgoECDSA, false, KeyMaterial},
		{packet.PubKeyAlgoECDSA, true, Passphrase},
	} {
		if got, err := MethodOf(tc.alg, tc.onCard); err != nil || got != tc.want {
			t.Errorf("MethodOf(%d, %v) = %v, %v; want %v", tc.alg, tc.onCard, got, err, tc.want)
		}
	}
	if _, err := MethodOf(packet.PubKeyAlgoElGamal, false); err == nil {
		t.Error("ElGamal accepted")
	}
}

// TestCardAdministersTPM: on a real TPM 2.0 (swtpm), the authorisations
// derived from the card's signature take the TPM; in a later session (a
// new TPM connection, the card opened again, as at a later boot) the same
// card administers it (dictionary-attack parameters need the lockout
// authorisation, an NV index the owner authorisation), and another card's
// key does not.
func TestCardAdministersTPM(t *testing.T) {
	spec := swtpmtest.Start(t, tpm.Version20)
	c := simCard(t)
	if _, _, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.RSA2048, UserID: "Owner <o@example.org>", AdminPIN: adminPIN, Prompt: card.FixedPIN(userPIN), Now: func() time.Time { return time.Unix(1764000000, 0) }}); err != nil {
		t.Fatal(err)
	}
	take := func(s *card.Signer) (tpm.TPM, tpm.HierarchyAuth) {
		dev, err := tpm.Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		if err := dev.PrepareOwnership(); err != nil {
			t.Fatal(err)
		}
		id, err := dev.Identity()
		if err != nil {
			t.Fatal(err)
		}
		sec, err := FromCard(s, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := Auth(sec, id)
		if err != nil {
			t.Fatal(err)
		}
		return dev, auth
	}
	dev, auth := take(signer(t, c))
	if err := dev.SetHierarchyAuth(auth); err != nil {
		t.Fatal(err)
	}
	dev.Close()

	dev2, auth2 := take(signer(t, c))
	dev2.UseAuth(auth2)
	if err := dev2.ConfigureLockout(tpm.DefaultMaxTries, tpm.DefaultRecoverySeconds, tpm.DefaultLockoutRecoverySeconds); err != nil {
		t.Fatalf("the card's authorisation does not administer the TPM it took: %v", err)
	}
	if err := dev2.NVDefine(tpm.NVSpace{Index: 0x01804700, Size: 8}); err != nil {
		t.Fatalf("owner authorisation: %v", err)
	}

	other := simCard(t)
	if _, _, err := other.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.RSA2048, UserID: "Mallory <m@example.org>", AdminPIN: adminPIN, Prompt: card.FixedPIN(userPIN)}); err != nil {
		t.Fatal(err)
	}
	dev3, auth3 := take(signer(t, other))
	dev3.UseAuth(auth3)
	if err := dev3.NVDefine(tpm.NVSpace{Index: 0x01804701, Size: 8}); !errors.Is(err, tpm.ErrAuthFail) {
		t.Fatalf("another card's key administered the TPM: %v", err)
	}
}
