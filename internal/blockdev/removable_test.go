package blockdev

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestInternalFirst: a sysfs tree as Linux shows an NVMe disk, a USB stick
// (fixed, but on a USB bus) and an SD card (removable=1): the internal disk
// and its partition come first.
func TestInternalFirst(t *testing.T) {
	sys := t.TempDir()
	devices := filepath.Join(sys, "devices")
	mkdisk := func(path, name, removable string) {
		d := filepath.Join(devices, path, name)
		if err := os.MkdirAll(filepath.Join(d, name+"1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "removable"), []byte(removable+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{name, name + "1"} {
			target := d // the disk
			if n != name {
				target = filepath.Join(d, n) // its partition
			}
			if err := os.Symlink(target, filepath.Join(sys, "block-"+n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkdisk("pci0000:00/0000:00:1d.0/usb2/2-1/host6/target6:0:0/6:0:0:0/block", "sda", "0")
	mkdisk("pci0000:00/0000:00:1c.4/mmc0/mmc0:0001/block", "mmcblk0", "1")
	mkdisk("pci0000:00/0000:00:06.0/nvme/nvme0/block", "nvme0n1", "0")
	block := filepath.Join(sys, "class-block")
	if err := os.MkdirAll(block, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sda", "sda1", "mmcblk0", "mmcblk01", "nvme0n1", "nvme0n11"} {
		target, _ := os.Readlink(filepath.Join(sys, "block-"+n))
		if err := os.Symlink(target, filepath.Join(block, n)); err != nil {
			t.Fatal(err)
		}
	}
	got := internalFirst(block, []string{"/dev/sda", "/dev/sda1", "/dev/mmcblk0", "/dev/mmcblk01", "/dev/nvme0n1", "/dev/nvme0n11"})
	want := []string{"/dev/nvme0n1", "/dev/nvme0n11", "/dev/sda", "/dev/sda1", "/dev/mmcblk0", "/dev/mmcblk01"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}
