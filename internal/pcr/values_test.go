package pcr

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// Recorded from QEMU guests by internal/eventlog/testdata/record.sh.
func TestParseValuesRecorded(t *testing.T) {
	raw, err := os.ReadFile("testdata/ovmf-tpm2.pcrs")
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseValues(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(v[tpm.SHA1]) != 24 || len(v[tpm.SHA256]) != 24 || len(v[tpm.SHA256][0]) != 32 {
		t.Fatalf("banks %d sha1, %d sha256 values", len(v[tpm.SHA1]), len(v[tpm.SHA256]))
	}
	raw, err = os.ReadFile("testdata/coreboot-tpm12.pcrs")
	if err != nil {
		t.Fatal(err)
	}
	if v, err = ParseValues(raw); err != nil || len(v[tpm.SHA1][2]) != 20 || v[tpm.SHA1][2][0] != 0x9B {
		t.Fatalf("TPM 1.2 values (upper-case hex): %v, %x", err, v[tpm.SHA1][2])
	}
}

func TestParseValuesRejects(t *testing.T) {
	zero20 := strings.Repeat("00", 20)
	for _, c := range []struct {
		text string
		line int
	}{
		{"sha1 0\n", 1},
		{"# comment\n\nmd5 0 " + zero20 + "\n", 3},
		{"sha1 32 " + zero20, 1},
		{"sha1 -1 " + zero20, 1},
		{"sha1 0 " + strings.Repeat("00", 32), 1}, // a sha256 value in the sha1 bank
		{"sha1 0 " + strings.Repeat("zz", 20), 1},
		{"sha1 0 " + zero20 + "\nsha1 0 " + zero20, 2},
		{strings.Repeat("#", MaxValuesSize+1), 0},
	} {
		_, err := ParseValues([]byte(c.text))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != c.line {
			t.Errorf("%.40q: %v, want a ParseError on line %d", c.text, err, c.line)
		}
	}
}

func TestReadSysfs(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "pcr-sha256"), 0o755))
	val := bytes.Repeat([]byte{0xab}, 32)
	must(os.WriteFile(filepath.Join(dir, "pcr-sha256", "7"), []byte(strings.ToUpper(strings.Repeat("ab", 32))+"\n"), 0o444))
	got, err := ReadSysfs(dir, tpm.SHA256, []int{7})
	if err != nil || !bytes.Equal(got[7], val) {
		t.Fatalf("ReadSysfs: %x, %v", got[7], err)
	}
	must(os.WriteFile(filepath.Join(dir, "pcr-sha256", "8"), []byte("abab\n"), 0o444))
	var pe *ParseError
	if _, err := ReadSysfs(dir, tpm.SHA256, []int{8}); !errors.As(err, &pe) {
		t.Fatalf("short value: %v, want a ParseError", err)
	}
	if _, err := ReadSysfs(dir, tpm.SHA1, []int{7}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no sha1 bank in sysfs: %v", err)
	}
}
