package boot

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/gpgtest"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/rootfs"
	"github.com/glint-boot/glint/internal/tpm"
)

// Switching to restricted mode changes the measured configuration (PCR 7:
// the TOTP code stops matching); then nothing can be overridden: a
// tampered /boot cannot be forced and the recovery shell reboots.
func TestFlowRestrictedMode(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	b.ownerFiles = map[string][]byte{rom.OwnerConfigFile: []byte("boot.policy = restricted\n")}
	out := b.power(v, "p\n")
	if !strings.Contains(out, "TOTP REFUSED") || !strings.Contains(out, "PCR 7 changed") || !strings.Contains(out, "RESTRICTED BOOT") {
		t.Fatalf("mode switch not visible in the TOTP check:\n%s", out)
	}
	kpath := filepath.Join(b.bootDir, "vmlinuz-6.1.0-test")
	orig, _ := os.ReadFile(kpath)
	must(t, os.WriteFile(kpath, append(bytes.Clone(orig), "evil"...), 0o644))
	reboots := b.machine.reboots
	out = b.power(v, "f\n"+forcePhrase+"\nx\n")
	if !strings.Contains(out, "forced boot is disabled") || !strings.Contains(out, "no recovery shell; rebooting") ||
		strings.Contains(out, "glint-recovery#") || b.machine.reboots != reboots+1 || len(b.machine.kexecs) != 0 {
		t.Fatalf("restricted mode let something through (reboots %d, kexecs %d):\n%s", b.machine.reboots-reboots, len(b.machine.kexecs), out)
	}
}

// Basic mode checks nothing and says so: a changed kernel boots, under the
// UNPROTECTED banner, with no TOTP shown.
func TestFlowBasicMode(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	b.ownerFiles = map[string][]byte{rom.OwnerConfigFile: []byte("boot.policy = basic\n")}
	kpath := filepath.Join(b.bootDir, "vmlinuz-6.1.0-test")
	must(t, os.WriteFile(kpath, []byte("a kernel nobody signed"), 0o644))
	out := b.power(v, "")
	if !strings.Contains(out, "UNPROTECTED") || strings.Contains(out, "TOTP code") || len(b.machine.kexecs) != 1 ||
		string(b.machine.kexecs[0].Kernel.Data) != "a kernel nobody signed" {
		t.Fatalf("basic mode (kexecs %d):\n%s", len(b.machine.kexecs), out)
	}
}

// liveISO writes a live-system ISO (real xorriso) to dir.
func liveISO(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed (scripts/install-deps.sh installs it)")
	}
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "isolinux"), 0o755))
	must(t, os.MkdirAll(filepath.Join(src, "live"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "isolinux/isolinux.cfg"), []byte("label live\n kernel /live/vmlinuz\n append initrd=/live/initrd.img boot=live quiet\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "live/vmlinuz"), bytes.Repeat([]byte("L"), 70000), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "live/initrd.img"), []byte("live initrd"), 0o644))
	iso := filepath.Join(dir, "live.iso")
	if b, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	return iso
}

// The menu's USB boot: a distribution-signed ISO (its key in the firmware
// as glint/iso-keys.asc) boots its own entry, after PCR 4 moved; the same
// image changed on the stick is refused by name; in restricted mode an
// unsigned one is refused without a question.
func TestFlowUSBBoot(t *testing.T) {
	v := tpm.Version20
	distro := gpgtest.NewKey(t, "Live Distro", "ed25519")
	b := newBench(t, v)
	b.ownerFiles = map[string][]byte{"iso-keys.asc": distro.Public}
	b.power(v, ownerPass+"\ny\n\n")
	stick := t.TempDir()
	iso := liveISO(t, stick)
	distro.DetachSign(t, iso, iso+".sig", false)
	b.machine.usb = stick

	out := b.power(v, "p\n") // the TOTP shows: the extra key file is measured like the others
	if !strings.Contains(out, "TOTP code:") {
		t.Fatalf("no TOTP:\n%s", out)
	}
	// The default entry boots by itself first (countdown 0; kexec cannot
	// run in a test, so the menu follows); then u.
	n := len(b.machine.kexecs)
	out = b.power(v, "u\n\n\ne\n")
	if len(b.machine.kexecs) != n+2 || !strings.Contains(out, "verified: live.iso.sig, signed by Live Distro") {
		t.Fatalf("signed ISO did not boot:\n%s", out)
	}
	img := b.machine.kexecs[n+1]
	if !bytes.Equal(img.Kernel.Data, bytes.Repeat([]byte("L"), 70000)) || img.Cmdline != "boot=live quiet" {
		t.Fatalf("kexec image: %d bytes, %q", len(img.Kernel.Data), img.Cmdline)
	}
	if !regexp.MustCompile(`glint +PCR +4 [0-9a-f]+ usb\n`).MatchString(out) {
		t.Fatalf("PCR 4 not extended with usb:\n%s", out)
	}

	raw, _ := os.ReadFile(iso)
	raw[len(raw)-3000] ^= 1
	must(t, os.WriteFile(iso, raw, 0o644))
	n = len(b.machine.kexecs)
	out = b.power(v, "u\n\n\np\n")
	if len(b.machine.kexecs) != n+1 || !strings.Contains(out, "USB BOOT REFUSED") || !strings.Contains(out, `"live.iso" is TAMPERED`) {
		t.Fatalf("tampered ISO not refused by name:\n%s", out)
	}

	os.Remove(iso + ".sig")
	b.ownerFiles[rom.OwnerConfigFile] = []byte("boot.policy = restricted\n")
	out = b.power(v, "u\n\n\np\n")
	if !strings.Contains(out, "refused in restricted mode") || strings.Contains(out, unsignedPhrase) {
		t.Fatalf("unsigned ISO in restricted mode:\n%s", out)
	}
}

// rootfs.check = boot: a file changed on the root file system is named at
// boot, from the list the signed /boot carries.
func TestFlowRootfsCheck(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/sudo"), []byte("sudo"), 0o755))
	l, _, err := rootfs.Build(root, []string{"usr"}, nil, rootfs.Options{})
	must(t, err)
	must(t, rootfs.Write(b.bootDir, l)) // signed with /boot at set-up
	b.ownerFiles = map[string][]byte{rom.OwnerConfigFile: []byte("rootfs.check = boot\n")}
	b.machine.root = root
	b.power(v, ownerPass+"\ny\n\n")
	out := b.power(v, "p\n")
	if !strings.Contains(out, "root file system: verified (3 entries") {
		t.Fatalf("unchanged root:\n%s", out)
	}
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/sudo"), []byte("SUDO"), 0o755))
	n := len(b.machine.kexecs)
	out = b.power(v, "p\n")
	if !strings.Contains(out, `TAMPER: root file system: changed "usr/bin/sudo"`) || len(b.machine.kexecs) != n {
		t.Fatalf("changed sudo not named, or booted:\n%s", out)
	}
}
