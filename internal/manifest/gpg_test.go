package manifest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// testKey is a real gpg key in a temporary GNUPGHOME.
type testKey struct {
	home   string
	id     string // long key ID of the primary key (hex)
	public []byte // armored public key
}

func (k *testKey) keyring(t *testing.T) openpgp.EntityList {
	t.Helper()
	el, err := ReadKeyring(k.public)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func (k *testKey) signer() *GPG { return &GPG{Home: k.home, KeyID: k.id} }

func needGPG(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not installed (apt-get install gnupg); CI installs it")
	}
}

// newGPGKey makes a key with gpg itself: algo "ed25519" or "rsa3072".
// The home lives under /tmp with a short name because gpg-agent's socket
// path must fit in sun_path.
func newGPGKey(t testing.TB, name, algo string) *testKey {
	t.Helper()
	return newGPGKeyArgs(t, name, algo)
}

// newGPGKeyArgs is newGPGKey with extra gpg options for the key generation
// (e.g. --faked-system-time to make an older key).
func newGPGKeyArgs(t testing.TB, name, algo string, extra ...string) *testKey {
	t.Helper()
	needGPG(t)
	home, err := os.MkdirTemp("/tmp", "glint-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	gpg(t, home, nil, append(append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, extra...),
		"--quick-gen-key", name+" <"+strings.ToLower(name)+"@example.org>", algo, "sign", "never")...)
	out := gpg(t, home, nil, "--with-colons", "--list-keys")
	var id string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ":")
		if f[0] == "pub" && len(f) > 4 {
			id = f[4]
			break
		}
	}
	if id == "" {
		t.Fatalf("no key id in gpg output:\n%s", out)
	}
	pub := gpg(t, home, nil, "--armor", "--export", id)
	return &testKey{home: home, id: id, public: pub}
}

func gpg(t testing.TB, home string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", home, "--no-tty", "--quiet"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// makeBoot writes a small /boot-like tree and returns its path.
func makeBoot(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"vmlinuz-6.1.0-18-amd64":    "kernel image\x00\x01\x02",
		"initrd.img-6.1.0-18-amd64": strings.Repeat("initrd ", 5000),
		"config-6.1.0-18-amd64":     "CONFIG_X=y\n",
		"grub/grub.cfg":             "menuentry 'Debian' { linux /vmlinuz-6.1.0-18-amd64 }\n",
		"grub/fonts/unicode.pf2":    "font",
		"odd name\twith\\bytes\xff": "odd",
	}
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("vmlinuz-6.1.0-18-amd64", filepath.Join(dir, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
