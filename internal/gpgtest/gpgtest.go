// Package gpgtest makes real gpg keys in temporary homes for tests: the
// signatures glint verifies in tests are made by the real gpg, the way
// distributions and owners make them.
package gpgtest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Key is a gpg key in its own temporary GNUPGHOME.
type Key struct {
	Home   string
	ID     string // long key ID of the primary key
	Public []byte // armored public key
}

// Need skips the test when gpg is missing (scripts/install-deps.sh
// installs it; CI never skips).
func Need(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not installed (apt-get install gnupg); CI installs it")
	}
}

// NewKey makes a signing key: algo "ed25519", "rsa3072", ... The home lives
// under /tmp with a short name because gpg-agent's socket path must fit in
// sun_path.
func NewKey(t testing.TB, name, algo string) *Key {
	t.Helper()
	Need(t)
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
	k := &Key{Home: home}
	k.Run(t, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", name+" <"+strings.ToLower(strings.ReplaceAll(name, " ", "."))+"@example.org>", algo, "sign", "never")
	out := k.Run(t, nil, "--with-colons", "--list-keys")
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ":")
		if f[0] == "pub" && len(f) > 4 {
			k.ID = f[4]
			break
		}
	}
	if k.ID == "" {
		t.Fatalf("no key id in gpg output:\n%s", out)
	}
	k.Public = k.Run(t, nil, "--armor", "--export", k.ID)
	return k
}

// Run runs gpg in the key's home with stdin and returns stdout.
func (k *Key) Run(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", k.Home, "--no-tty", "--yes"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// DetachSign signs file into out: armored (.asc, .sign) or binary (.sig).
func (k *Key) DetachSign(t testing.TB, file, out string, armor bool) {
	t.Helper()
	args := []string{"--local-user", k.ID, "--digest-algo", "SHA256", "--output", out}
	if armor {
		args = append(args, "--armor")
	}
	k.Run(t, nil, append(args, "--detach-sign", file)...)
}

// ClearSign makes a clearsigned copy of file in out.
func (k *Key) ClearSign(t testing.TB, file, out string) {
	t.Helper()
	k.Run(t, nil, "--local-user", k.ID, "--digest-algo", "SHA256", "--output", out, "--clearsign", file)
}
