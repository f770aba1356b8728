package approval

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// gpgHome makes a GNUPGHOME with one key made by gpg itself (algo e.g.
// "nistp256", "rsa2048", "ed25519"), passphrase-less so gpg-agent signs
// without a pinentry.
func gpgHome(t *testing.T, algo string) (home, fpr string) {
	t.Helper()
	if _, err := exec.LookPath("gpg-connect-agent"); err != nil {
		t.Skip("gpg not installed (scripts/install-deps.sh installs gnupg)")
	}
	home, err := os.MkdirTemp("/tmp", "glint-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	g := func(args ...string) string {
		out, err := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--no-tty", "--quiet"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	g("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "Owner <owner@example.org>", algo, "sign", "never")
	for _, l := range strings.Split(g("--with-colons", "--list-keys"), "\n") {
		if f := strings.Split(l, ":"); f[0] == "fpr" && fpr == "" {
			fpr = f[9]
		}
	}
	return home, fpr
}

// The whole approval path with real parts: a key gpg made (as on the
// owner's workstation or card) signs through gpg-agent, a real swtpm
// verifies and releases the secret sealed to that key.
func TestGPGAgentApprovalUnsealsOnSwtpm(t *testing.T) {
	dev, err := tpm.Open(swtpmtest.Start(t, tpm.Version20))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	auth := dev.(tpm.Authorizer)
	for _, algo := range []string{"nistp256", "rsa2048"} {
		t.Run(algo, func(t *testing.T) {
			home, fpr := gpgHome(t, algo)
			s := &GPGAgent{Home: home, KeyID: fpr}
			pub, err := s.Public()
			if err != nil {
				t.Fatal(err)
			}
			now, err := dev.ReadPCRs(tpm.SHA256, []int{0, 2, 7})
			if err != nil {
				t.Fatal(err)
			}
			// Sealed to a state the TPM is not in (as after an update):
			// only the approval opens it.
			sealedTo := map[int][]byte{0: now[0], 2: bytes.Repeat([]byte{0xee}, 32), 7: now[7]}
			blob, err := auth.SealAuthorized([]byte("totp secret"), pub, []byte(PurposeTOTP), tpm.PCRPolicy{Bank: tpm.SHA256, Values: sealedTo}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := auth.UnsealAuthorized(blob, nil, nil); err == nil {
				t.Fatal("unsealed without an approval in a state it was not sealed to")
			}
			a, err := Approve(tpm.PCRPolicy{Bank: tpm.SHA256, Values: now}, PurposeTOTP, s)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := Save(dir, a); err != nil {
				t.Fatal(err)
			}
			list, errs := Load(dir, PurposeTOTP)
			if len(errs) != 0 || len(list) != 1 {
				t.Fatalf("load: %v %v", list, errs)
			}
			found := Find(list, tpm.PCRPolicy{Bank: tpm.SHA256, Values: now}, pub)
			if found == nil {
				t.Fatal("Find: no approval for the current values")
			}
			got, err := auth.UnsealAuthorized(blob, found, nil)
			if err != nil || string(got) != "totp secret" {
				t.Fatalf("%q %v", got, err)
			}
		})
	}
}

func TestEd25519KeyIsNamedNotUsable(t *testing.T) {
	home, fpr := gpgHome(t, "ed25519")
	_, err := (&GPGAgent{Home: home, KeyID: fpr}).Public()
	if err == nil || !strings.Contains(err.Error(), "nistp256 sign") {
		t.Fatalf("%v", err)
	}
}

func TestSaveLoadFind(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPath := filepath.Join(t.TempDir(), "approval.pem")
	if err := WriteKeyFile(keyPath, k); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(keyPath, k); err == nil {
		t.Fatal("WriteKeyFile overwrote a key")
	}
	s := &KeyFile{Path: keyPath}
	dir := t.TempDir()
	state := func(b byte) tpm.PCRPolicy {
		return tpm.PCRPolicy{Bank: tpm.SHA256, Values: map[int][]byte{2: bytes.Repeat([]byte{b}, 32), 7: make([]byte, 32)}}
	}
	for _, b := range []byte{1, 2} {
		a, err := Approve(state(b), PurposeTOTP, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Save(dir, a); err != nil {
			t.Fatal(err)
		}
	}
	disk, _ := Approve(state(1), PurposeDisk, s)
	Save(dir, disk)
	// Someone writes junk and a forged approval next to them.
	os.WriteFile(filepath.Join(dir, "glint-totp-junk.glap"), []byte("GLAP junk"), 0o644)
	forged, _ := Approve(state(3), PurposeTOTP, s)
	forged.Policy = state(4)
	raw, _ := forged.Marshal()
	os.WriteFile(filepath.Join(dir, "glint-totp-forged.glap"), raw, 0o644)

	list, errs := Load(dir, PurposeTOTP)
	if len(list) != 2 || len(errs) != 2 {
		t.Fatalf("loaded %d, errors %v", len(list), errs)
	}
	pub, _ := s.Public()
	if a := Find(list, state(2), pub); a == nil || !bytes.Equal(a.Policy.Values[2], state(2).Values[2]) {
		t.Fatal("Find state 2")
	}
	if Find(list, state(4), pub) != nil {
		t.Fatal("found an approval for a state nobody signed")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if Find(list, state(2), other.Public()) != nil {
		t.Fatal("found an approval by another key")
	}
	if !strings.Contains(Describe(list[0]), "glint-totp: sha256 PCRs 2=") {
		t.Errorf("%s", Describe(list[0]))
	}
	if l, _ := Load(dir, PurposeDisk); len(l) != 1 {
		t.Errorf("disk approvals: %d", len(l))
	}
}

func TestParseSigVal(t *testing.T) {
	r := bytes.Repeat([]byte{0x11}, 32)
	s := bytes.Repeat([]byte{0x22}, 32)
	ec := append(append(append(append([]byte("(7:sig-val(5:ecdsa(1:r32:"), r...), []byte(")(1:s32:")...), s...), []byte(")))")...)
	scheme, der, err := parseSigVal(ec, 0)
	if err != nil || scheme != tpm.SchemeECDSA || len(der) < 70 {
		t.Fatalf("%v %x %v", scheme, der, err)
	}
	sig := bytes.Repeat([]byte{0x33}, 255) // leading zero stripped by libgcrypt
	rsaSexp := append(append([]byte("(7:sig-val(3:rsa(1:s255:"), sig...), []byte(")))")...)
	scheme, out, err := parseSigVal(rsaSexp, 256)
	if err != nil || scheme != tpm.SchemeRSASSA || len(out) != 256 || out[0] != 0 {
		t.Fatalf("%v %d %v", scheme, len(out), err)
	}
	for _, bad := range []string{"", "(", "(7:sig-val", "(7:sig-val(5:eddsa(1:r1:x)(1:s1:y)))", "(99999:x)", "(7:sig-val(3:rsa(1:s300:" + strings.Repeat("x", 300) + ")))"} {
		if _, _, err := parseSigVal([]byte(bad), 256); !errors.Is(err, errSexp) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestKeyFromOwnerFiles(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemPub, _ := PEMPublic(k.Public())
	got, from, err := KeyFromOwnerFiles(map[string][]byte{"approval.pem": pemPub, "owner.asc": []byte("x")})
	if err != nil || from != "approval.pem" || !k.PublicKey.Equal(got) {
		t.Fatalf("pem: %v %s %v", got, from, err)
	}
	// An owner key with a P-256 signing key is its own approval key; an
	// Ed25519 one is not.
	home, fpr := gpgHome(t, "nistp256")
	pub, _ := exec.Command("gpg", "--homedir", home, "--armor", "--export", fpr).Output()
	want, _ := (&GPGAgent{Home: home, KeyID: fpr}).Public()
	got, from, err = KeyFromOwnerFiles(map[string][]byte{"owner.asc": pub})
	if err != nil || from != "owner.asc" || !want.(*ecdsa.PublicKey).Equal(got) {
		t.Fatalf("owner.asc: %v %s %v", got, from, err)
	}
	home2, fpr2 := gpgHome(t, "ed25519")
	ed, _ := exec.Command("gpg", "--homedir", home2, "--armor", "--export", fpr2).Output()
	if _, _, err := KeyFromOwnerFiles(map[string][]byte{"owner.asc": ed}); !errors.Is(err, ErrNoApprovalKey) {
		t.Fatalf("ed25519 owner: %v", err)
	}
	if _, _, err := KeyFromOwnerFiles(map[string][]byte{"approval.asc": ed}); !errors.Is(err, ErrNoApprovalKey) {
		t.Fatalf("ed25519 approval.asc: %v", err)
	}
	if _, _, err := KeyFromOwnerFiles(map[string][]byte{"approval.pem": []byte("junk")}); err == nil {
		t.Fatal("junk approval.pem accepted")
	}
}

// The boot flow's call: sealed-to state first, then the approval for now.
func TestUnsealSealedToThenApproved(t *testing.T) {
	dev, err := tpm.Open(swtpmtest.Start(t, tpm.Version20))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	auth := dev.(tpm.Authorizer)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPath := filepath.Join(t.TempDir(), "a.pem")
	WriteKeyFile(keyPath, k)
	s := &KeyFile{Path: keyPath}
	read := func() tpm.PCRPolicy {
		v, err := dev.ReadPCRs(tpm.SHA256, []int{0, 2, 7})
		if err != nil {
			t.Fatal(err)
		}
		return tpm.PCRPolicy{Bank: tpm.SHA256, Values: v}
	}
	blob, err := auth.SealAuthorized([]byte("secret"), k.Public(), []byte(PurposeTOTP), read(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tpm.IsAuthorizedBlob(blob) {
		t.Fatal("IsAuthorizedBlob")
	}
	dir := t.TempDir()
	got, a, err := Unseal(auth, blob, dir, PurposeTOTP, read(), k.Public(), nil)
	if err != nil || a != nil || string(got) != "secret" {
		t.Fatalf("sealed-to state: %q %v %v", got, a, err)
	}
	dev.Extend(2, []byte("new firmware"))
	var pe *tpm.PolicyError
	if _, _, err := Unseal(auth, blob, dir, PurposeTOTP, read(), k.Public(), nil); !errors.As(err, &pe) {
		t.Fatalf("unapproved state: %v", err)
	}
	// An approval of the same values by another key sorts first; the
	// owner's is found after it.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPath := filepath.Join(t.TempDir(), "o.pem")
	WriteKeyFile(otherPath, other)
	byOther, _ := Approve(read(), PurposeTOTP, &KeyFile{Path: otherPath})
	ap, err := Approve(read(), PurposeTOTP, s)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := Save(dir, byOther)
	p2, _ := Save(dir, ap)
	if p1 == p2 {
		t.Fatal("two keys' approvals of the same values share a file name")
	}
	got, a, err = Unseal(auth, blob, dir, PurposeTOTP, read(), nil, nil)
	if err != nil || a == nil || string(got) != "secret" {
		t.Fatalf("approved state: %q %v %v", got, a, err)
	}
}

// Approvals of one state at several epochs: Find skips those the counter
// has passed and takes the lowest of the rest (using it retires no more
// than needed); Superseded counts the passed ones, to name them.
func TestFindByEpoch(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPath := filepath.Join(t.TempDir(), "approval.pem")
	if err := WriteKeyFile(keyPath, k); err != nil {
		t.Fatal(err)
	}
	s := &KeyFile{Path: keyPath}
	name := append([]byte{0, 0x0b}, bytes.Repeat([]byte{7}, 32)...)
	at := func(v uint64) *tpm.Epoch { return &tpm.Epoch{Index: EpochIndex, Name: name, Value: v} }
	state := func(e *tpm.Epoch) tpm.PCRPolicy {
		return tpm.PCRPolicy{Bank: tpm.SHA256, Values: map[int][]byte{2: bytes.Repeat([]byte{5}, 32), 7: make([]byte, 32)}, Epoch: e}
	}
	dir := t.TempDir()
	for _, v := range []uint64{6, 3, 4} {
		a, err := Approve(state(at(v)), PurposeTOTP, s)
		if err != nil {
			t.Fatal(err)
		}
		if string(a.PolicyRef) != PurposeTOTP+tpm.EpochRefSuffix {
			t.Fatalf("an epoch-bound approval for %q", a.PolicyRef)
		}
		if _, err := Save(dir, a); err != nil {
			t.Fatal(err)
		}
	}
	list, errs := Load(dir, PurposeTOTP)
	if len(list) != 3 || len(errs) != 0 {
		t.Fatalf("loaded %d (one file per epoch), errors %v", len(list), errs)
	}
	if a := Find(list, state(at(4)), k.Public()); a == nil || a.Policy.Epoch.Value != 4 {
		t.Fatalf("counter at 4: found %v", a)
	}
	if n := Superseded(list, state(at(4))); n != 1 {
		t.Fatalf("counter at 4: %d superseded, want 1", n)
	}
	if a := Find(list, state(at(7)), k.Public()); a != nil {
		t.Fatalf("counter at 7: found %s", Describe(a))
	}
	if n := Superseded(list, state(at(7))); n != 3 {
		t.Fatalf("counter at 7: %d superseded, want 3", n)
	}
	if !strings.Contains(Describe(list[0]), " epoch ") {
		t.Errorf("Describe does not name the epoch: %s", Describe(list[0]))
	}
}
