//go:build boards

package rom

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The ThinkPad ROMs `make boards` builds (out/boards, scripts/build-board.sh) turned into
// whole-chip images the way an owner does it, from a backup of their own chip: the stock image
// keeps their descriptor, ME and GbE as they are; the maximized one shrinks the ME
// (me_cleaner's job: glint does not cut the ME itself), grows the BIOS region over the freed
// space (Relayout) and puts coreboot there (Assemble), as Heads' maximized boards are made.
//
// The owner's backup is synthetic (synth_test.go: a 7-series descriptor as Lenovo ships it, an
// ME 8 with all its partitions, a GbE region with a MAC address, a vendor BIOS region): no
// real chip dump can be shipped. What me_cleaner -S -r -t does to a real ME 8 is simulated:
// every partition but FTPR erased, FTPR cut to the 88 KiB of modules -r keeps, the
// AltMeDisable strap set.
//
//	make boards        # or: go test -tags boards ./internal/rom -run ThinkPad

const (
	boardFlash     = 12 << 20
	maxMEEnd       = 0x20fff // boards/layout-maximized.txt: me 0x3000-0x20fff
	maxBIOSBase    = 0x21000
	ftprAfterClean = 0x16000 // FTPR after me_cleaner -r on an ME 8 (about 88 KiB)
)

func boardROM(t *testing.T, name string) *Image {
	t.Helper()
	p := filepath.Join("..", "..", "out", "boards", name+".rom")
	img, err := FromFile(p)
	if err != nil {
		t.Fatalf("%v: run make boards first", err)
	}
	return img
}

// ownerBackup is a stock X230/T430 chip as its owner reads it with a clip.
func ownerBackup(t *testing.T) *Image {
	t.Helper()
	s := x230Spec(boardFlash)
	me := synthME(int(s.regions[RegionME].Size()), stockME8, false, [4]uint16{8, 1, 30, 1350})
	img, err := FromFile(synthFlash(t, s, me))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// meCleaned is what me_cleaner -S -r -t leaves of the backup's ME region: FTPR alone, cut
// to ftprAfterClean bytes, the rest of the region erased, and the AltMeDisable strap set.
func meCleaned(t *testing.T, backup []byte) []byte {
	t.Helper()
	b := bytes.Clone(backup)
	me := b[0x3000:0x500000]
	neuterME(me, false)
	// the one FPT entry left is FTPR; cut it (me_cleaner -r moves the modules it keeps to the
	// start of the partition and shortens the entry; -t erases everything after it)
	if string(me[0x30:0x34]) != "FTPR" {
		t.Fatalf("FPT entry 0 is %q after neutering", me[0x30:0x34])
	}
	off := binary.LittleEndian.Uint32(me[0x30+8:])
	binary.LittleEndian.PutUint32(me[0x30+12:], ftprAfterClean)
	for i := off + ftprAfterClean; i < uint32(len(me)); i++ {
		me[i] = 0xff
	}
	fixFPTChecksum(me, false)
	out, err := SetMEDisable(b, true)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func regionBytes(t *testing.T, img *Image, id RegionID) []byte {
	t.Helper()
	b, err := img.Descriptor.RegionData(img.Data, id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestThinkPadAssembly(t *testing.T) {
	for _, board := range []string{"x230", "t430"} {
		t.Run(board+"-stock", func(t *testing.T) {
			backup := ownerBackup(t)
			rom := boardROM(t, board+"-stock")
			full, err := Assemble(backup, rom)
			if err != nil {
				t.Fatalf("assemble: %v", err)
			}
			for _, id := range []RegionID{RegionDescriptor, RegionGbE, RegionME} {
				if !bytes.Equal(regionBytes(t, full, id), regionBytes(t, backup, id)) {
					t.Errorf("%s region is not the owner's", id)
				}
			}
			if !bytes.Equal(full.Data[0x500000:], rom.Data[0x500000:]) {
				t.Error("BIOS region is not coreboot's")
			}
			me := AnalyzeME(full.Data, full.Descriptor)
			if me.State != MEPresent {
				t.Errorf("ME: %s, want the owner's stock ME", me.Summary())
			}
			t.Logf("%s stock, assembled: descriptor regions\n%sME: %s", board, full.Descriptor.FlashromLayout(), me.Summary())
			flashTwoChips(t, full.Data)
		})
		t.Run(board+"-maximized", func(t *testing.T) {
			backup := ownerBackup(t)
			cleaned := meCleaned(t, backup.Data)
			relaid, err := Relayout(cleaned, map[RegionID]RegionSpan{RegionME: {0x3000, maxMEEnd}, RegionBIOS: {maxBIOSBase, boardFlash - 1}})
			if err != nil {
				t.Fatalf("relayout: %v", err)
			}
			owner, err := FromBytes(relaid)
			if err != nil {
				t.Fatal(err)
			}
			rom := boardROM(t, board+"-maximized")
			full, err := Assemble(owner, rom)
			if err != nil {
				t.Fatalf("assemble: %v", err)
			}
			d := full.Descriptor
			if r, _ := d.Region(RegionBIOS); r.Base != maxBIOSBase || int(r.Limit) != boardFlash-1 {
				t.Errorf("BIOS region %s, want 0x%x-0x%x", r, maxBIOSBase, boardFlash-1)
			}
			if r, _ := d.Region(RegionME); r.Base != 0x3000 || r.Limit != maxMEEnd {
				t.Errorf("ME region %s, want 0x3000-0x%x", r, maxMEEnd)
			}
			if !bytes.Equal(regionBytes(t, full, RegionGbE), regionBytes(t, backup, RegionGbE)) {
				t.Error("GbE region (the MAC address) is not the owner's")
			}
			if !bytes.Equal(full.Data[maxBIOSBase:], rom.Data[maxBIOSBase:]) {
				t.Error("BIOS region is not coreboot's")
			}
			me := AnalyzeME(full.Data, d)
			if me.State != MENeutered || !me.Shrunk || !me.Disable.Set {
				t.Errorf("ME: %s, want neutered, shrunk, AltMeDisable set", me.Summary())
			}
			if probs := d.Check(int64(len(full.Data))); len(probs) > 0 {
				t.Errorf("descriptor problems: %q", probs)
			}
			if probs := CheckFMAPAgainstDescriptor(full.FMAP, d); len(probs) > 0 {
				t.Errorf("flash map against descriptor: %q", probs)
			}
			files, err := full.CBFS("COREBOOT")
			if err != nil || len(files) == 0 {
				t.Fatalf("CBFS of the assembled image: %v", err)
			}
			t.Logf("%s maximized, assembled: descriptor regions\n%sME: %s", board, d.FlashromLayout(), me.Summary())
			flashTwoChips(t, full.Data)
			// an internal update afterwards writes only the BIOS region, found through the
			// descriptor on the chip (flashrom --ifd -i bios)
			chip := filepath.Join(t.TempDir(), "chip.bin")
			prev := bytes.Clone(full.Data)
			copy(prev[maxBIOSBase:], bytes.Repeat([]byte{0x5a}, boardFlash-maxBIOSBase))
			must(t, os.WriteFile(chip, prev, 0o644))
			img := filepath.Join(t.TempDir(), "update.rom")
			must(t, os.WriteFile(img, rom.Data, 0o644))
			flashrom(t, "-p", "dummy:emulate=VARIABLE_SIZE,size=12582912,image="+chip, "--ifd", "-i", "bios", "-w", img)
			if got, _ := os.ReadFile(chip); !bytes.Equal(got, full.Data) {
				t.Error("flashrom --ifd -i bios over the maximized chip did not give the assembled image")
			}
		})
	}
}

// flashTwoChips writes a whole 12 MiB image with an external programmer as the owner does: the
// bottom 8 MiB to the first chip, the top 4 MiB to the second (flashrom's dummy programmer
// emulating each), and checks that the two chips read back as the image.
func flashTwoChips(t *testing.T, data []byte) {
	t.Helper()
	if _, err := exec.LookPath("flashrom"); err != nil {
		t.Skip("flashrom not installed (scripts/install-deps.sh)")
	}
	dir := t.TempDir()
	low, high := filepath.Join(dir, "bottom-8M.bin"), filepath.Join(dir, "top-4M.bin")
	must(t, os.WriteFile(low, bytes.Repeat([]byte{0}, 8<<20), 0o644))
	must(t, os.WriteFile(high, bytes.Repeat([]byte{0}, 4<<20), 0o644))
	lowImg, highImg := filepath.Join(dir, "img-bottom.bin"), filepath.Join(dir, "img-top.bin")
	must(t, os.WriteFile(lowImg, data[:8<<20], 0o644))
	must(t, os.WriteFile(highImg, data[8<<20:], 0o644))
	flashrom(t, "-p", "dummy:emulate=MX25L6436,image="+low, "-c", "MX25L6436E/MX25L6445E/MX25L6465E/MX25L6473E/MX25L6473F", "-w", lowImg)
	flashrom(t, "-p", "dummy:emulate=SST25VF032B,image="+high, "-w", highImg)
	a, _ := os.ReadFile(low)
	b, _ := os.ReadFile(high)
	if !bytes.Equal(append(a, b...), data) {
		t.Error("the two chips do not read back as the assembled image")
	}
}

func flashrom(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("flashrom", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("flashrom %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
