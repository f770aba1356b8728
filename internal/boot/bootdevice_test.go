package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/glint-boot/glint/internal/rootfs"
)

// TestBootDeviceByUUIDAndLabel: the documented boot.device = UUID=/LABEL=
// works (it was only honoured as /dev/...), resolved from real ext4
// superblocks; a UUID on two devices is an error, not a guess; without it,
// internal disks are tried before removable ones.
func TestBootDeviceByUUIDAndLabel(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed (apt-get install e2fsprogs)")
	}
	dir := t.TempDir()
	mk := func(name, uuid, label string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, nil, 0o600))
		must(t, os.Truncate(p, 8<<20))
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-U", uuid, "-L", label, p).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
		return p
	}
	boot := mk("boot.img", "3f1c2b4a-0000-4000-8000-000000000001", "glintboot")
	other := mk("other.img", "3f1c2b4a-0000-4000-8000-000000000002", "data")
	devs := []string{other, boot}
	keep := func(d []string) []string { return d }
	for _, want := range []string{"UUID=3f1c2b4a-0000-4000-8000-000000000001", "LABEL=glintboot"} {
		got, err := bootCandidates(want, devs, keep, rootfs.FindDevice)
		if err != nil || !slices.Equal(got, []string{boot}) {
			t.Fatalf("%s: %v, %v", want, got, err)
		}
	}
	clone := mk("clone.img", "3f1c2b4a-0000-4000-8000-000000000001", "glintboot")
	if _, err := bootCandidates("UUID=3f1c2b4a-0000-4000-8000-000000000001", append(devs, clone), keep, rootfs.FindDevice); err == nil {
		t.Fatal("a UUID on two devices was resolved")
	}
	if _, err := bootCandidates("PARTUUID=x", devs, keep, rootfs.FindDevice); err == nil {
		t.Fatal("an unknown form was accepted")
	}
	order := func(d []string) []string { return []string{"/dev/sda1", "/dev/sdb1"} }
	if got, _ := bootCandidates("", devs, order, nil); !slices.Equal(got, []string{"/dev/sda1", "/dev/sdb1"}) {
		t.Fatalf("default order: %v", got)
	}
}
