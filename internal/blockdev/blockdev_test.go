package blockdev

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestListSkipsVirtualDevices(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"vda", "vda1", "loop0", "ram0", "dm-0", "sr0", "nvme0n1p2"} {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := list(dir)
	want := []string{"/dev/nvme0n1p2", "/dev/vda", "/dev/vda1"}
	if !slices.Equal(got, want) {
		t.Fatalf("list = %v, want %v", got, want)
	}
	if list(filepath.Join(dir, "missing")) != nil {
		t.Fatal("no sysfs: want no devices")
	}
}
