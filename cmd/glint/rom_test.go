package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/rom"
)

// romCopy copies the project's coreboot ROM (make rom) into a temp dir.
func romCopy(t *testing.T) string {
	t.Helper()
	src := "../../out/coreboot-tpm2.rom"
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("%s not built yet (make rom)", src)
	}
	p := filepath.Join(t.TempDir(), "coreboot.rom")
	if err := os.WriteFile(p, raw, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRomPersonalizeInspectPredict(t *testing.T) {
	image := romCopy(t)
	_, _, pub := gpgKey(t, "Alice")
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	os.WriteFile(config, []byte("countdown = 3\ntotp.account = x230 of Alice\n"), 0o644)
	before, _ := os.ReadFile(image)

	// flags after the image, as the docs write them
	out, code := glintRun("rom", "personalize", image, "--key", pub, "--config", config)
	if code != 0 || !strings.Contains(out, "Alice <x@example.org> (Ed25519): OK") || !strings.Contains(out, "wrote "+image) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	after, _ := os.ReadFile(image)
	if bytes.Equal(before, after) || len(after) != len(before) {
		t.Fatal("the image did not change, or changed size")
	}
	if st, _ := os.Stat(image); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v: the file's permissions were not kept", st.Mode())
	}

	out, code = glintRun("rom", "inspect", image, "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var r rom.Inspection
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Build.Board != "Emulation QEMU x86 q35/ich9" || len(r.Owner.Keys) != 1 || r.Owner.Keys[0].Problem != "" ||
		!strings.Contains(r.Owner.Config, "x230 of Alice") || len(r.Measured) != 6 || len(r.Problems) != 0 {
		t.Fatalf("%+v", r)
	}
	out, code = glintRun("rom", "inspect", image)
	for _, want := range []string{"Owner files: glint/config, glint/owner.asc", "OK, glint verifies with key", "FMAP: COREBOOT CBFS: fallback/payload", "Problems: none found"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("inspect lacks %q:\n%s", want, out)
		}
	}

	out, code = glintRun("rom", "predict", "--json", image)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var pj predictJSON
	if err := json.Unmarshal([]byte(out), &pj); err != nil {
		t.Fatal(err)
	}
	img, _ := rom.FromFile(image)
	p, err := rom.Predict(img, rom.PredictOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v7, _ := p.PCR(7)
	if pj.TPM != "2.0" || len(pj.PCRs) != 8 || pj.PCRs[7].SHA256 != hexOrEmpty(v7.Values[0x0b]) || len(pj.OwnerFiles) != 2 {
		t.Fatalf("%+v", pj)
	}
	out, code = glintRun("rom", "predict", image, "--tpm-version", "1.2")
	if code != 0 || !strings.Contains(out, "with TPM 1.2") || strings.Contains(out, "sha256 bank") {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	out, code = glintRun("rom", "extract", image, "glint/config")
	if code != 0 || out != "countdown = 3\ntotp.account = x230 of Alice\n" {
		t.Fatalf("exit %d: %q", code, out)
	}
}

// A refused personalization leaves the image file exactly as it was.
func TestRomPersonalizeRefusesAndKeepsImage(t *testing.T) {
	image := romCopy(t)
	home, id, pub := gpgKey(t, "Alice")
	before, _ := os.ReadFile(image)
	dir := t.TempDir()
	bad := filepath.Join(dir, "config")
	os.WriteFile(bad, []byte("countdown = 3\nforce.allowed = perhaps\n"), 0o644)
	secret := filepath.Join(dir, "secret.asc")
	gpgOut(t, home, secret, "--armor", "--export-secret-keys", id)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--key", pub, "--config", bad}, "line 2"},
		{[]string{"--key", secret}, "SECRET"},
		{[]string{"--key", filepath.Join(dir, "missing.asc")}, "no such file"},
		{[]string{}, "usage"},
	} {
		out, code := glintRun(append([]string{"rom", "personalize", image}, tc.args...)...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Fatalf("%v: exit %d, want %q:\n%s", tc.args, code, tc.want, out)
		}
		if now, _ := os.ReadFile(image); !bytes.Equal(now, before) {
			t.Fatalf("%v: the image changed", tc.args)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(image)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func gpgOut(t *testing.T, home, out string, args ...string) {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--output", out}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpg %v: %v\n%s", args, err, b)
	}
}

// relayout and assemble on the synthetic ThinkPad images the docs use.
func TestRomRelayoutAssemble(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("go", "test", "-run", "TestWriteSynthImages", "-synth-out", dir, "./")
	cmd.Dir = "../../internal/rom"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	stock := filepath.Join(dir, "x230-stock.rom")
	if _, err := os.Stat(stock); err != nil {
		t.Skip("synthetic images not written (cbfstool/ifdtool missing)")
	}
	layout := filepath.Join(dir, "max.txt")
	os.WriteFile(layout, []byte("00003000:0007ffff me\n00080000:00bfffff bios\n"), 0o644)
	out, code := glintRun("rom", "relayout", stock, "--layout", layout, "-o", filepath.Join(dir, "r.rom"))
	if code == 0 || !strings.Contains(out, "not erased") || !strings.Contains(out, "me_cleaner") {
		t.Fatalf("a stock ME was cut: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "r.rom")); err == nil {
		t.Fatal("an output was written after a refusal")
	}
	// the maximized image's own layout, written back: the same bytes
	max := filepath.Join(dir, "x230-maximized.rom")
	img, _ := rom.FromFile(max)
	os.WriteFile(layout, []byte(img.Descriptor.FlashromLayout()), 0o644)
	out, code = glintRun("rom", "relayout", max, "--layout", layout, "-o", filepath.Join(dir, "same.rom"))
	if code != 0 || !strings.Contains(out, "neutered") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	a, _ := os.ReadFile(max)
	b, _ := os.ReadFile(filepath.Join(dir, "same.rom"))
	if !bytes.Equal(a, b) {
		t.Fatal("relayout to the same layout changed the image")
	}
	// assemble: the stock image's own BIOS region back into it
	out, code = glintRun("rom", "assemble", "--backup", stock, "--bios", stock, "-o", filepath.Join(dir, "full.rom"))
	if code != 0 || !strings.Contains(out, "BIOS region 0x500000-0xbfffff") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	out, code = glintRun("rom", "assemble", "--backup", stock, "--bios", max, "-o", filepath.Join(dir, "bad.rom"))
	if code == 0 || !strings.Contains(out, "nothing written") {
		t.Fatalf("a maximized build went into a stock chip: exit %d\n%s", code, out)
	}
}
