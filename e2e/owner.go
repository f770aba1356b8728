//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Owner is the laptop's owner: an OpenPGP key made with real gpg, its secret part exported
// armored and passphrase protected (what the owner keeps on the key stick).
type Owner struct {
	Passphrase string
	SecretFile string // owner-secret.asc
	PublicFile string // owner.asc
	GnuPGHome  string
}

const ownerPassphrase = "owner-pass"

func newOwner(t *testing.T, dir string) *Owner {
	t.Helper()
	o := &Owner{Passphrase: ownerPassphrase, GnuPGHome: filepath.Join(dir, "gnupg"),
		SecretFile: filepath.Join(dir, "owner-secret.asc"), PublicFile: filepath.Join(dir, "owner.asc")}
	must(t, os.MkdirAll(o.GnuPGHome, 0o700))
	gpg := func(args ...string) []byte {
		cmd := exec.Command("gpg", append([]string{"--homedir", o.GnuPGHome, "--batch", "--pinentry-mode", "loopback", "--passphrase", o.Passphrase}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	gpg("--quick-gen-key", "Owner <owner@example.org>", "ed25519", "sign", "never")
	must(t, os.WriteFile(o.SecretFile, gpg("--armor", "--export-secret-keys", "owner@example.org"), 0o600))
	must(t, os.WriteFile(o.PublicFile, gpg("--armor", "--export", "owner@example.org"), 0o644))
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", o.GnuPGHome, "--kill", "all").Run() })
	return o
}

// cbfsAdd puts file into the flash image's CBFS under name (real cbfstool), replacing a file
// of that name.
func cbfsAdd(rom, file, name string) error {
	exec.Command("cbfstool", rom, "remove", "-n", name).Run() // absent the first time
	if b, err := exec.Command("cbfstool", rom, "add", "-f", file, "-n", name, "-t", "raw").CombinedOutput(); err != nil {
		return fmt.Errorf("cbfstool add %s: %v\n%s", name, err, b)
	}
	return nil
}

// payloadKernel is the kernel that runs glint: glint's own (scripts/build-kernel.sh), the one
// users flash. The OS on /boot keeps Debian's (cache/kernel, scripts/fetch-kernel.sh).
func payloadKernel(top string) string { return filepath.Join(top, "out", "kernel", "bzImage") }

// ownerPayload builds glint's initramfs with the owner's public key as /etc/glint/owner.asc:
// the UEFI machine has no CBFS, so the key travels in the payload (measured with the kernel
// by whoever loads it; in this bench QEMU's direct kernel boot).
func ownerPayload(top, out, ownerKey string) error {
	cmd := exec.Command("go", "run", "./cmd/mkpayload", "-init", filepath.Join(top, "out", "glint-payload"),
		"-file", "etc/glint/owner.asc="+ownerKey, "-o", out)
	cmd.Dir = top
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkpayload with the owner key: %v\n%s", err, b)
	}
	return nil
}
