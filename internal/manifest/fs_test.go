package manifest

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
)

// TestFS: the manifest's view of /boot lists exactly the signed entries and
// serves a file only through the caller's verified read.
func TestFS(t *testing.T) {
	m := &Manifest{Entries: []Entry{
		{Kind: KindDir, Path: "grub"},
		{Kind: KindFile, Path: "grub/grub.cfg", Size: 5},
		{Kind: KindFile, Path: "vmlinuz-6.1", Size: 3},
		{Kind: KindLink, Path: "vmlinuz", Target: "vmlinuz-6.1"},
	}}
	content := map[string]string{"grub/grub.cfg": "menu\n", "vmlinuz-6.1": "elf", "vmlinuz": "elf"}
	var reads []string
	fsys := FS(m, func(name string) ([]byte, error) {
		reads = append(reads, name)
		return []byte(content[name]), nil
	})
	// fstest's consistency checks on the files and directories (a link is
	// listed with the manifest's size 0 and opens as its target's bytes)
	plain := &Manifest{Entries: m.Entries[:3]}
	if err := fstest.TestFS(FS(plain, func(name string) ([]byte, error) { return []byte(content[name]), nil }), "grub/grub.cfg", "vmlinuz-6.1"); err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "vmlinuz"); err != nil || string(b) != "elf" {
		t.Fatalf("the link: %q, %v", b, err)
	}
	if b, err := fs.ReadFile(fsys, "grub/grub.cfg"); err != nil || string(b) != "menu\n" {
		t.Fatalf("grub.cfg: %q, %v", b, err)
	}
	if len(reads) == 0 {
		t.Fatal("files were served without the verified read")
	}
	if _, err := fsys.Open("grub/custom.cfg"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file the manifest does not list: %v", err)
	}
	if _, err := fsys.Open("../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("a path out of /boot: %v", err)
	}
	bad := errors.New("hash mismatch")
	broken := FS(m, func(string) ([]byte, error) { return nil, bad })
	if _, err := fs.ReadFile(broken, "vmlinuz-6.1"); !errors.Is(err, bad) {
		t.Fatalf("a failed verified read: %v", err)
	}
}
