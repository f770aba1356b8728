package manifest

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

func TestBuildKeepsSelectedBytes(t *testing.T) {
	boot := t.TempDir()
	kernel := bytes.Repeat([]byte("kernel"), 100000)
	os.WriteFile(filepath.Join(boot, "vmlinuz"), kernel, 0o644)
	os.WriteFile(filepath.Join(boot, "other"), []byte("other"), 0o644)
	m, err := Build(boot, BuildOptions{Keep: func(rel string) bool { return rel == "vmlinuz" }})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Kept["vmlinuz"], kernel) {
		t.Fatalf("kept %d bytes, want the %d-byte kernel", len(m.Kept["vmlinuz"]), len(kernel))
	}
	if _, ok := m.Kept["other"]; ok {
		t.Fatal("kept a file nobody asked for")
	}
	for _, e := range m.Entries {
		if e.Path == "vmlinuz" && e.SHA256 != sha256.Sum256(m.Kept["vmlinuz"]) {
			t.Fatal("kept bytes are not the hashed bytes")
		}
	}
	// Over the cap, nothing is kept (the caller reads the file itself).
	m, err = Build(boot, BuildOptions{Keep: func(string) bool { return true }, MaxKeep: 10})
	if err != nil || len(m.Kept) != 1 {
		t.Fatalf("cap: kept %d files (%v), want only the 5-byte one", len(m.Kept), err)
	}
}
