package flash

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The emulated laptop's chip (a disk standing for the SPI flash) goes
// through the same update steps as a flashrom chip: two reads, the
// backup, the write, the read-back. A file stands for the disk here.
func TestDiskChipUpdate(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 1, owner: ownerA})
	next := makeImage(t, imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 2, owner: ownerA})
	disk := filepath.Join(t.TempDir(), "chip.img")
	if err := os.WriteFile(disk, old, 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	u := &Update{Device: &DiskChip{Path: disk}, Image: next, Source: "next.rom", BackupDir: filepath.Join(t.TempDir(), "backups"), Clean: true, Log: &log, Now: fixedNow}
	res, err := u.Run(ctx(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	got, _ := os.ReadFile(disk)
	mustEqual(t, "chip after update", got, next)
	kept, _ := os.ReadFile(res.Backup.Path)
	mustEqual(t, "backup", kept, old)
	for _, step := range []string{"both reads agree", "backup kept", "emulated flash chip"} {
		if !strings.Contains(log.String(), step) {
			t.Errorf("log lacks %q:\n%s", step, log.String())
		}
	}
	// A wrong-size image is refused before anything is written.
	u = &Update{Device: &DiskChip{Path: disk}, Image: next[:len(next)/2], BackupDir: t.TempDir(), Clean: true, Now: fixedNow}
	if _, err := u.Run(ctx(t)); !IsNotWritten(err) {
		t.Fatalf("half an image: %v", err)
	}
	got, _ = os.ReadFile(disk)
	mustEqual(t, "chip after the refusal", got, next)
}

func TestFindDiskChip(t *testing.T) {
	sys := t.TempDir()
	for name, serial := range map[string]string{"vda": "", "vdb": "stick\n", "vdc": DiskChipSerial + "\n"} {
		os.MkdirAll(filepath.Join(sys, name), 0o755)
		os.WriteFile(filepath.Join(sys, name, "serial"), []byte(serial), 0o644)
	}
	d, ok := FindDiskChip(sys)
	if !ok || d.Path != "/dev/vdc" {
		t.Fatalf("got %v %v", d, ok)
	}
	os.Remove(filepath.Join(sys, "vdc", "serial"))
	if _, ok := FindDiskChip(sys); ok {
		t.Fatal("found a chip without the serial")
	}
}
