package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func TestBootDefaultIsSigned(t *testing.T) {
	home, id, pub := gpgKey(t, "Owner")
	spec := swtpmtest.Start(t, tpm.Version20)
	boot := t.TempDir()
	os.MkdirAll(filepath.Join(boot, "grub"), 0o755)
	os.WriteFile(filepath.Join(boot, "vmlinuz-a"), []byte("kernel a"), 0o644)
	os.WriteFile(filepath.Join(boot, "vmlinuz-b"), []byte("kernel b"), 0o644)
	os.WriteFile(filepath.Join(boot, "grub", "grub.cfg"), []byte(
		"menuentry 'A' {\n linux /vmlinuz-a ro\n}\nmenuentry 'B' {\n linux /vmlinuz-b ro quiet\n}\n"), 0o644)

	out, code := glintRun("--tpm", spec, "--boot", boot, "boot", "default", "--yes", "--gpg-home", home, "--key", id, "2")
	if code != 0 {
		t.Fatalf("boot default: %d\n%s", code, out)
	}
	d, err := bootcfg.DiscoverFS(os.DirFS(boot))
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := manifest.ReadPair(boot)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if m.Default != d.Entries[1].ID {
		t.Fatalf("signed default %q, want entry 2's id %q", m.Default, d.Entries[1].ID)
	}
	if out, code = glintRun("--tpm", spec, "verify", "--pubkey", pub, boot); code != 0 {
		t.Fatalf("verify after boot default: %d\n%s", code, out)
	}
	if out, code = glintRun("--boot", boot, "boot", "default", "7"); code != 2 || !strings.Contains(out, "no entry 7") {
		t.Fatalf("out-of-range entry: %d\n%s", code, out)
	}
}
