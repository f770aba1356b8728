package luks

import (
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
)

// A 128-byte random key as Heads makes (kexec-seal-key.sh); it contains
// newlines and NULs, which must survive the pipe to cryptsetup untouched.
func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 128)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	k[5], k[6], k[7] = '\n', 0, '\r'
	return k
}

func TestAddKeyDefaultSlotAndTestKey(t *testing.T) {
	for _, c := range []struct {
		typ  string
		slot int
	}{{"luks2", 31}, {"luks1", 7}} {
		t.Run(c.typ, func(t *testing.T) {
			img := newImage(t, c.typ)
			key := randomKey(t)
			if err := testCS.AddKey(img, []byte(testPass), key, -1); err != nil {
				t.Fatal(err)
			}
			h, err := ReadHeader(img)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := h.Slot(c.slot); !ok {
				t.Fatalf("slot %d not active after AddKey: %+v", c.slot, h.Keyslots)
			}
			if err := testCS.TestKey(img, key); err != nil {
				t.Errorf("TestKey(new key) = %v", err)
			}
			// The key must be taken verbatim: a truncated key (as a
			// newline-stripping reader would produce) must fail.
			if err := testCS.TestKey(img, key[:5]); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("TestKey(truncated key) = %v, want ErrWrongPassphrase", err)
			}
			if err := testCS.TestKey(img, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("TestKey(wrong) = %v, want ErrWrongPassphrase", err)
			}
			// The slot is taken: glint never overwrites it.
			if err := testCS.AddKey(img, []byte(testPass), []byte("other"), -1); !errors.Is(err, ErrSlotInUse) {
				t.Errorf("AddKey into occupied slot = %v, want ErrSlotInUse", err)
			}
		})
	}
}

func TestAddKeyWrongExistingPassphrase(t *testing.T) {
	img := newImage(t, "luks2")
	err := testCS.AddKey(img, []byte("not the passphrase"), []byte("new"), 5)
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("got %v, want ErrWrongPassphrase", err)
	}
	h, _ := ReadHeader(img)
	if _, ok := h.Slot(5); ok {
		t.Errorf("slot 5 was added despite the wrong passphrase")
	}
}

func TestLUKS1SlotLimits(t *testing.T) {
	img := newImage(t, "luks1")
	err := testCS.AddKey(img, []byte(testPass), []byte("k"), 31)
	if !errors.Is(err, ErrLUKS1) {
		t.Errorf("slot 31 on LUKS1: %v, want ErrLUKS1", err)
	}
	if err := testCS.AddKey(img, []byte(testPass), []byte("k"), 40); err == nil || errors.Is(err, ErrLUKS1) {
		t.Errorf("slot 40: %v", err)
	}
}

func TestKillSlotRules(t *testing.T) {
	img := newImage(t, "luks2")
	if err := testCS.KillSlot(img, []byte(testPass), 0); !errors.Is(err, ErrLastSlot) {
		t.Errorf("killing the only slot: %v, want ErrLastSlot", err)
	}
	if err := testCS.AddKey(img, []byte(testPass), []byte("glint"), 31); err != nil {
		t.Fatal(err)
	}
	if err := testCS.KillSlot(img, []byte(testPass), 4); !errors.Is(err, ErrSlotEmpty) {
		t.Errorf("empty slot: %v, want ErrSlotEmpty", err)
	}
	// The passphrase must open a slot other than the one removed.
	if err := testCS.KillSlot(img, []byte("glint"), 31); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("authorising with the doomed slot's own key: %v, want ErrWrongPassphrase", err)
	}
	if err := testCS.KillSlot(img, []byte(testPass), 31); err != nil {
		t.Fatalf("KillSlot: %v", err)
	}
	h, _ := ReadHeader(img)
	if _, ok := h.Slot(31); ok {
		t.Errorf("slot 31 still active")
	}
	if err := testCS.TestKey(img, []byte("glint")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("removed key still opens: %v", err)
	}
}

// A slot a systemd-cryptenroll token references is not glint's: no add, no kill.
func TestTokenSlotsAreUntouchable(t *testing.T) {
	img := newImage(t, "luks2")
	if err := testCS.AddKey(img, []byte(testPass), []byte("tpm2-unsealed-secret"), 2); err != nil {
		t.Fatal(err)
	}
	importToken(t, img, tpm2TokenJSON(2))
	err := testCS.KillSlot(img, []byte(testPass), 2)
	if !errors.Is(err, ErrSlotOwnedByToken) || !strings.Contains(err.Error(), "systemd-cryptenroll TPM2 token 0 on keyslot 2") {
		t.Errorf("KillSlot on token slot: %v", err)
	}
	h, _ := ReadHeader(img)
	if _, ok := h.Slot(2); !ok {
		t.Fatalf("slot 2 gone")
	}
	// A dangling token reference (slot emptied behind the token's back;
	// cryptsetup itself refuses to create one, so forge it) still protects
	// the number: refilling it would hand the token's owner a new key.
	done := false
	forged := forgeLUKS2(t, readFile(t, img), func(_ []byte, md map[string]any) {
		if !done {
			delete(md["keyslots"].(map[string]any), "2")
			md["digests"].(map[string]any)["0"].(map[string]any)["keyslots"] = []string{"0"}
			done = true
		}
	})
	p := writeTemp(t, forged)
	if err := testCS.AddKey(p, []byte(testPass), []byte("x"), 2); !errors.Is(err, ErrSlotOwnedByToken) {
		t.Errorf("AddKey into a token-referenced empty slot: %v, want ErrSlotOwnedByToken", err)
	}
}

func TestCryptsetupMissing(t *testing.T) {
	c := &Cryptsetup{Path: "/nonexistent/cryptsetup"}
	img := newImage(t, "luks2")
	if err := c.TestKey(img, []byte(testPass)); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("got %v", err)
	}
	if err := TestKey(img+".missing", []byte("x")); err == nil {
		t.Errorf("missing device accepted")
	}
	_ = os.Remove(img)
}

// Package-level functions use Default (cryptsetup from PATH, default PBKDF).
func TestPackageLevelTestKey(t *testing.T) {
	img := newImage(t, "luks2")
	if err := TestKey(img, []byte(testPass)); err != nil {
		t.Errorf("TestKey(recovery passphrase) = %v", err)
	}
}
