//go:build boards

package boards

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

const flashSize = 12 << 20 // the X230/T430: an 8 MiB chip and a 4 MiB chip

// layouts: where each layout puts the BIOS region (boards/layout-*.txt).
var biosBase = map[string]int64{"stock": 0x500000, "maximized": 0x21000}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

type board struct{ name, layout, path string }

func roms(t *testing.T) []board {
	t.Helper()
	top := repoRoot(t)
	var out []board
	for _, b := range []string{"x230", "t430"} {
		for _, l := range []string{"stock", "maximized"} {
			p := filepath.Join(top, "out/boards", b+"-"+l+".rom")
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s missing: run make boards (scripts/build-board.sh %s %s)", p, b, l)
			}
			out = append(out, board{b, l, p})
		}
	}
	return out
}

// microcode is the blob coreboot should carry: the files of boards/microcode in order, as
// scripts/fetch-microcode.sh extracted them from Debian's package.
func microcode(t *testing.T) []byte {
	t.Helper()
	dir, err := exec.Command("bash", filepath.Join(repoRoot(t), "scripts/fetch-microcode.sh")).Output()
	if err != nil {
		t.Fatalf("fetch-microcode.sh: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(dir)), "microcode-*.bin"))
	sort.Strings(files)
	var blob []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		blob = append(blob, b...)
	}
	if len(blob) == 0 {
		t.Fatal("no microcode files")
	}
	return blob
}

func TestCBFSLayout(t *testing.T) {
	ucode := microcode(t)
	top := repoRoot(t)
	kernel, err := os.ReadFile(filepath.Join(top, "out/kernel/bzImage"))
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := os.ReadFile(filepath.Join(top, "out/payload.cpio.xz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range roms(t) {
		t.Run(b.name+"-"+b.layout, func(t *testing.T) {
			img, err := rom.FromFile(b.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Data) != flashSize {
				t.Fatalf("image is %d bytes, want the 12 MiB flash", len(img.Data))
			}
			if img.FMAP == nil {
				t.Fatal("no FMAP")
			}
			area, ok := img.FMAP.Area("COREBOOT")
			if !ok {
				t.Fatal("no COREBOOT area")
			}
			base := biosBase[b.layout]
			if int64(area.Offset) < base || int64(area.Offset)+int64(area.Size) != flashSize {
				t.Errorf("COREBOOT area %#x+%#x is not inside the BIOS region %#x-%#x ending at the top", area.Offset, area.Size, base, flashSize-1)
			}
			// Nothing but 0xff below the BIOS region: the owner's descriptor, GbE and ME stay theirs.
			for j := int64(0); j < base; j++ {
				if img.Data[j] != 0xff {
					t.Errorf("byte %#x below the BIOS region is %#x, not erased", j, img.Data[j])
					break
				}
			}
			files, err := img.CBFS("COREBOOT")
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]*rom.File{}
			var names []string
			for i := range files {
				if files[i].Empty() {
					continue
				}
				have[files[i].Name] = &files[i]
				names = append(names, files[i].Name)
			}
			t.Logf("CBFS: %s", strings.Join(names, ", "))
			for _, want := range []string{"cbfs master header", "fallback/romstage", "cpu_microcode_blob.bin",
				"fallback/ramstage", "fallback/postcar", "fallback/payload", "fallback/dsdt.aml", "vbt.bin",
				"cmos_layout.bin", "config", "revision"} {
				if have[want] == nil {
					t.Errorf("CBFS lacks %s", want)
				}
			}
			for _, name := range names {
				if strings.HasPrefix(name, "vgaroms/") || strings.Contains(name, "mrc") || strings.HasPrefix(name, "me") || strings.Contains(name, "fsp") {
					t.Errorf("CBFS carries %s: no blob from outside Debian's source may be there", name)
				}
			}
			if f := have["cpu_microcode_blob.bin"]; f != nil {
				data, err := f.Contents()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, ucode) {
					t.Errorf("cpu_microcode_blob.bin (%d bytes) is not Debian's intel-microcode files (%d bytes)", len(data), len(ucode))
				}
			}
			pl, err := img.Payload()
			if err != nil {
				t.Fatalf("payload: %v", err)
			}
			// the payload is glint's: cbfstool stores the bzImage's protected-mode part (after
			// the setup sectors) as the kernel segment and the initramfs as the initrd segment
			kseg, err := pl.Kernel.Contents()
			if err != nil {
				t.Fatal(err)
			}
			setup := (int(kernel[0x1f1]) + 1) * 512
			if !bytes.Equal(kseg, kernel[setup:]) {
				t.Errorf("payload kernel segment (%d bytes) is not out/kernel/bzImage past its %d setup bytes", len(kseg), setup)
			}
			if pl.Initrd == nil {
				t.Fatal("payload has no initrd")
			}
			iseg, err := pl.Initrd.Contents()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(iseg, initrd) {
				t.Errorf("payload initrd (%d bytes) is not out/payload.cpio.xz (%d bytes)", len(iseg), len(initrd))
			}
			t.Logf("payload: kernel %d + initramfs %d bytes, command line %q", len(kernel), len(initrd), pl.Cmdline)
		})
	}
}

// TestPCR2Prediction writes what coreboot will measure into PCR 2 for each ROM: the value an
// owner sees in glint's TOTP banner explanations and can compare with `glint pcrs` on the
// laptop after flashing.
func TestPCR2Prediction(t *testing.T) {
	for _, b := range roms(t) {
		img, err := rom.FromFile(b.path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := rom.PredictCorebootPCR2(img)
		if err != nil {
			t.Fatalf("%s: %v", b.path, err)
		}
		var lines []string
		for _, e := range p.Log.Events {
			lines = append(lines, fmt.Sprintf("measured %s sha1 %x", e.Description, e.Digests[tpm.SHA1]))
		}
		if len(p.Log.Events) < 5 {
			t.Errorf("%s: only %d measurements predicted: %q", b.path, len(p.Log.Events), lines)
		}
		// TPM 1.2 on these boards: the SHA-1 bank is the one that exists
		sha1 := p.PCR2[tpm.SHA1]
		if len(sha1) != 20 || bytes.Equal(sha1, make([]byte, 20)) {
			t.Errorf("%s: PCR 2 (sha1) %x", b.path, sha1)
		}
		lines = append(lines, fmt.Sprintf("PCR2 sha1 %x", sha1), fmt.Sprintf("PCR2 sha256 %x", p.PCR2[tpm.SHA256]))
		if err := os.WriteFile(b.path+".pcr2", []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: PCR 2 = %x (sha1)", filepath.Base(b.path), sha1)
	}
}

// ownerFlash is a stand-in for what is on an owner's chip before the update: random bytes
// everywhere (their descriptor, GbE, ME and old BIOS), so any byte the flash path touches
// outside the BIOS region shows.
func ownerFlash(t *testing.T, seed int64) []byte {
	b := make([]byte, flashSize)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func flashrom(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("flashrom", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("flashrom %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:8]) }

// TestFlashPaths writes each ROM the two ways an owner can: internally (one 12 MiB flash as the
// chipset shows it, BIOS region only, with the layout file) and externally with a clip on each
// of the two chips. Both must give the owner's bytes below the BIOS region and the ROM's in it.
func TestFlashPaths(t *testing.T) {
	if _, err := exec.LookPath("flashrom"); err != nil {
		t.Fatal("flashrom not installed (make deps)")
	}
	top := repoRoot(t)
	for i, b := range roms(t) {
		t.Run(b.name+"-"+b.layout, func(t *testing.T) {
			dir := t.TempDir()
			romData, err := os.ReadFile(b.path)
			if err != nil {
				t.Fatal(err)
			}
			before := ownerFlash(t, int64(i))
			base := biosBase[b.layout]
			want := append(append([]byte(nil), before[:base]...), romData[base:]...)

			// internal: flashrom -p internal -l boards/layout-<layout>.txt -i bios -w ROM
			chip := filepath.Join(dir, "internal.bin")
			if err := os.WriteFile(chip, before, 0o644); err != nil {
				t.Fatal(err)
			}
			flashrom(t, "-p", "dummy:emulate=VARIABLE_SIZE,size=12582912,image="+chip,
				"-l", filepath.Join(top, "boards/layout-"+b.layout+".txt"), "-i", "bios", "-w", b.path)
			got, err := os.ReadFile(chip)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("internal flash: chip %s, want %s", sum(got), sum(want))
			}

			// external: the bottom 8 MiB chip gets the part of the BIOS region it holds (its own
			// layout), the top 4 MiB chip gets the rest whole.
			low, high := filepath.Join(dir, "bottom-8M.bin"), filepath.Join(dir, "top-4M.bin")
			if err := os.WriteFile(low, before[:8<<20], 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(high, before[8<<20:], 0o644); err != nil {
				t.Fatal(err)
			}
			lowLayout := filepath.Join(dir, "bottom.layout")
			os.WriteFile(lowLayout, []byte(fmt.Sprintf("%08x:007fffff bios\n", base)), 0o644)
			lowImg, highImg := filepath.Join(dir, "rom-bottom.bin"), filepath.Join(dir, "rom-top.bin")
			os.WriteFile(lowImg, romData[:8<<20], 0o644)
			os.WriteFile(highImg, romData[8<<20:], 0o644)
			flashrom(t, "-p", "dummy:emulate=MX25L6436,image="+low, "-c", "MX25L6436E/MX25L6445E/MX25L6465E/MX25L6473E/MX25L6473F",
				"-l", lowLayout, "-i", "bios", "-w", lowImg)
			flashrom(t, "-p", "dummy:emulate=SST25VF032B,image="+high, "-w", highImg)
			g1, _ := os.ReadFile(low)
			g2, _ := os.ReadFile(high)
			if ext := append(g1, g2...); !bytes.Equal(ext, want) {
				t.Fatalf("two-chip flash: chips %s, want %s", sum(ext), sum(want))
			}
		})
	}
}
