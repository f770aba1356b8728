package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// glintRun runs the CLI in-process and returns stdout+stderr and the exit
// status main would use.
func glintRun(args ...string) (string, int) {
	return glintRunInput("", args...)
}

// glintRunInput is glintRun with input on stdin.
func glintRunInput(input string, args ...string) (string, int) {
	var out bytes.Buffer
	err := run(args, strings.NewReader(input), &out, &out)
	if err != nil {
		out.WriteString("glint: " + err.Error() + "\n")
		return out.String(), exitCode(err)
	}
	return out.String(), 0
}

func gpgKey(t *testing.T, name string) (home, id, pubFile string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not installed (apt-get install gnupg); CI installs it")
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
		out, err := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--quiet"}, args...)...).Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return string(out)
	}
	g("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", name+" <x@example.org>", "ed25519", "sign", "never")
	for _, l := range strings.Split(g("--with-colons", "--list-keys"), "\n") {
		if f := strings.Split(l, ":"); f[0] == "pub" {
			id = f[4]
		}
	}
	pubFile = filepath.Join(home, "pub.asc")
	g("--armor", "--output", pubFile, "--export", id)
	return home, id, pubFile
}

func TestSignVerifyCLI(t *testing.T) {
	home, id, pub := gpgKey(t, "Owner")
	_, otherID, _ := gpgKey(t, "Other")
	_ = otherID
	spec := swtpmtest.Start(t, tpm.Version20)
	boot := t.TempDir()
	os.WriteFile(filepath.Join(boot, "vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(boot, "initrd.img"), []byte("initrd"), 0o644)

	out, code := glintRun("--tpm", spec, "sign", "--yes", "--gpg-home", home, "--key", id, "--default", "linux", boot)
	if code != 0 || !strings.Contains(out, "signed "+boot) {
		t.Fatalf("sign: %d\n%s", code, out)
	}
	out, code = glintRun("--tpm", spec, "verify", "--pubkey", pub, boot)
	if code != 0 || !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("verify: %d\n%s", code, out)
	}

	// Keep the signed /boot, sign a newer one, put the old one back.
	old := t.TempDir()
	if err := exec.Command("cp", "-a", boot+"/.", old).Run(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(boot, "vmlinuz"), []byte("kernel 2"), 0o644)
	if out, code = glintRun("--tpm", spec, "sign", "--yes", "--gpg-home", home, "--key", id, boot); code != 0 {
		t.Fatalf("sign 2: %s", out)
	}
	out, code = glintRun("--tpm", spec, "verify", "--pubkey", pub, old)
	if code != 1 || !strings.Contains(out, "counter ahead") {
		t.Fatalf("rollback: %d\n%s", code, out)
	}

	// Tamper: each kind named, exit status 1.
	os.WriteFile(filepath.Join(boot, "vmlinuz"), []byte("evil"), 0o644)
	os.WriteFile(filepath.Join(boot, "evil.mod"), []byte("x"), 0o644)
	os.Remove(filepath.Join(boot, "initrd.img"))
	out, code = glintRun("--tpm", spec, "verify", "--pubkey", pub, boot)
	for _, want := range []string{`changed: "vmlinuz": signed sha256 `, `added:   "evil.mod"`, `removed: "initrd.img"`} {
		if code != 1 || !strings.Contains(out, want) {
			t.Fatalf("tamper: %d, want %q in\n%s", code, want, out)
		}
	}

	// manifest diff agrees (signature not checked), manifest expect records.
	out, code = glintRun("manifest", "diff", boot)
	if code != 1 || !strings.Contains(out, `changed "vmlinuz"`) {
		t.Fatalf("diff: %d\n%s", code, out)
	}
	if out, code = glintRun("manifest", "expect", "--source", "test", "--what", "v2", boot); code != 0 {
		t.Fatalf("expect: %s", out)
	}
	out, _ = glintRun("--tpm", spec, "verify", "--pubkey", pub, boot)
	if !strings.Contains(out, "expected by an UNSIGNED note: test v2") {
		t.Fatalf("note not shown:\n%s", out)
	}
	if out, _ = glintRun("manifest", "note", boot); !strings.Contains(out, "test v2") {
		t.Fatalf("note: %s", out)
	}
}

func TestVerifyCLIWrongKeyAndUsage(t *testing.T) {
	home, id, _ := gpgKey(t, "Mallory")
	_, _, ownerPub := gpgKey(t, "Owner")
	spec := swtpmtest.Start(t, tpm.Version20)
	boot := t.TempDir()
	os.WriteFile(filepath.Join(boot, "vmlinuz"), []byte("kernel"), 0o644)
	if out, code := glintRun("--tpm", spec, "sign", "--yes", "--gpg-home", home, "--key", id, boot); code != 0 {
		t.Fatalf("sign: %s", out)
	}
	out, code := glintRun("--tpm", spec, "verify", "--pubkey", ownerPub, boot)
	if code != 1 || !strings.Contains(out, "not an owner key") || !strings.Contains(out, strings.ToUpper(id)) {
		t.Fatalf("wrong key: %d\n%s", code, out)
	}
	t.Setenv("GLINT_PUBKEY", "")
	if _, code := glintRun("--tpm", spec, "verify", boot); code != 2 {
		t.Fatalf("verify without a key: exit %d, want 2", code)
	}
	if _, code := glintRun("verify", "--pubkey", ownerPub, boot, "extra"); code != 2 {
		t.Fatalf("extra argument: exit %d, want 2", code)
	}
}

func TestManifestHashCLI(t *testing.T) {
	boot := t.TempDir()
	os.WriteFile(filepath.Join(boot, "vmlinuz"), []byte("kernel"), 0o644)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"manifest", "hash", boot}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(stdout.Bytes())
	if err != nil || len(m.Entries) != 1 || m.Entries[0].Path != "vmlinuz" {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if !strings.Contains(stderr.String(), "hashed 1 files") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	err = run([]string{"manifest", "hash", filepath.Join(boot, "missing")}, nil, &stdout, &stderr)
	if err == nil || errors.Is(err, os.ErrExist) {
		t.Fatal("hashing a missing dir succeeded")
	}
}

// TestSignShowsPlanAndAsks: glint sign prints what it will sign next to the
// last manifest (a changed kernel with both hashes) and signs only after
// "y" on its input (or --yes).
func TestSignShowsPlanAndAsks(t *testing.T) {
	spec := swtpmtest.Start(t, tpm.Version20)
	home, id, _ := gpgKey(t, "Owner")
	boot := t.TempDir()
	if err := os.WriteFile(filepath.Join(boot, "vmlinuz-1"), []byte("kernel one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := glintRun("--tpm", spec, "sign", "--yes", "--gpg-home", home, "--key", id, boot); code != 0 {
		t.Fatalf("first signing: %d\n%s", code, out)
	}
	before, _ := os.ReadFile(filepath.Join(boot, "glint", "manifest"))
	if err := os.WriteFile(filepath.Join(boot, "vmlinuz-1"), []byte("kernel two"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := glintRunInput("n\n", "--tpm", spec, "sign", "--gpg-home", home, "--key", id, boot)
	if code == 0 || !regexp.MustCompile(`changed "vmlinuz-1": sha256 [0-9a-f]{64} \(10 bytes\) -> sha256 [0-9a-f]{64} \(10 bytes\)`).MatchString(out) || !strings.Contains(out, "not confirmed") {
		t.Fatalf("sign answered n: %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(boot, "glint", "manifest")); string(after) != string(before) {
		t.Fatal("signed without a yes")
	}
	if out, code := glintRunInput("y\n", "--tpm", spec, "sign", "--gpg-home", home, "--key", id, boot); code != 0 || !strings.Contains(out, "signed ") {
		t.Fatalf("sign answered y: %d\n%s", code, out)
	}
}
