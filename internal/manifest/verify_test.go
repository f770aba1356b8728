package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signNoTPM signs dir with key at a given counter value, without a TPM:
// Build + Sign + Write, the parts of SignBoot that do not touch the counter.
func signNoTPM(t *testing.T, dir string, s Signer, counter uint64) *Manifest {
	t.Helper()
	m, err := Build(dir, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.CounterIndex, m.Counter, m.Default = DefaultCounterIndex, counter, "debian"
	m.Created = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sig, err := Sign(m, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, m, sig); err != nil {
		t.Fatal(err)
	}
	return m
}

func tamperOf(t *testing.T, err error) *TamperError {
	t.Helper()
	var te *TamperError
	if !errors.As(err, &te) {
		t.Fatalf("want *TamperError, got %v", err)
	}
	return te
}

func TestSignVerifyGPG(t *testing.T) {
	for _, algo := range []string{"ed25519", "rsa3072"} {
		t.Run(algo, func(t *testing.T) {
			k := newGPGKey(t, "Owner", algo)
			dir := makeBoot(t)
			signNoTPM(t, dir, k.signer(), 5)
			res, err := Verify(dir, k.keyring(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Manifest.Counter != 5 || res.Manifest.Default != "debian" || res.CounterChecked {
				t.Fatalf("result %+v", res)
			}
			// gpg itself agrees the signature is good over the file on disk.
			gpg(t, k.home, nil, "--verify", filepath.Join(dir, "glint", SignatureName), filepath.Join(dir, "glint", ManifestName))
		})
	}
}

func TestKeySignerFromExportedGPGKey(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	secret := gpg(t, k.home, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", k.id)
	s, err := NewKeySigner(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := makeBoot(t)
	signNoTPM(t, dir, s, 1)
	if _, err := Verify(dir, k.keyring(t), nil); err != nil {
		t.Fatal(err)
	}
	gpg(t, k.home, nil, "--verify", filepath.Join(dir, "glint", SignatureName), filepath.Join(dir, "glint", ManifestName))
	if _, err := NewKeySigner(k.public, nil); err == nil {
		t.Fatal("a public key made a signer")
	}
}

func TestGPGPassphraseLoopback(t *testing.T) {
	needGPG(t)
	home, err := os.MkdirTemp("/tmp", "glint-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	gpg(t, home, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "s3cret",
		"--quick-gen-key", "PIN Owner <pin@example.org>", "ed25519", "sign", "never")
	pub := gpg(t, home, nil, "--armor", "--export")
	el, err := ReadKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := makeBoot(t)
	if _, err := Sign(&Manifest{}, &GPG{Home: home, Passphrase: []byte("wrong"), Timeout: 20 * time.Second}); err == nil {
		t.Fatal("wrong passphrase signed")
	}
	signNoTPM(t, dir, &GPG{Home: home, Passphrase: []byte("s3cret")}, 1)
	if _, err := Verify(dir, el, nil); err != nil {
		t.Fatal(err)
	}
	// The same key exported (as an owner's USB backup) signs in pure Go
	// only with its passphrase.
	secret := gpg(t, home, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "s3cret", "--armor", "--export-secret-keys")
	if _, err := NewKeySigner(secret, nil); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("protected key without passphrase: %v", err)
	}
	if _, err := NewKeySigner(secret, []byte("wrong")); err == nil {
		t.Fatal("wrong passphrase unlocked the key")
	}
	ks, err := NewKeySigner(secret, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	signNoTPM(t, dir, ks, 2)
	if _, err := Verify(dir, el, nil); err != nil {
		t.Fatal(err)
	}
}

func TestTamperNamed(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	keyring := k.keyring(t)
	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		check  func(t *testing.T, te *TamperError)
	}{
		{"changed kernel", func(t *testing.T, dir string) {
			write(t, dir, "vmlinuz-6.1.0-18-amd64", "evil kernel")
		}, func(t *testing.T, te *TamperError) {
			if len(te.Changed) != 1 || te.Changed[0].Path != "vmlinuz-6.1.0-18-amd64" || len(te.Added)+len(te.Removed) != 0 {
				t.Fatalf("%v", te)
			}
			c := te.Changed[0]
			if c.Want.SHA256 == c.Got.SHA256 || c.Got.Size != int64(len("evil kernel")) {
				t.Fatalf("hashes not both reported: %+v", c)
			}
			if !strings.Contains(te.Error(), `changed: "vmlinuz-6.1.0-18-amd64": signed sha256 `) {
				t.Fatalf("message: %v", te)
			}
		}},
		{"added file", func(t *testing.T, dir string) {
			write(t, dir, "grub/evil.mod", "x")
		}, func(t *testing.T, te *TamperError) {
			if len(te.Added) != 1 || te.Added[0].Path != "grub/evil.mod" || len(te.Changed)+len(te.Removed) != 0 {
				t.Fatalf("%v", te)
			}
		}},
		{"removed file", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "config-6.1.0-18-amd64")); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, te *TamperError) {
			if len(te.Removed) != 1 || te.Removed[0].Path != "config-6.1.0-18-amd64" || len(te.Changed)+len(te.Added) != 0 {
				t.Fatalf("%v", te)
			}
		}},
		{"symlink retargeted", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "vmlinuz"))
			if err := os.Symlink("config-6.1.0-18-amd64", filepath.Join(dir, "vmlinuz")); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, te *TamperError) {
			if len(te.Changed) != 1 || te.Changed[0].Got.Target != "config-6.1.0-18-amd64" {
				t.Fatalf("%v", te)
			}
		}},
		{"odd file name changed", func(t *testing.T, dir string) {
			write(t, dir, "odd name\twith\\bytes\xff", "changed")
		}, func(t *testing.T, te *TamperError) {
			if len(te.Changed) != 1 || te.Changed[0].Path != "odd name\twith\\bytes\xff" {
				t.Fatalf("%v", te)
			}
		}},
		{"manifest edited", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "glint", ManifestName)
			b, _ := os.ReadFile(p)
			b = []byte(strings.Replace(string(b), "default debian", "default evil", 1))
			os.WriteFile(p, b, 0o644)
		}, func(t *testing.T, te *TamperError) {
			if te.BadSignature == nil || te.UnknownKey != 0 {
				t.Fatalf("%v", te)
			}
		}},
		{"signature corrupted", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "glint", SignatureName)
			b, _ := os.ReadFile(p)
			lines := strings.Split(string(b), "\n")
			// Flip a character in the base64 body (not the CRC line).
			l := []byte(lines[3])
			l[10] ^= 1
			lines[3] = string(l)
			os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
		}, func(t *testing.T, te *TamperError) {
			if te.BadSignature == nil {
				t.Fatalf("%v", te)
			}
		}},
		{"signature truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "glint", SignatureName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, func(t *testing.T, te *TamperError) {
			if te.BadSignature == nil {
				t.Fatalf("%v", te)
			}
		}},
		{"escaping symlink and FIFO added", func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/sda", filepath.Join(dir, "grub/disk")); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, te *TamperError) {
			if len(te.Added) != 2 || te.Added[0].Path != "fifo" || te.Added[0].Kind != KindSpecial ||
				te.Added[1].Path != "grub/disk" || te.Added[1].Target != "/dev/sda" {
				t.Fatalf("%v", te)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := makeBoot(t)
			signNoTPM(t, dir, k.signer(), 3)
			if _, err := Verify(dir, keyring, nil); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			c.tamper(t, dir)
			_, err := Verify(dir, keyring, nil)
			c.check(t, tamperOf(t, err))
		})
	}
}

func TestWrongKey(t *testing.T) {
	owner := newGPGKey(t, "Owner", "ed25519")
	mallory := newGPGKey(t, "Mallory", "ed25519")
	dir := makeBoot(t)
	signNoTPM(t, dir, mallory.signer(), 3)
	_, err := Verify(dir, owner.keyring(t), nil)
	te := tamperOf(t, err)
	want := mallory.keyring(t)[0].PrimaryKey.KeyId
	if te.UnknownKey != want {
		t.Fatalf("unknown key %016X, want %016X (%v)", te.UnknownKey, want, te)
	}
	if !strings.Contains(te.Error(), strings.ToUpper(mallory.id)) {
		t.Fatalf("message does not name the key %s: %v", mallory.id, te)
	}
}

func TestNoManifest(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	_, err := Verify(makeBoot(t), k.keyring(t), nil)
	if !errors.Is(err, ErrNoManifest) {
		t.Fatalf("got %v", err)
	}
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
