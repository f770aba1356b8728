package hooks_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/card/cardsim/pcscdtest"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// cardOwner makes an owner key on a simulated card and returns the card,
// owner.asc's path and the environment that reaches it through pcscd.
func cardOwner(t *testing.T) (*cardsim.Card, string, []string) {
	t.Helper()
	sim, err := cardsim.New(cardsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := card.Open(sim.Transport(true))
	if err != nil {
		t.Fatal(err)
	}
	_, pub, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.Ed25519, UserID: "Owner <owner@example.org>", AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)})
	if err != nil {
		t.Fatal(err)
	}
	owner := filepath.Join(t.TempDir(), "owner.asc")
	if err := os.WriteFile(owner, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	d := pcscdtest.Start(t, sim)
	return sim, owner, []string{"PCSCLITE_CSOCK_NAME=" + d.Socket, "GLINT_CARD=pcsc"}
}

// After a kernel update with the owner's card plugged in, the hook asks
// and signs /boot with the card (PIN typed at the terminal); "n" or a card
// that does not hold the owner key leave the unsigned note instead.
func TestHookOffersCardSigning(t *testing.T) {
	sim, ownerKey, env := cardOwner(t)
	dir := t.TempDir()
	for name, content := range map[string]string{"vmlinuz-6.1.0-17-amd64": "old kernel", "initrd.img-6.1.0-17-amd64": "old initrd", "grub/grub.cfg": "menuentry 6.1.0-17\n"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	spec := swtpmtest.Start(t, tpm.Version20)
	pin := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pin, []byte("123456\n"), 0o600)
	run(t, append(env, "GLINT_TPM="+spec), glint(t), "sign", "--yes", "--card", "--passphrase-file", pin, dir)
	o := &owner{pubFile: ownerKey}
	if err := verify(t, o, dir, spec); err != nil {
		t.Fatal(err)
	}
	answers := func(s string) string {
		p := filepath.Join(t.TempDir(), "tty")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	conf := func(tty, ownerKey string) string {
		return "SIGN=auto\nOWNER_KEY=" + ownerKey + "\nTTY=" + tty + "\nTTY_OUT=/dev/null\n"
	}

	// "n": only the note.
	kernelUpdate(t, dir)
	out := hook(t, dir, spec, conf(answers("n\n"), ownerKey), env, "glint-boot-hook", "apt", "linux-image-6.1.0-18-amd64")
	if !strings.Contains(out, "is NOT signed") || verify(t, o, dir, spec) == nil {
		t.Fatalf("answered no, hook output:\n%s", out)
	}
	// A card that does not hold the owner key: refused before the PIN.
	other := filepath.Join(t.TempDir(), "other.asc")
	sim2, _ := cardsim.New(cardsim.Options{})
	c2, _ := card.Open(sim2.Transport(true))
	_, pub2, err := c2.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.NISTP256, UserID: "Someone <x@example.org>", AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(other, pub2, 0o644)
	out = hook(t, dir, spec, conf(answers("y\n123456\n"), other), env, "glint-boot-hook", "apt", "linux-image-6.1.0-18-amd64")
	if !strings.Contains(out, "signing with the card failed") || sim.State().PW1Tries != 3 {
		t.Fatalf("foreign owner key: tries %d, hook output:\n%s", sim.State().PW1Tries, out)
	}
	// "y" and the PIN: signed, the next boot verifies, no note left.
	out = hook(t, dir, spec, conf(answers("y\n123456\n"), ownerKey), env, "glint-boot-hook", "apt", "linux-image-6.1.0-18-amd64")
	if !strings.Contains(out, "re-signed /boot with the card after apt linux-image-6.1.0-18-amd64") {
		t.Fatalf("hook output:\n%s", out)
	}
	if err := verify(t, o, dir, spec); err != nil {
		t.Fatalf("after the card signed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "glint", manifest.ExpectedNoteName)); err == nil {
		t.Fatal("note left after signing")
	}
}
