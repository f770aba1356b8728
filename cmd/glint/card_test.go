//go:build !payload

// The card verbs are not in the payload build (cmd/glint/payload.go).

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/card/cardsim/pcscdtest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// The card verbs on a workstation: pcscd (real) with the simulated card,
// swtpm for the rollback counter. The owner makes a key on the card,
// signs /boot with it (glint sign --card), and glint verify and gpg --verify
// accept the manifest; a wrong PIN from a file costs exactly one try.
func TestCardVerbs(t *testing.T) {
	sim, err := cardsim.New(cardsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := pcscdtest.Start(t, sim)
	t.Setenv("PCSCLITE_CSOCK_NAME", d.Socket)
	t.Setenv("GLINT_CARD", "pcsc")
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pin, admin, wrong := write("pin", "123456\n"), write("admin", "12345678\n"), write("wrong", "000000\n")

	out, code := glintRun("card", "status")
	if code != 0 || !strings.Contains(out, "OpenPGP card 00000042 (test card)") || !strings.Contains(out, "PIN tries left:  user 3, reset code 0, admin 3") {
		t.Fatalf("card status (%d):\n%s", code, out)
	}
	owner := filepath.Join(dir, "owner.asc")
	out, code = glintRun("card", "generate", "--type", "nistp256", "--name", "Glint Owner", "--email", "owner@example.org",
		"--admin-pin-file", admin, "--pin-file", pin, "--out", owner)
	if code != 0 {
		t.Fatalf("card generate (%d):\n%s", code, out)
	}
	out, code = glintRun("card", "generate", "--type", "nistp256", "--name", "X", "--admin-pin-file", admin, "--pin-file", pin, "--out", owner+".2")
	if code != 2 || !strings.Contains(out, "--yes") {
		t.Fatalf("generate over an existing key must ask for --yes (%d):\n%s", code, out)
	}
	out, _ = glintRun("card", "status")
	if !strings.Contains(out, "Signature key:   nistp256 ") {
		t.Fatalf("status after generate:\n%s", out)
	}

	// glint sign --card: the manifest of a small /boot, counter in swtpm.
	boot := filepath.Join(dir, "boot")
	os.MkdirAll(boot, 0o755)
	os.WriteFile(filepath.Join(boot, "vmlinuz-6.1"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(boot, "initrd.img-6.1"), []byte("initrd"), 0o644)
	spec := swtpmtest.Start(t, tpm.Version20)
	out, code = glintRun("--tpm", spec, "sign", "--yes", "--card", "--passphrase-file", wrong, boot)
	if code == 0 || !strings.Contains(out, "wrong") {
		t.Fatalf("sign with a wrong PIN file (%d):\n%s", code, out)
	}
	if got := sim.State().PW1Tries; got != 2 {
		t.Fatalf("a wrong PIN file cost %d tries, want 1", 3-got)
	}
	out, code = glintRun("--tpm", spec, "sign", "--yes", "--card", "--passphrase-file", pin, boot)
	if code != 0 {
		t.Fatalf("sign --card (%d):\n%s", code, out)
	}
	out, code = glintRun("--tpm", spec, "verify", "--pubkey", owner, boot)
	if code != 0 {
		t.Fatalf("verify (%d):\n%s", code, out)
	}
	// gpg on "any machine" accepts the owner key and the card's signature.
	if _, err := exec.LookPath("gpg"); err == nil {
		home := t.TempDir()
		os.Chmod(home, 0o700)
		gpg := func(args ...string) string {
			c := exec.Command("gpg", append([]string{"--homedir", home, "--batch"}, args...)...)
			b, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("gpg %v: %v\n%s", args, err, b)
			}
			return string(b)
		}
		gpg("--import", owner)
		if out := gpg("--verify", filepath.Join(boot, "glint", "manifest.sig"), filepath.Join(boot, "glint", "manifest")); !strings.Contains(out, "Good signature") {
			t.Fatalf("gpg --verify:\n%s", out)
		}
	}
	// Three wrong PINs block it; status explains.
	for i := 0; i < 3; i++ {
		glintRun("card", "sign", "--pin-file", wrong, filepath.Join(boot, "vmlinuz-6.1"))
	}
	out, _ = glintRun("card", "status")
	if !strings.Contains(out, "USER PIN is BLOCKED") || !strings.Contains(out, "admin PIN") {
		t.Fatalf("blocked PIN not explained:\n%s", out)
	}
	out, code = glintRun("card", "unblock", "--admin-pin-file", admin, "--new-pin-file", pin)
	if code != 0 {
		t.Fatalf("unblock (%d):\n%s", code, out)
	}
	out, code = glintRun("card", "factory-reset")
	if code != 2 {
		t.Fatalf("factory-reset without --yes (%d):\n%s", code, out)
	}
	out, code = glintRun("card", "factory-reset", "--yes")
	if code != 0 || sim.State().Keys[0] != nil {
		t.Fatalf("factory-reset (%d):\n%s", code, out)
	}
}
