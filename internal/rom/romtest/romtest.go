// Package romtest makes coreboot-style firmware images with coreboot's own
// tools (fmaptool, cbfstool from coreboot-utils) for other packages' tests:
// a flash map, a COREBOOT CBFS holding the build's config (TPM family,
// measured boot), build_info, a payload, and the owner's files. Such an
// image is what internal/rom reads, personalises and predicts, and what
// the re-ownership wizard writes.
package romtest

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Spec describes an image.
type Spec struct {
	// TPM is 20 (CONFIG_TPM2) or 12 (CONFIG_TPM1).
	TPM int
	// PayloadSeed makes the random 1 MB fallback/payload (two seeds, two
	// builds).
	PayloadSeed int64
	// Owner are glint's owner files, named without the glint/ prefix.
	Owner map[string][]byte
}

// Need skips the test when coreboot-utils is missing.
func Need(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"cbfstool", "fmaptool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs coreboot-utils)", tool)
		}
	}
}

// Make builds a 16 MiB image for the emulated laptop's board (QEMU q35).
func Make(t testing.TB, s Spec) []byte {
	t.Helper()
	Need(t)
	dir := t.TempDir()
	write := func(p string, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	fmd := "FLASH@0xff000000 0x1000000 {\n\tBIOS@0 0x1000000 {\n\t\tFMAP@0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0xfffe00\n\t}\n}\n"
	write(filepath.Join(dir, "l.fmd"), []byte(fmd))
	run("fmaptool", filepath.Join(dir, "l.fmd"), filepath.Join(dir, "l.fmap"))
	romPath := filepath.Join(dir, "rom.bin")
	run("cbfstool", romPath, "create", "-M", filepath.Join(dir, "l.fmap"), "-r", "COREBOOT")
	family := "CONFIG_TPM2=y\n"
	if s.TPM == 12 {
		family = "CONFIG_TPM1=y\n"
	}
	add := func(name string, data []byte) {
		p := filepath.Join(dir, "f-"+strings.ReplaceAll(name, "/", "_"))
		write(p, data)
		run("cbfstool", romPath, "add", "-f", p, "-n", name, "-t", "raw")
	}
	add("build_info", []byte("COREBOOT_VERSION: test\nMAINBOARD_VENDOR: Emulation\nMAINBOARD_PART_NUMBER: QEMU x86 q35/ich9\n"))
	add("config", []byte(family+"CONFIG_TPM_MEASURED_BOOT=y\nCONFIG_BOARD_EMULATION_QEMU_X86_Q35=y\n"))
	pay := make([]byte, 1_000_000)
	rand.New(rand.NewSource(s.PayloadSeed)).Read(pay)
	add("fallback/payload", pay)
	names := make([]string, 0, len(s.Owner))
	for n := range s.Owner {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		add("glint/"+n, s.Owner[n])
	}
	img, err := os.ReadFile(romPath)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
