package rootfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mkfs makes a real ext4 image (mkfs.ext4, e2fsprogs) with a UUID and label.
func mkfs(t testing.TB, uuid, label string) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed (e2fsprogs)")
	}
	img := filepath.Join(t.TempDir(), label+".img")
	if b, err := exec.Command("mkfs.ext4", "-q", "-F", "-U", uuid, "-L", label, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, b)
	}
	return img
}

func TestFindDevice(t *testing.T) {
	root := mkfs(t, "8d2f0c7e-1f6b-4e2a-9c3d-5a6b7c8d9e0f", "debian-root")
	other := mkfs(t, "11111111-2222-3333-4444-555555555555", "data")
	notfs := filepath.Join(t.TempDir(), "zero.img")
	os.WriteFile(notfs, make([]byte, 8192), 0o644)
	devs := []string{notfs, other, root}
	for spec, want := range map[string]string{
		"UUID=8D2F0C7E-1F6B-4E2A-9C3D-5A6B7C8D9E0F": root,
		"LABEL=data": other,
		"/dev/sda2":  "/dev/sda2",
	} {
		got, err := FindDevice(spec, devs)
		if err != nil || got != want {
			t.Errorf("%s: %q %v", spec, got, err)
		}
	}
	if _, err := FindDevice("UUID=8d2f0c7e-1f6b-4e2a-9c3d-5a6b7c8d9e0f", []string{root, root}); err == nil {
		t.Error("a UUID on two devices was accepted")
	}
	if _, err := FindDevice("PARTUUID=x", devs); err == nil {
		t.Error("unknown spec accepted")
	}
	b, _ := os.ReadFile(notfs)
	if _, err := ParseSuperblock(b); !errors.Is(err, ErrNotExt) {
		t.Errorf("zeros: %v", err)
	}
}

func FuzzParseSuperblock(f *testing.F) {
	img := mkfs(f, "8d2f0c7e-1f6b-4e2a-9c3d-5a6b7c8d9e0f", "debian-root")
	b, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:2048])
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := ParseSuperblock(b)
		if err == nil && len(sb.UUIDString()) != 36 {
			t.Fatalf("UUID %q", sb.UUIDString())
		}
	})
}
