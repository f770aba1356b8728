package flash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/rom"
)

var ownerA = map[string][]byte{
	"glint/owner.asc": []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\nowner A\n"),
	"glint/config":    []byte("otp=totp\n"),
}

func fixedNow() time.Time { return time.Date(2026, 12, 4, 16, 40, 0, 0, time.UTC) }

func TestUpdateWholeChip(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 1, owner: ownerA})
	next := makeImage(t, imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 2, owner: ownerA})
	chip := newDummyChip(t, old)
	var log bytes.Buffer
	u := &Update{Device: chip.dev, Image: next, Source: "next.rom", BackupDir: filepath.Join(t.TempDir(), "backups"), Log: &log, Now: fixedNow}
	res, err := u.Run(ctx(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	mustEqual(t, "chip after update", chip.contents(t), next)
	if !res.Wrote || res.Written == nil || res.Region != WholeChip || res.Chip.Name != "W25Q128.V" {
		t.Errorf("result %+v", res)
	}
	b, err := CheckBackup(res.Backup.Path)
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := os.ReadFile(b.Path)
	mustEqual(t, "backup", kept, old)
	if !strings.HasSuffix(b.Path, "glint-backup-20261204T164000Z-W25Q128.V.rom") || b.SHA256 != sha256.Sum256(old) {
		t.Errorf("backup %v", b)
	}
	for _, step := range []string{"read 1 of 2: flashrom", "read 2 of 2: flashrom", "both reads agree", "same board", "backup kept", "write: flashrom -p dummy", "read back and compare", "holds the new image"} {
		if !strings.Contains(log.String(), step) {
			t.Errorf("log lacks %q:\n%s", step, log.String())
		}
	}

	// Restore brings back the old bytes; the backup is checked first.
	if err := Restore(ctx(t), chip.dev, b.Path, "", false, &log); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "chip after restore", chip.contents(t), old)
}

func TestUpdateRefusals(t *testing.T) {
	board := imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 1, owner: ownerA}
	old := makeImage(t, board)
	other := board
	other.part, other.payload = "QEMU x86 i440fx/piix4", 3
	vendor := make([]byte, chipSize)
	rand.New(rand.NewSource(9)).Read(vendor)
	for _, tc := range []struct {
		name  string
		chip  []byte
		image []byte
		first bool
		want  error
		says  string
	}{
		{"image for another board", old, makeImage(t, other), false, ErrWrongBoard, `firmware for "Emulation QEMU x86 q35/ich9", the image is for "Emulation QEMU x86 i440fx/piix4"`},
		{"8 MiB image on a 16 MiB chip", old, makeImage(t, board)[:8<<20], false, ErrNotWritten, "not a coreboot image"},
		{"image one byte short", old, append(make([]byte, 0), makeImage(t, board)...)[:chipSize-1], false, ErrNotWritten, ""},
		{"not a coreboot image", old, vendor, false, ErrNotWritten, "not a coreboot image glint can identify"},
		{"vendor firmware on the chip", vendor, makeImage(t, board), false, ErrNotWritten, "--first-install"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chip := newDummyChip(t, tc.chip)
			backups := filepath.Join(t.TempDir(), "backups")
			var log bytes.Buffer
			_, err := (&Update{Device: chip.dev, Image: tc.image, Source: "x.rom", BackupDir: backups, FirstInstall: tc.first, Log: &log}).Run(ctx(t))
			if !errors.Is(err, tc.want) || !IsNotWritten(err) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v, want %v saying %q\n%s", err, tc.want, tc.says, log.String())
			}
			mustEqual(t, "chip", chip.contents(t), tc.chip)
			if ents, _ := os.ReadDir(backups); len(ents) != 0 {
				t.Errorf("a refused update kept %d backup files", len(ents))
			}
		})
	}
}

func TestUpdateWrongSizeNamed(t *testing.T) {
	// An image that parses (its FMAP describes its own size) but is not
	// the chip's size: a 16 MiB image's first 8 MiB do not parse, so
	// build the mismatch from the chip side: an 8 MiB emulated chip.
	needTool(t, "flashrom")
	img := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 1})
	p := filepath.Join(t.TempDir(), "chip.bin")
	os.WriteFile(p, img[:8<<20], 0o600)
	dev := &Flashrom{Programmer: Programmer("dummy:emulate=MX25L6436,image=" + p), Chip: "MX25L6436E/MX25L6445E/MX25L6465E/MX25L6473E/MX25L6473F"}
	_, err := (&Update{Device: dev, Image: img, BackupDir: t.TempDir()}).Run(ctx(t))
	if !errors.Is(err, ErrWrongSize) || !IsNotWritten(err) || !strings.Contains(err.Error(), "the image is 16777216 bytes") {
		t.Fatalf("%v", err)
	}
}

func TestFirstInstallOverVendorFirmware(t *testing.T) {
	vendor := make([]byte, chipSize)
	rand.New(rand.NewSource(7)).Read(vendor)
	next := makeImage(t, imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 2, owner: ownerA})
	chip := newDummyChip(t, vendor)
	var log bytes.Buffer
	res, err := (&Update{Device: chip.dev, Image: next, BackupDir: t.TempDir(), FirstInstall: true, Log: &log}).Run(ctx(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	mustEqual(t, "chip", chip.contents(t), next)
	kept, _ := os.ReadFile(res.Backup.Path)
	mustEqual(t, "vendor backup", kept, vendor)
}

func TestUpdateBIOSRegionOnly(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "LENOVO", part: "ThinkPad X230", payload: 1, owner: ownerA, ifd: true})
	next := makeImage(t, imageSpec{vendor: "LENOVO", part: "ThinkPad X230", payload: 2, owner: ownerA, ifd: true})
	// The new image's ME region differs: internal flashing must leave the
	// chip's ME (and descriptor) alone.
	for i := 0x1000; i < 0x2000; i++ {
		next[i] ^= 0x5a
	}
	chip := newDummyChip(t, old)
	var log bytes.Buffer
	res, err := (&Update{Device: internalDevice{chip.dev}, Image: next, BackupDir: t.TempDir(), Log: &log}).Run(ctx(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Region != BIOSRegion || res.Span != (Span{Offset: 0x200000, Size: 0xe00000}) {
		t.Fatalf("region %q %+v", res.Region, res.Span)
	}
	if !strings.Contains(log.String(), "--ifd -i bios -N -w") {
		t.Errorf("write did not use the descriptor's BIOS region:\n%s", log.String())
	}
	got := chip.contents(t)
	mustEqual(t, "descriptor and ME", got[:0x200000], old[:0x200000])
	mustEqual(t, "BIOS region", got[0x200000:], next[0x200000:])

	// A layout that differs from the chip's is refused.
	moved := append([]byte(nil), next...)
	moved[0x44+2] = 0x10 // BIOS limit moved (FLREG1 bits 30:16)
	_, err = (&Update{Device: internalDevice{chip.dev}, Image: moved, BackupDir: t.TempDir()}).Run(ctx(t))
	if !errors.Is(err, ErrLayout) || !IsNotWritten(err) {
		t.Fatalf("moved BIOS region: %v", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 1, owner: ownerA})
	next := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 2, owner: ownerA})
	chip := newDummyChip(t, old)
	backups := filepath.Join(t.TempDir(), "backups")
	var log bytes.Buffer
	called := false
	res, err := (&Update{Device: chip.dev, Image: next, BackupDir: backups, DryRun: true, Log: &log,
		BeforeWrite: func(context.Context, []byte) error { called = true; return nil }}).Run(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "chip", chip.contents(t), old)
	if _, err := os.Stat(backups); !os.IsNotExist(err) {
		t.Errorf("dry run created the backup directory")
	}
	if called || res.Wrote || res.Written != nil {
		t.Errorf("dry run ran the re-seal hook (%v) or wrote (%v)", called, res.Wrote)
	}
	for _, s := range []string{"DRY RUN", "[dry run: not run]", "write: flashrom -p dummy:emulate=W25Q128FV", " -w ", "[dry run: not kept]"} {
		if !strings.Contains(log.String(), s) {
			t.Errorf("log lacks %q:\n%s", s, log.String())
		}
	}
}

// flakyRead injects what a loose clip does: the second read returns one
// flipped bit. The emulator always reads back what it holds, so this is
// the one fault the test fakes.
type flakyRead struct {
	*Flashrom
	reads int
}

func (f *flakyRead) Read(ctx context.Context, path string) error {
	if err := f.Flashrom.Read(ctx, path); err != nil {
		return err
	}
	f.reads++
	if f.reads == 2 {
		b, _ := os.ReadFile(path)
		b[0x123456] ^= 0x08
		os.WriteFile(path, b, 0o600)
	}
	return nil
}

func TestUnstableReadRefused(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 1})
	next := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 2})
	chip := newDummyChip(t, old)
	_, err := (&Update{Device: &flakyRead{Flashrom: chip.dev}, Image: next, BackupDir: t.TempDir()}).Run(ctx(t))
	if !errors.Is(err, ErrUnstableRead) || !IsNotWritten(err) || !strings.Contains(err.Error(), "first at 0x123456") {
		t.Fatalf("%v", err)
	}
	mustEqual(t, "chip", chip.contents(t), old)
}

func TestRestoreRefusesDamagedBackup(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 1})
	cur := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 2})
	dir := t.TempDir()
	b, err := KeepBackup(dir, "W25Q128.V", old, fixedNow())
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(b.Path, 0o600)
	damaged, _ := os.ReadFile(b.Path)
	damaged[0x8000] ^= 1
	os.WriteFile(b.Path, damaged, 0o600)
	chip := newDummyChip(t, cur)
	err = Restore(ctx(t), chip.dev, b.Path, "", false, nil)
	if !errors.Is(err, ErrBackup) || !IsNotWritten(err) || !strings.Contains(err.Error(), "is damaged") {
		t.Fatalf("%v", err)
	}
	mustEqual(t, "chip", chip.contents(t), cur)
}

func TestBackupsNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	a, err := KeepBackup(dir, "W25Q128.V", []byte("first"), fixedNow())
	if err != nil {
		t.Fatal(err)
	}
	b, err := KeepBackup(dir, "W25Q128.V", []byte("second"), fixedNow())
	if err != nil {
		t.Fatal(err)
	}
	if a.Path == b.Path || !strings.HasSuffix(b.Path, "-W25Q128.V-2.rom") {
		t.Fatalf("%s %s", a.Path, b.Path)
	}
	if got, _ := os.ReadFile(a.Path); string(got) != "first" {
		t.Errorf("first backup now holds %q", got)
	}
	if err := createNew(a.Path, []byte("x"), 0o400); !errors.Is(err, os.ErrExist) {
		t.Errorf("createNew over an existing backup: %v", err)
	}
	list, errs := ListBackups(dir)
	if len(list) != 2 || len(errs) != 0 {
		t.Errorf("list %v %v", list, errs)
	}
	// A checksum file naming another file is refused.
	os.Chmod(a.Path+".sha256", 0o600)
	os.WriteFile(a.Path+".sha256", []byte(strings.Repeat("0", 64)+"  other.rom\n"), 0o600)
	if _, err := CheckBackup(a.Path); err == nil || !strings.Contains(err.Error(), "not of") {
		t.Errorf("checksum of another file accepted: %v", err)
	}
}

func TestBoardOf(t *testing.T) {
	img := makeImage(t, imageSpec{vendor: "LENOVO", part: "ThinkPad T440p", payload: 1})
	b, err := BoardOf(img)
	if err != nil || b.Vendor != "LENOVO" || b.Part != "ThinkPad T440p" {
		t.Fatalf("%v %v", b, err)
	}
	// The project's real coreboot ROM, when built (make rom).
	for _, p := range []string{"../../out/coreboot-tpm2.rom", "../../cache/coreboot-build-tpm2/tree/build/coreboot.rom"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		b, err := BoardOf(data)
		if err != nil || b.String() != "Emulation QEMU x86 q35/ich9" {
			t.Errorf("%s: %v %v", p, b, err)
		}
		break
	}
}

// Updates keep the owner's settings: the chip's glint/* files replace the
// new image's, unless --clean.
func TestUpdateCarriesOwnerFiles(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 1, owner: ownerA})
	publisherDefaults := map[string][]byte{"glint/owner.asc": []byte("the publisher's placeholder\n"), "glint/extra": []byte("x")}
	next := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 2, owner: publisherDefaults})
	for _, clean := range []bool{false, true} {
		chip := newDummyChip(t, old)
		var log bytes.Buffer
		res, err := (&Update{Device: chip.dev, Image: next, BackupDir: t.TempDir(), Clean: clean, Log: &log}).Run(ctx(t))
		if err != nil {
			t.Fatalf("clean=%v: %v\n%s", clean, err, log.String())
		}
		got := chip.contents(t)
		want := OwnerFiles(old)
		if clean {
			want = OwnerFiles(next)
		}
		if !sameFiles(OwnerFiles(got), want) {
			t.Errorf("clean=%v: owner files on the chip %v, want %v", clean, sortedNames(OwnerFiles(got)), sortedNames(want))
		}
		// The rest is the new image's.
		gotPay, _ := BoardOf(got)
		if gotPay.String() != "V P" {
			t.Errorf("board %v", gotPay)
		}
		if !clean && (len(res.Carried) != 2 || !strings.Contains(log.String(), "owner files carried from the current firmware: glint/config, glint/owner.asc")) {
			t.Errorf("carried %v\n%s", res.Carried, log.String())
		}
		if !bytes.Equal(payloadOf(t, got), payloadOf(t, next)) {
			t.Error("the payload on the chip is not the new image's")
		}
	}
}

func payloadOf(t *testing.T, image []byte) []byte {
	t.Helper()
	img, err := rom.FromBytes(image)
	if err != nil {
		t.Fatal(err)
	}
	f, err := img.File("COREBOOT", "fallback/payload")
	if err != nil {
		t.Fatal(err)
	}
	return f.Data
}

// A chip whose block protection is held by its WP# pin (the dummy
// programmer's hwwp=yes with BP bits and SRP set): the write fails, glint
// says the flash is write-protected, and the chip still holds the old image.
func TestWriteProtectedChip(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 1})
	next := makeImage(t, imageSpec{vendor: "V", part: "P", payload: 2})
	chip := newDummyChip(t, old)
	chip.dev.Programmer += ",hwwp=yes,spi_status=0x9c"
	_, err := (&Update{Device: chip.dev, Image: next, BackupDir: t.TempDir()}).Run(ctx(t))
	if !errors.Is(err, ErrWriteProtected) || IsNotWritten(err) || !strings.Contains(err.Error(), "glint flash restore") {
		t.Fatalf("%v", err)
	}
	mustEqual(t, "chip", chip.contents(t), old)
}
