package manifest

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// TestPlanShowsWhatWillBeSigned: before signing, the owner sees every file
// that differs from the last signed manifest, with both hashes.
func TestPlanShowsWhatWillBeSigned(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	dir := makeBoot(t)
	p, err := PlanSign(dir, k.keyring(t), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Summary(0); !strings.Contains(s, "No signed manifest on /boot") || len(p.Added) != len(p.New.Entries) {
		t.Fatalf("first signing: %s", s)
	}
	old := signNoTPM(t, dir, k.signer(), 1)
	write(t, dir, "vmlinuz-6.1.0-18-amd64", "a kernel from somewhere else")
	write(t, dir, "grub/evil.mod", "x")
	if err := os.Remove(filepath.Join(dir, "config-6.1.0-18-amd64")); err != nil {
		t.Fatal(err)
	}
	p, err = PlanSign(dir, k.keyring(t), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.LastVerified || len(p.Changed) != 1 || len(p.Added) != 1 || len(p.Removed) != 1 || p.Same() {
		t.Fatalf("plan: %+v", p)
	}
	var oldHash string
	for _, e := range old.Entries {
		if e.Path == "vmlinuz-6.1.0-18-amd64" {
			oldHash = hex.EncodeToString(e.SHA256[:])
		}
	}
	s := p.Summary(0)
	for _, want := range []string{"1 changed, 1 added, 1 removed", `changed "vmlinuz-6.1.0-18-amd64": sha256 ` + oldHash, `added   "grub/evil.mod"`, `removed "config-6.1.0-18-amd64"`, "counter 1"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if s := p.Summary(1); !strings.Contains(s, "... (2 more)") {
		t.Errorf("bounded summary:\n%s", s)
	}
}

// TestPlanAfterBadSignature: the manifest's signature no longer verifies
// (someone edited it); the re-sign screen still lists the file differences
// against it, marked unverified, instead of only "signature is BAD".
func TestPlanAfterBadSignature(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	dir := makeBoot(t)
	signNoTPM(t, dir, k.signer(), 1)
	mpath := filepath.Join(dir, "glint", ManifestName)
	text, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	// The attacker replaces the kernel and edits its hash into the
	// manifest, which breaks the signature.
	write(t, dir, "vmlinuz-6.1.0-18-amd64", "evil kernel")
	now, err := Build(dir, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "grub/extra.cfg", "set timeout=0")
	var line string
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasSuffix(l, " vmlinuz-6.1.0-18-amd64") {
			line = l
		}
	}
	for _, e := range now.Entries {
		if e.Path == "vmlinuz-6.1.0-18-amd64" {
			text = []byte(strings.Replace(string(text), line, "file "+hex.EncodeToString(e.SHA256[:])+" "+strconv.FormatInt(e.Size, 10)+" vmlinuz-6.1.0-18-amd64", 1))
		}
	}
	if err := os.WriteFile(mpath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := PlanSign(dir, k.keyring(t), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Summary(0)
	if p.LastVerified || p.LastProblem == nil || !strings.Contains(s, "does NOT verify") || !strings.Contains(s, `added   "grub/extra.cfg"`) {
		t.Fatalf("after a BAD signature:\n%s", s)
	}
}

// TestSignPlannedSignsWhatWasShown: a file changed between the screen and
// the signature is not signed: the manifest holds the hashes the owner
// approved, and the change shows at the next verification.
func TestSignPlannedSignsWhatWasShown(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	dev := openSWTPM(t, tpm.Version20)
	dir := makeBoot(t)
	p, err := PlanSign(dir, k.keyring(t), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "vmlinuz-6.1.0-18-amd64", "swapped while the owner read the screen")
	if _, err := SignPlanned(dir, p, k.signer(), dev, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(dir, k.keyring(t), dev)
	te := tamperOf(t, err)
	if len(te.Changed) != 1 || te.Changed[0].Path != "vmlinuz-6.1.0-18-amd64" {
		t.Fatalf("want the swapped kernel named, got %v", te)
	}
}
