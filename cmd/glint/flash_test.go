package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/tpm"
)

// tpm2Image builds a 16 MiB coreboot-style image for a TPM 2.0 board with
// the real fmaptool and cbfstool: FMAP, build_info, a config naming
// CONFIG_TPM2 and measured boot (what rom.Predict reads), a random payload
// and the given owner files.
func tpm2Image(t *testing.T, seed int64, owner map[string][]byte) []byte {
	t.Helper()
	for _, tool := range []string{"cbfstool", "fmaptool", "flashrom"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Skipf("%s not installed (scripts/install-deps.sh)", tool)
			}
		}
	}
	dir := t.TempDir()
	x := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "l.fmd"), []byte("FLASH@0xff000000 0x1000000 {\n\tBIOS@0 0x1000000 {\n\t\tFMAP@0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0xfffe00\n\t}\n}\n"), 0o644)
	x("fmaptool", filepath.Join(dir, "l.fmd"), filepath.Join(dir, "l.fmap"))
	rom := filepath.Join(dir, "rom.bin")
	x("cbfstool", rom, "create", "-M", filepath.Join(dir, "l.fmap"), "-r", "COREBOOT")
	pay := make([]byte, 2_000_000)
	mrand.New(mrand.NewSource(seed)).Read(pay)
	files := map[string][]byte{
		"build_info":       []byte("COREBOOT_VERSION: 4.15\nMAINBOARD_VENDOR: Emulation\nMAINBOARD_PART_NUMBER: QEMU x86 q35/ich9\n"),
		"config":           []byte("CONFIG_BOARD_EMULATION_QEMU_X86_Q35=y\nCONFIG_TPM2=y\nCONFIG_TPM_MEASURED_BOOT=y\n"),
		"fallback/payload": pay,
	}
	for n, d := range owner {
		files[n] = d
	}
	for n, d := range files {
		p := filepath.Join(dir, strings.ReplaceAll(n, "/", "_"))
		os.WriteFile(p, d, 0o644)
		x("cbfstool", rom, "add", "-f", p, "-n", n, "-t", "raw")
	}
	b, err := os.ReadFile(rom)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The CLI end to end on the host: a signed bundle is checked with the
// publisher key from the chip's firmware, the owner files are carried, the
// approval is made for the exact image written (before writing), and bad
// bundles are refused with nothing written and nothing approved.
func TestFlashBundleWithApprovalCLI(t *testing.T) {
	home, id, pubFile := gpgKey(t, "Publisher")
	pub, _ := os.ReadFile(pubFile)
	owner := map[string][]byte{"glint/owner.asc": []byte("owner key\n"), "glint/publisher.asc": pub}
	current := tpm2Image(t, 1, owner)
	next := tpm2Image(t, 2, nil) // the publisher's image: no owner files

	dir := t.TempDir()
	chip := filepath.Join(dir, "chip.bin")
	os.WriteFile(chip, current, 0o600)
	os.WriteFile(filepath.Join(dir, "next.rom"), next, 0o644)
	bundle := filepath.Join(dir, "next.glintupd")
	out, code := glintRun("flash", "bundle", "create", "--gpg-home", home, "--key", id, "--release", "2.0", "-o", bundle, filepath.Join(dir, "next.rom"))
	if code != 0 {
		t.Fatalf("bundle create: %s", out)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyFile := filepath.Join(dir, "approval.pem")
	if err := approval.WriteKeyFile(keyFile, k); err != nil {
		t.Fatal(err)
	}
	approvals := filepath.Join(dir, "approvals")
	prog := "dummy:emulate=W25Q128FV,image=" + chip
	flashArgs := func(file string) []string {
		return []string{"flash", "--programmer", prog, "--backup-dir", filepath.Join(dir, "backups"),
			"--approval-key-file", keyFile, "--approvals", approvals, file}
	}

	// Bad bundles first: refused, chip untouched, nothing approved.
	raw, _ := os.ReadFile(bundle)
	damaged := bytes.Clone(raw)
	damaged[len(damaged)-40] ^= 1 // inside the armored signature
	os.WriteFile(filepath.Join(dir, "damaged.glintupd"), damaged, 0o644)
	os.WriteFile(filepath.Join(dir, "truncated.glintupd"), raw[:len(raw)/2], 0o644)
	for _, bad := range []string{"damaged.glintupd", "truncated.glintupd"} {
		out, code := glintRun(flashArgs(filepath.Join(dir, bad))...)
		if code != 1 || !strings.Contains(out, "refused, nothing was written to the chip") {
			t.Fatalf("%s: %d\n%s", bad, code, out)
		}
		if got, _ := os.ReadFile(chip); !bytes.Equal(got, current) {
			t.Fatalf("%s changed the chip", bad)
		}
		if _, err := os.Stat(approvals); !os.IsNotExist(err) {
			t.Fatalf("%s left an approval", bad)
		}
	}

	out, code = glintRun(flashArgs(bundle)...)
	if code != 0 {
		t.Fatalf("flash: %d\n%s", code, out)
	}
	for _, s := range []string{"bundle signature verified", "owner files carried", "approved with key file", "the chip holds the new image"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	written, _ := os.ReadFile(chip)
	if !flashSameOwnerFiles(flash.OwnerFiles(written), flash.OwnerFiles(current)) {
		t.Error("the owner files were not carried")
	}
	// The approval is for the image on the chip (with the carried owner
	// files in PCR 7), not for the publisher's image.
	want, _, err := approval.Predicted(written, approval.PurposeTOTP, tpm.SHA256, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, errs := approval.Load(approvals, approval.PurposeTOTP)
	if len(list) != 1 || len(errs) != 0 || approval.Find(list, want, k.Public()) == nil {
		t.Fatalf("approvals %v %v: none for the written image's predicted values", list, errs)
	}
	publisherOnly, _, _ := approval.Predicted(next, approval.PurposeTOTP, tpm.SHA256, nil)
	if bytes.Equal(publisherOnly.Values[7], want.Values[7]) {
		t.Error("PCR 7 prediction ignores the carried owner files")
	}
}

func flashSameOwnerFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return false
		}
	}
	return true
}
