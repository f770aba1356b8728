package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/glint-boot/glint/internal/gpgtest"
)

// VerifyWith hands back the bytes it kept while hashing (the boot flow
// boots the default entry's kernel from them; glint rootfs check parses
// the root file system list from them), only when /boot verified.
func TestVerifyReturnsKeptBytes(t *testing.T) {
	k := gpgtest.NewKey(t, "Owner", "ed25519")
	boot := t.TempDir()
	kernel := bytes.Repeat([]byte("kernel"), 1000)
	os.WriteFile(filepath.Join(boot, "vmlinuz"), kernel, 0o644)
	m, err := Build(boot, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.CounterIndex, m.Counter = DefaultCounterIndex, 1
	sig, err := Sign(m, &GPG{Home: k.Home, KeyID: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(boot, m, sig); err != nil {
		t.Fatal(err)
	}
	keyring, err := ReadKeyring(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	opts := VerifyOptions{Build: BuildOptions{Keep: func(rel string) bool { return rel == "vmlinuz" }}}
	res, err := VerifyWith(boot, keyring, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Kept["vmlinuz"], kernel) {
		t.Fatalf("kept %d bytes, want the %d-byte kernel", len(res.Kept["vmlinuz"]), len(kernel))
	}
	os.WriteFile(filepath.Join(boot, "vmlinuz"), []byte("evil"), 0o644)
	if res, err = VerifyWith(boot, keyring, nil, opts); err == nil || res.Kept != nil {
		t.Fatal("a tampered /boot verified or handed back bytes")
	}
}
