package flash

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chipSize is the W25Q128FV's: 16 MiB, the chip flashrom's dummy programmer
// emulates here and the size of the QEMU q35 coreboot ROM.
const chipSize = 16 << 20

func needTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	t.Skipf("%s not installed (scripts/install-deps.sh installs it)", name)
	return ""
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// imageSpec describes a test image built with the real cbfstool.
type imageSpec struct {
	vendor, part string            // build_info
	payload      int64             // seed of a 3 MB random "fallback/payload"
	owner        map[string][]byte // glint/* files
	ifd          bool              // a flash descriptor with ME and BIOS regions
}

// makeImage builds a 16 MiB coreboot-style image with fmaptool and cbfstool
// (coreboot-utils): an FMAP, a COREBOOT CBFS holding build_info (the board),
// a random payload (so two versions differ like real builds do), and the
// owner's files. With ifd, the first 2 MiB are a flash descriptor (written
// here: signature, FLMAP0, the region table) and an ME region, and the
// FMAP's BIOS area is the descriptor's BIOS region, the layout of an Intel
// laptop's chip.
func makeImage(t testing.TB, s imageSpec) []byte {
	t.Helper()
	cbfstool := needTool(t, "cbfstool")
	fmaptool := needTool(t, "fmaptool")
	dir := t.TempDir()
	fmd := "FLASH@0xff000000 0x1000000 {\n\tBIOS@0 0x1000000 {\n\t\tFMAP@0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0xfffe00\n\t}\n}\n"
	if s.ifd {
		fmd = "FLASH@0xff000000 0x1000000 {\n\tSI_ALL@0 0x200000 {\n\t\tSI_DESC@0 0x1000\n\t\tSI_ME@0x1000 0x1ff000\n\t}\n\tSI_BIOS@0x200000 0xe00000 {\n\t\tFMAP@0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0xdffe00\n\t}\n}\n"
	}
	os.WriteFile(filepath.Join(dir, "l.fmd"), []byte(fmd), 0o644)
	run(t, fmaptool, filepath.Join(dir, "l.fmd"), filepath.Join(dir, "l.fmap"))
	romPath := filepath.Join(dir, "rom.bin")
	run(t, cbfstool, romPath, "create", "-M", filepath.Join(dir, "l.fmap"), "-r", "COREBOOT")
	add := func(name string, data []byte) {
		p := filepath.Join(dir, "f-"+strings.ReplaceAll(name, "/", "_"))
		os.WriteFile(p, data, 0o644)
		run(t, cbfstool, romPath, "add", "-f", p, "-n", name, "-t", "raw")
	}
	add("build_info", []byte("COREBOOT_VERSION: test\nMAINBOARD_VENDOR: "+s.vendor+"\nMAINBOARD_PART_NUMBER: "+s.part+"\n"))
	pay := make([]byte, 3_000_000)
	rand.New(rand.NewSource(s.payload)).Read(pay)
	add("fallback/payload", pay)
	for _, name := range sortedNames(s.owner) {
		add(name, s.owner[name])
	}
	img, err := os.ReadFile(romPath)
	if err != nil {
		t.Fatal(err)
	}
	if s.ifd {
		writeDescriptor(img)
	}
	return img
}

// writeDescriptor puts a minimal Intel flash descriptor at offset 0:
// FLVALSIG, FLMAP0 (FRBA = 0x40, 5 regions), and FLREG0-4: descriptor
// 0x0-0xfff, BIOS 0x200000-0xffffff, ME 0x1000-0x1fffff, GbE and PDR unused.
func writeDescriptor(img []byte) {
	for i := 0; i < 0x1000; i++ {
		img[i] = 0xff
	}
	le := binary.LittleEndian
	le.PutUint32(img[0x10:], 0x0FF0A55A)     // FLVALSIG
	le.PutUint32(img[0x14:], 0x04<<16|4<<24) // FRBA 0x40, NR 4 (+1)
	le.PutUint32(img[0x18:], 0)
	le.PutUint32(img[0x1c:], 0)
	reg := func(base, limit int) uint32 { return uint32(limit>>12)<<16 | uint32(base>>12) }
	le.PutUint32(img[0x40:], reg(0, 0xfff))
	le.PutUint32(img[0x44:], reg(0x200000, 0xffffff))
	le.PutUint32(img[0x48:], reg(0x1000, 0x1fffff))
	le.PutUint32(img[0x4c:], 0x00007fff) // unused: base > limit
	le.PutUint32(img[0x50:], 0x00007fff)
	// FLUMAP1: no ME VSCC table (flashrom's parser bounds it by the 4 KiB
	// descriptor it reads).
	le.PutUint32(img[0xefc:], 0)
	// An "ME" whose bytes differ per image, so region writes show it is left alone.
	for i := 0x1000; i < 0x1000+4096; i++ {
		img[i] = byte(i)
	}
}

// dummyChip is a W25Q128FV emulated by flashrom's dummy programmer over a
// file: the real flashrom reads, erases and writes it as it would a chip.
type dummyChip struct {
	path string
	dev  *Flashrom
}

func newDummyChip(t testing.TB, contents []byte) *dummyChip {
	t.Helper()
	needTool(t, "flashrom")
	p := filepath.Join(t.TempDir(), "chip.bin")
	if contents != nil {
		if err := os.WriteFile(p, contents, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &dummyChip{path: p, dev: &Flashrom{Programmer: Programmer("dummy:emulate=W25Q128FV,image=" + p)}}
}

func (c *dummyChip) contents(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// internalDevice makes the dummy chip look like the machine's own SPI
// controller, so the BIOS-region path runs with the real flashrom (--ifd
// -i bios reads the descriptor from the emulated chip). Only the
// "internal" answer is faked: no emulator offers a locked descriptor.
type internalDevice struct{ *Flashrom }

func (internalDevice) Internal() bool { return true }

func ctx(t testing.TB) context.Context { return context.Background() }

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		off, n := firstDiff(got, want)
		t.Fatalf("%s: %d bytes differ, first at 0x%x", what, n, off)
	}
}
