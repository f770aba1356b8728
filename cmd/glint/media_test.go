package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/gpgtest"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// mkISO builds a live-ISO-shaped image with the real xorriso.
func mkISO(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed (scripts/install-deps.sh installs it)")
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "isolinux"), 0o755)
	os.MkdirAll(filepath.Join(src, "live"), 0o755)
	os.WriteFile(filepath.Join(src, "isolinux/isolinux.cfg"), []byte("label live\n kernel /live/vmlinuz\n append initrd=/live/initrd.img boot=live quiet\n"), 0o644)
	os.WriteFile(filepath.Join(src, "live/vmlinuz"), bytes.Repeat([]byte("k"), 100000), 0o644)
	os.WriteFile(filepath.Join(src, "live/initrd.img"), []byte("initrd"), 0o644)
	iso := filepath.Join(dir, "live.iso")
	if b, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "LIVE", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	return iso
}

func TestISOCommands(t *testing.T) {
	dir := t.TempDir()
	iso := mkISO(t, dir)
	distro := gpgtest.NewKey(t, "Live Distro", "ed25519")
	keys := filepath.Join(dir, "distro.asc")
	os.WriteFile(keys, distro.Public, 0o644)

	out, code := glintRun("iso", "ls", "-R", iso)
	if code != 0 || !strings.Contains(out, `"live/vmlinuz"`) || !strings.Contains(out, "rockridge") {
		t.Fatalf("iso ls: %d\n%s", code, out)
	}
	out, code = glintRun("iso", "entries", iso)
	if code != 0 || !strings.Contains(out, "kernel  live/vmlinuz") || !strings.Contains(out, "boot=live quiet") {
		t.Fatalf("iso entries: %d\n%s", code, out)
	}
	out, code = glintRun("iso", "cat", iso, "isolinux/isolinux.cfg")
	if code != 0 || !strings.Contains(out, "label live") {
		t.Fatalf("iso cat: %d\n%s", code, out)
	}

	out, code = glintRun("iso", "verify", "--keys", keys, iso)
	if code != 1 || !strings.Contains(out, `"live.iso" is not signed`) {
		t.Fatalf("unsigned: %d\n%s", code, out)
	}
	cmd := exec.Command("sha256sum", "live.iso")
	cmd.Dir = dir
	sums, _ := cmd.Output()
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums, 0o644)
	distro.DetachSign(t, filepath.Join(dir, "SHA256SUMS"), filepath.Join(dir, "SHA256SUMS.sign"), true)
	out, code = glintRun("iso", "verify", "--keys", keys, iso)
	if code != 0 || !strings.Contains(out, "OK: live.iso") || !strings.Contains(out, "SHA256SUMS (SHA256SUMS.sign), signed by Live Distro") {
		t.Fatalf("signed: %d\n%s", code, out)
	}
	// The built-in keys alone do not know this distribution.
	out, code = glintRun("iso", "verify", iso)
	if code != 1 || !strings.Contains(out, "not by a key this machine trusts") {
		t.Fatalf("untrusted: %d\n%s", code, out)
	}
	b, _ := os.ReadFile(iso)
	b[len(b)/2] ^= 1
	os.WriteFile(iso, b, 0o644)
	out, code = glintRun("iso", "verify", "--keys", keys, iso)
	if code != 1 || !strings.Contains(out, `"live.iso" is TAMPERED`) {
		t.Fatalf("tampered: %d\n%s", code, out)
	}
	out, code = glintRun("iso", "keys")
	if code != 0 || !strings.Contains(out, "DF9B9C49EAA9298432589D76DA87E80D6294BE9B") || !strings.Contains(out, "Tails") {
		t.Fatalf("iso keys: %d\n%s", code, out)
	}
}

func TestRootfsSignCheck(t *testing.T) {
	home, id, pub := gpgKey(t, "Owner")
	spec := swtpmtest.Start(t, tpm.Version20)
	boot, root := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(boot, "vmlinuz"), []byte("kernel"), 0o644)
	for name, data := range map[string]string{"usr/bin/sudo": "sudo", "usr/lib/libc.so.6": "libc", "etc/passwd": "root"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(data), 0o755)
	}
	os.Symlink("usr/bin", filepath.Join(root, "bin"))

	out, code := glintRun("--tpm", spec, "rootfs", "sign", "--yes", "--root", root, "--gpg-home", home, "--key", id, boot)
	if code != 0 || !strings.Contains(out, "glint-rootfs.list") {
		t.Fatalf("rootfs sign: %d\n%s", code, out)
	}
	out, code = glintRun("--tpm", spec, "rootfs", "check", "--root", root, "--pubkey", pub, boot)
	if code != 0 || !strings.HasPrefix(out, "OK: ") || !strings.Contains(out, "rollback counter checked") {
		t.Fatalf("rootfs check: %d\n%s", code, out)
	}
	os.WriteFile(filepath.Join(root, "usr/bin/sudo"), []byte("SUDO"), 0o755)
	out, code = glintRun("--tpm", spec, "rootfs", "check", "--root", root, "--pubkey", pub, boot)
	if code != 1 || !strings.Contains(out, `changed "usr/bin/sudo"`) {
		t.Fatalf("changed sudo: %d\n%s", code, out)
	}
	// Editing the list to match is tampering with /boot.
	os.WriteFile(filepath.Join(boot, "glint-rootfs.list"), []byte("glint-rootfs 1\ndirs usr\n"), 0o644)
	out, code = glintRun("--tpm", spec, "rootfs", "check", "--root", root, "--pubkey", pub, boot)
	if code != 1 || !strings.Contains(out, "glint-rootfs.list") {
		t.Fatalf("edited list: %d\n%s", code, out)
	}
}

func TestPolicyCommands(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("# mine\ncountdown = 3\n"), 0o644)
	out, code := glintRun("policy", "set", "--config", cfg, "restricted")
	if code != 0 || !strings.Contains(out, "normal -> restricted") {
		t.Fatalf("set: %d\n%s", code, out)
	}
	b, _ := os.ReadFile(cfg)
	if string(b) != "# mine\ncountdown = 3\nboot.policy = restricted\n" {
		t.Fatalf("config now %q", b)
	}
	out, code = glintRun("policy", "show", "--config", cfg)
	if code != 0 || !strings.Contains(out, "forced boot REFUSED, unsigned ISO REFUSED, recovery shell REFUSED") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	if out, code = glintRun("policy", "set", "--config", cfg, "lax"); code != 2 {
		t.Fatalf("bad mode: %d\n%s", code, out)
	}
}

// glint policy set --rom edits CBFS glint/config in a real cbfstool-made
// image: cbfstool reads the new configuration back, and the PCR 7 value
// glint will measure for the owner files changes (so the TOTP code does).
func TestPolicySetInFirmwareImage(t *testing.T) {
	cbfs := "/usr/sbin/cbfstool"
	if p, err := exec.LookPath("cbfstool"); err == nil {
		cbfs = p
	}
	if _, err := os.Stat(cbfs); err != nil {
		t.Skip("cbfstool not installed (apt-get install coreboot-utils)")
	}
	dir := t.TempDir()
	fmd, fmap, img := filepath.Join(dir, "layout.fmd"), filepath.Join(dir, "fmap.bin"), filepath.Join(dir, "coreboot.rom")
	os.WriteFile(fmd, []byte("FLASH@0xfff00000 0x100000 {\n\tBIOS@0 0x100000 {\n\t\tFMAP@0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0xffe00\n\t}\n}\n"), 0o644)
	tool := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	tool(filepath.Join(filepath.Dir(cbfs), "fmaptool"), fmd, fmap)
	tool(cbfs, img, "create", "-M", fmap, "-r", "COREBOOT")
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("# Alice's X230\ncountdown = 3\n"), 0o644)
	tool(cbfs, img, "add", "-f", cfg, "-n", "glint/config", "-t", "raw")

	pcr7 := func(path string) []byte {
		im, err := rom.FromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files, err := rom.OwnerFiles(im)
		if err != nil {
			t.Fatal(err)
		}
		return pcr.ReplayOnto(tpm.SHA256, pcr.Config, nil, pcr.OwnerFiles(files))
	}
	before := pcr7(img)
	out := filepath.Join(dir, "restricted.rom")
	if o, code := glintRun("policy", "set", "--rom", img, "--out", out, "restricted"); code != 0 {
		t.Fatalf("policy set: %d\n%s", code, o)
	}
	tool(cbfs, out, "extract", "-n", "glint/config", "-f", filepath.Join(dir, "got"))
	got, _ := os.ReadFile(filepath.Join(dir, "got"))
	if string(got) != "# Alice's X230\ncountdown = 3\nboot.policy = restricted\n" {
		t.Fatalf("cbfstool extracts %q", got)
	}
	if bytes.Equal(before, pcr7(out)) {
		t.Fatal("PCR 7 prediction did not change with the boot mode")
	}
	if o, code := glintRun("policy", "show", "--rom", out); code != 0 || !strings.Contains(o, "boot.policy = restricted") {
		t.Fatalf("policy show: %d\n%s", code, o)
	}
}
