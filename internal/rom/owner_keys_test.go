package rom

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// gpgHome is a throw-away GnuPG home with real keys made by gpg.
type gpgHome struct {
	t   *testing.T
	dir string
}

func newGPG(t *testing.T) *gpgHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not installed (scripts/install-deps.sh installs it)")
	}
	dir, err := os.MkdirTemp("/tmp", "glint-rom-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", dir, "--kill", "all").Run()
		os.RemoveAll(dir)
	})
	return &gpgHome{t, dir}
}

func (g *gpgHome) run(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", g.dir, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		g.t.Fatalf("gpg %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// genKey makes a key and returns its fingerprint; extra are gpg options
// placed before the command (e.g. --faked-system-time).
func (g *gpgHome) genKey(uid, algo, usage, expire string, extra ...string) string {
	g.t.Helper()
	g.run(append(extra, "--quick-gen-key", uid, algo, usage, expire)...)
	var fpr string
	for _, l := range strings.Split(g.run("--with-colons", "--list-keys", uid), "\n") {
		if f := strings.Split(l, ":"); f[0] == "fpr" && fpr == "" {
			fpr = f[9]
		}
	}
	return fpr
}

func (g *gpgHome) export(fpr string) []byte {
	return []byte(g.run("--armor", "--export", fpr))
}

// revoke imports the revocation certificate gpg made with the key.
func (g *gpgHome) revoke(fpr string) {
	g.t.Helper()
	rev, err := os.ReadFile(filepath.Join(g.dir, "openpgp-revocs.d", fpr+".rev"))
	if err != nil {
		g.t.Fatal(err)
	}
	// gpg neutralises the stored certificate with a leading ':'
	fixed := regexp.MustCompile(`(?m)^:-----BEGIN`).ReplaceAll(rev, []byte("-----BEGIN"))
	p := filepath.Join(g.dir, "rev.asc")
	os.WriteFile(p, fixed, 0o600)
	g.run("--import", p)
}

func TestCheckOwnerKeys(t *testing.T) {
	g := newGPG(t)
	good := g.genKey("Owner <owner@example.org>", "ed25519", "sign", "never")
	rsa := g.genKey("RSA Owner <rsa@example.org>", "rsa3072", "sign", "2y")
	past := []string{"--faked-system-time", "20200101T000000"}
	expired := g.genKey("Expired <exp@example.org>", "ed25519", "sign", "1d", past...)
	revoked := g.genKey("Revoked <rev@example.org>", "ed25519", "sign", "never")
	g.revoke(revoked)
	certOnly := g.genKey("Encrypt only <enc@example.org>", "ed25519", "cert", "never")
	g.run("--quick-add-key", certOnly, "cv25519", "encr", "never")
	oldSub := g.genKey("Old subkey <sub@example.org>", "ed25519", "cert", "never", past...)
	g.run("--faked-system-time", "20200101T000000", "--quick-add-key", oldSub, "ed25519", "sign", "1d")
	now := time.Now()

	for _, tc := range []struct {
		name    string
		file    []byte
		problem string // "" = usable
	}{
		{"ed25519 signing key", g.export(good), ""},
		{"rsa key expiring later", g.export(rsa), ""},
		{"two good keys in one block", []byte(g.run("--armor", "--export", good, rsa)), ""},
		{"two armored blocks", append(g.export(good), g.export(rsa)...), "armored blocks"},
		{"expired", g.export(expired), "expired on 2020-01-02"},
		{"revoked", g.export(revoked), "revoked"},
		{"no signing key", g.export(certOnly), "no signing key"},
		{"signing subkey expired", g.export(oldSub), "no signing key"},
		{"good and revoked", []byte(g.run("--armor", "--export", good, revoked)), "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := CheckOwnerKeys(tc.file, now)
			if tc.problem == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if k.SigningKey == "" || k.Problem != "" || len(k.UserIDs) == 0 {
						t.Fatalf("%+v", k)
					}
				}
				return
			}
			if !errors.Is(err, ErrUnusableKey) || !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("want %q, got %v", tc.problem, err)
			}
		})
	}
	secret := []byte(g.run("--armor", "--export-secret-keys", good))
	if _, err := CheckOwnerKeys(secret, now); !errors.Is(err, ErrUnusableKey) || !strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("a secret key was accepted: %v", err)
	}
	for _, junk := range [][]byte{nil, []byte("not a key"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n")} {
		if _, err := CheckOwnerKeys(junk, now); !errors.Is(err, ErrUnusableKey) {
			t.Fatalf("%q accepted: %v", junk, err)
		}
	}
	// The expiry is checked at the time given: the expired key was fine in 2020.
	if _, err := CheckOwnerKeys(g.export(expired), time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("at its creation: %v", err)
	}
}

func TestPersonalize(t *testing.T) {
	g := newGPG(t)
	keys := g.export(g.genKey("Owner <owner@example.org>", "ed25519", "sign", "never"))
	bin := needCbfstool(t)
	for name, raw := range testROMs(t) {
		if name == "synthetic" {
			continue // already holds glint/ files of its own
		}
		t.Run(name, func(t *testing.T) {
			img, err := FromBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			config := []byte("countdown = 3\ntotp.account = test laptop\n")
			out, infos, err := Personalize(img, Personalization{Keys: keys, Config: config})
			if err != nil {
				t.Fatal(err)
			}
			if len(infos) != 1 || infos[0].UserIDs[0] != "Owner <owner@example.org>" {
				t.Fatalf("%+v", infos)
			}
			// cbfstool reads back exactly what went in
			p := writeTemp(t, "rom.bin", out.Data)
			for cbfsName, want := range map[string][]byte{OwnerKeyCBFSName: keys, OwnerConfigCBFSName: config} {
				x := filepath.Join(t.TempDir(), "x")
				runTool(t, bin, p, "extract", "-n", cbfsName, "-f", x)
				if got, _ := os.ReadFile(x); !bytes.Equal(got, want) {
					t.Fatalf("%s: cbfstool extracts %q", cbfsName, got)
				}
			}
			// and the boot flow's view of the owner files
			files, err := OwnerFiles(out)
			if err != nil || !bytes.Equal(files["owner.asc"], keys) || !bytes.Equal(files["config"], config) || len(files) != 2 {
				t.Fatalf("%v %v", files, err)
			}
			// A second run replaces the keys and keeps the configuration.
			keys2 := append(bytes.Clone(keys), '\n')
			out2, _, err := Personalize(out, Personalization{Keys: keys2})
			if err != nil {
				t.Fatal(err)
			}
			files2, _ := OwnerFiles(out2)
			if !bytes.Equal(files2["owner.asc"], keys2) || !bytes.Equal(files2["config"], config) {
				t.Fatalf("%q", files2)
			}
			// Nothing but CBFS changed, and only coreboot's files stayed where they were.
			a, _ := img.FMAP.Area("COREBOOT")
			if !bytes.Equal(out2.Data[:a.Offset], raw[:a.Offset]) {
				t.Fatal("bytes before the CBFS changed")
			}
			for _, stage := range []string{"fallback/romstage", "fallback/ramstage", "fallback/payload", "bootblock"} {
				f1, _ := img.File("COREBOOT", stage)
				f2, _ := out2.File("COREBOOT", stage)
				if f1 == nil || f2 == nil || f1.Offset != f2.Offset || !bytes.Equal(f1.Data, f2.Data) {
					t.Fatalf("%s moved or changed", stage)
				}
			}
		})
	}
}

func TestPersonalizeRefuses(t *testing.T) {
	g := newGPG(t)
	good := g.genKey("Owner <owner@example.org>", "ed25519", "sign", "never")
	expired := g.genKey("Expired <exp@example.org>", "ed25519", "sign", "1d", "--faked-system-time", "20200101T000000")
	fx := buildImage(t)
	raw, _ := os.ReadFile(fx.rom)
	img, _ := FromBytes(raw)
	orig := bytes.Clone(raw)
	for _, tc := range []struct {
		name string
		p    Personalization
		want string
	}{
		{"expired key", Personalization{Keys: g.export(expired)}, "expired"},
		{"secret key", Personalization{Keys: []byte(g.run("--armor", "--export-secret-keys", good))}, "SECRET"},
		{"bad config", Personalization{Keys: g.export(good), Config: []byte("countdown = 3\ncoutndown = 5\n")}, "line 2"},
		{"config over 64 KiB", Personalization{Keys: g.export(good), Config: bytes.Repeat([]byte("# pad\n"), 20000)}, "more than"},
		{"no key", Personalization{}, "unusable owner key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Personalize(img, tc.p)
			if err == nil || out != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if !bytes.Equal(img.Data, orig) {
				t.Fatal("the image changed")
			}
		})
	}
}
