// Package hooks_test runs the OS-side hook scripts in this directory against
// a fake /boot with the real glint binary, real gpg and (for signing) swtpm.
package hooks_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

var (
	buildOnce sync.Once
	glintBin  string
	buildErr  error
)

// glint builds cmd/glint once per test binary.
func glint(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "glint-bin-")
		if err != nil {
			buildErr = err
			return
		}
		glintBin = filepath.Join(dir, "glint")
		// go test runs in the package directory (runtime.Caller would give
		// a module path under -trimpath, which make test uses).
		cmd := exec.Command("go", "build", "-o", glintBin, "./cmd/glint")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return glintBin
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "build cmd/glint: " + e.err.Error() + "\n" + e.out }

type owner struct{ home, id, pubFile string }

func newOwner(t *testing.T) *owner {
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
	run(t, nil, "gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", "Owner <owner@example.org>", "ed25519", "sign", "never")
	out := run(t, nil, "gpg", "--homedir", home, "--with-colons", "--list-keys")
	var id string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Split(l, ":"); f[0] == "pub" {
			id = f[4]
		}
	}
	pub := filepath.Join(home, "owner.asc")
	run(t, nil, "gpg", "--homedir", home, "--armor", "--output", pub, "--export", id)
	return &owner{home: home, id: id, pubFile: pub}
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.String()
}

// fakeBoot is a Debian-like /boot signed by the owner through glint sign
// on a fresh swtpm; returns the dir and the GLINT_TPM spec.
func fakeBoot(t *testing.T, o *owner) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"vmlinuz-6.1.0-17-amd64":    "old kernel",
		"initrd.img-6.1.0-17-amd64": "old initrd",
		"grub/grub.cfg":             "menuentry 6.1.0-17\n",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := swtpmtest.Start(t, tpm.Version20)
	run(t, []string{"GLINT_TPM=" + spec}, glint(t), "sign", "--yes", "--gpg-home", o.home, "--key", o.id, dir)
	return dir, spec
}

// kernelUpdate does to /boot what installing linux-image-6.1.0-18 does.
func kernelUpdate(t *testing.T, dir string) {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "vmlinuz-6.1.0-18-amd64"), []byte("new kernel"), 0o644)
	os.WriteFile(filepath.Join(dir, "initrd.img-6.1.0-18-amd64"), []byte("new initrd"), 0o644)
	os.WriteFile(filepath.Join(dir, "grub/grub.cfg"), []byte("menuentry 6.1.0-18\nmenuentry 6.1.0-17\n"), 0o644)
}

// hook runs a hook script with a hook.conf pointing at dir.
func hook(t *testing.T, dir, spec string, conf string, extraEnv []string, script string, args ...string) string {
	t.Helper()
	hooks, err := os.Getwd() // go test runs in this package's directory
	if err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(t.TempDir(), "hook.conf")
	conf = "GLINT='" + glint(t) + "'\nBOOT='" + dir + "'\n" + conf
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append([]string{"GLINT_HOOK_CONF=" + cf, "GLINT_HOOK=" + filepath.Join(hooks, "glint-boot-hook"), "GLINT_TPM=" + spec}, extraEnv...)
	return run(t, env, filepath.Join(hooks, script), args...)
}

func verify(t *testing.T, o *owner, dir, spec string) error {
	cmd := exec.Command(glint(t), "verify", "--pubkey", o.pubFile, dir)
	cmd.Env = append(os.Environ(), "GLINT_TPM="+spec)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &buildError{out: string(out), err: err}
	}
	return nil
}

func TestDebianHookSignsWhenKeyPresent(t *testing.T) {
	o := newOwner(t)
	dir, spec := fakeBoot(t, o)
	kernelUpdate(t, dir)
	if verify(t, o, dir, spec) == nil {
		t.Fatal("changed /boot verified before signing")
	}
	out := hook(t, dir, spec, "SIGN=auto\nGPG_HOME="+o.home+"\nKEY="+o.id+"\n", nil, "debian/zzz-glint", "6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64")
	if !strings.Contains(out, "re-signed /boot after debian-kernel 6.1.0-18-amd64") {
		t.Fatalf("hook output:\n%s", out)
	}
	if err := verify(t, o, dir, spec); err != nil {
		t.Fatalf("after re-signing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "glint", manifest.ExpectedNoteName)); err == nil {
		t.Fatal("note left after signing")
	}
}

func TestHooksRecordWhenKeyAbsent(t *testing.T) {
	o := newOwner(t)
	cases := []struct {
		name, conf, script string
		env                []string
		args               []string
		source, what       string
	}{
		{"debian no key configured", "SIGN=auto\n", "debian/zzz-glint", nil,
			[]string{"6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64"}, "debian-kernel", "6.1.0-18-amd64"},
		{"debian under dpkg", "SIGN=auto\nGPG_HOME=" + o.home + "\nKEY=" + o.id + "\n", "debian/zzz-glint",
			[]string{"DPKG_MAINTSCRIPT_PACKAGE=linux-image-6.1.0-18-amd64"},
			[]string{"6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64"}, "debian-kernel", "6.1.0-18-amd64"},
		{"debian SIGN=never", "SIGN=never\nGPG_HOME=" + o.home + "\nKEY=" + o.id + "\n", "debian/zzz-glint", nil,
			[]string{"6.1.0-18-amd64"}, "debian-kernel", "6.1.0-18-amd64"},
		{"fedora kernel-install key not in this gpg home", "SIGN=auto\nGPG_HOME=" + t.TempDir() + "\nKEY=" + o.id + "\n",
			"fedora/95-glint.install", nil,
			[]string{"add", "6.1.0-18-amd64", "/boot/entry", "/boot/vmlinuz-6.1.0-18-amd64"}, "kernel-install", "add-6.1.0-18-amd64"},
		{"common hook as the qubes action runs it", "", "glint-boot-hook", nil,
			[]string{"qubes-xen", "xen-4.17.3-1.fc37"}, "qubes-xen", "xen-4.17.3-1.fc37"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, spec := fakeBoot(t, o)
			kernelUpdate(t, dir)
			start := time.Now().Add(-time.Second)
			out := hook(t, dir, spec, c.conf, c.env, c.script, c.args...)
			if !strings.Contains(out, "is NOT signed") {
				t.Fatalf("hook output:\n%s", out)
			}
			n, err := manifest.ReadExpectedNote(dir)
			if err != nil || n == nil || len(n.Updates) != 1 {
				t.Fatalf("note %+v %v", n, err)
			}
			u := n.Updates[0]
			if u.Source != c.source || u.What != c.what || u.Time.Before(start.Truncate(time.Second)) {
				t.Fatalf("update %+v", u)
			}
			want := []string{"grub/grub.cfg", "initrd.img-6.1.0-18-amd64", "vmlinuz-6.1.0-18-amd64"}
			if strings.Join(u.Files, ",") != strings.Join(want, ",") {
				t.Fatalf("files %q, want %q", u.Files, want)
			}
			if n.Explain("vmlinuz-6.1.0-18-amd64") == nil {
				t.Fatal("Explain does not find the kernel")
			}
			// The note never makes the change acceptable.
			if err := verify(t, o, dir, spec); err == nil || !strings.Contains(err.Error(), "expected by an UNSIGNED note") {
				t.Fatalf("verify after the note: %v", err)
			}
		})
	}
}

func TestHookNoOp(t *testing.T) {
	o := newOwner(t)
	t.Run("no manifest", func(t *testing.T) {
		dir := t.TempDir()
		hook(t, dir, "", "", nil, "debian/zzz-glint", "6.1.0-18-amd64")
		if _, err := os.Stat(filepath.Join(dir, "glint")); err == nil {
			t.Fatal("hook created glint state in a /boot glint does not manage")
		}
	})
	t.Run("unchanged", func(t *testing.T) {
		dir, spec := fakeBoot(t, o)
		hook(t, dir, spec, "", nil, "debian/zzz-glint", "6.1.0-17-amd64")
		if n, _ := manifest.ReadExpectedNote(dir); n != nil {
			t.Fatal("note written for an unchanged /boot")
		}
	})
	t.Run("fedora other commands", func(t *testing.T) {
		dir, spec := fakeBoot(t, o)
		kernelUpdate(t, dir)
		hook(t, dir, spec, "", nil, "fedora/95-glint.install", "inspect", "6.1.0-18-amd64")
		if n, _ := manifest.ReadExpectedNote(dir); n != nil {
			t.Fatal("note written for kernel-install inspect")
		}
	})
}
