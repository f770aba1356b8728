package manifest

import (
	"bytes"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// TestOwnerSecretDerivesTheTPMAuth: the owner's exported key, unlocked with
// its passphrase as in glint's menu, gives the same secret every time, a
// different one for another key, and through tpm.DeriveHierarchyAuth the
// authorisations that administer a TPM set up with it.
func TestOwnerSecretDerivesTheTPMAuth(t *testing.T) {
	var secrets [][]byte
	for _, algo := range []string{"ed25519", "rsa3072", "nistp256"} {
		t.Run(algo, func(t *testing.T) {
			k := newGPGKeyArgs(t, "Owner", algo, "--passphrase", "correct horse")
			exported := gpg(t, k.home, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "correct horse", "--s2k-count", "65536", "--armor", "--export-secret-keys", k.id)
			if _, err := NewKeySigner(exported, nil); err == nil {
				t.Fatal("the exported key is not passphrase-protected")
			}
			get := func() []byte {
				s, err := NewKeySigner(exported, []byte("correct horse"))
				if err != nil {
					t.Fatal(err)
				}
				sec, err := s.OwnerSecret()
				if err != nil {
					t.Fatalf("OwnerSecret: %v", err)
				}
				return sec
			}
			a, b := get(), get()
			if len(a) != 32 || !bytes.Equal(a, b) {
				t.Fatalf("not repeatable: %x %x", a, b)
			}
			secrets = append(secrets, a)
		})
	}
	for i := range secrets {
		for j := i + 1; j < len(secrets); j++ {
			if bytes.Equal(secrets[i], secrets[j]) {
				t.Fatal("two owner keys give one secret")
			}
		}
	}
}

func TestOwnerSecretSetsUpTheTPM(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	exported := gpg(t, k.home, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", k.id)
	s, err := NewKeySigner(exported, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := swtpmtest.Start(t, tpm.Version20)
	dev, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := dev.PrepareOwnership(); err != nil {
		t.Fatal(err)
	}
	id, _ := dev.Identity()
	sec, _ := s.OwnerSecret()
	auth, err := tpm.DeriveHierarchyAuth(sec, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SetHierarchyAuth(auth); err != nil {
		t.Fatal(err)
	}
	// SignBoot defines the counter with the owner's authorisation.
	dir := makeBoot(t)
	if _, err := SignBoot(dir, s, dev, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	// A second session of the owner (another boot) re-derives and resets
	// the lockout.
	dev2, _ := tpm.Open(spec)
	defer dev2.Close()
	s2, _ := NewKeySigner(exported, nil)
	sec2, _ := s2.OwnerSecret()
	auth2, _ := tpm.DeriveHierarchyAuth(sec2, id)
	dev2.UseAuth(auth2)
	if err := dev2.ResetLockout(); err != nil {
		t.Fatalf("the owner's key from another session: %v", err)
	}
}

// TestKeySignerWipe: after Wipe the unlocked key material is gone: the
// signer can no longer sign or derive the owner secret.
func TestKeySignerWipe(t *testing.T) {
	for _, algo := range []string{"ed25519", "rsa2048"} {
		k := newGPGKey(t, "Owner", algo)
		exported := gpg(t, k.home, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", k.id)
		s, err := NewKeySigner(exported, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sign([]byte("x")); err != nil {
			t.Fatal(err)
		}
		s.Wipe()
		if _, err := s.OwnerSecret(); err == nil {
			t.Fatalf("%s: owner secret after Wipe", algo)
		}
		if _, err := s.Sign([]byte("x")); err == nil {
			t.Fatalf("%s: signed after Wipe", algo)
		}
	}
}
