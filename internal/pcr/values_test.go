package pcr

import (
	"bytes"
	"errors"
	"fmt"
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

// sysfs12 is a TPM 1.2 pcrs file as Linux prints it, PCR i holding bytes of i.
func sysfs12(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "PCR-%02d:", i)
		for j := 0; j < 20; j++ {
			fmt.Fprintf(&b, " %02X", i)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

func TestReadSysfs12(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "device"), 0o755); err != nil {
		t.Fatal(err)
	}
	// older kernels keep the file under device/
	if err := os.WriteFile(filepath.Join(dir, "device", "pcrs"), sysfs12(24), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := ReadSysfs12(dir, []int{2, 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 || !bytes.Equal(v[2], bytes.Repeat([]byte{2}, 20)) || !bytes.Equal(v[7], bytes.Repeat([]byte{7}, 20)) {
		t.Fatalf("got %x", v)
	}
	if _, err := ReadSysfs12(t.TempDir(), []int{0}); err == nil {
		t.Fatal("no pcrs file accepted")
	}
}

func TestParseSysfs12Rejects(t *testing.T) {
	short := strings.Replace(string(sysfs12(8)), "PCR-03: 03 03", "PCR-03: 03", 1)
	for name, in := range map[string]string{
		"missing PCR":  string(sysfs12(7)),
		"short digest": short,
		"twice":        string(sysfs12(8)) + string(sysfs12(1)),
		"not hex":      strings.Replace(string(sysfs12(8)), "PCR-05: 05", "PCR-05: zz", 1),
		"over the cap": string(sysfs12(8)) + strings.Repeat("#", MaxSysfs12Size),
	} {
		_, err := ParseSysfs12([]byte(in), []int{0, 1, 2, 3, 4, 5, 6, 7})
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a ParseError", name, err)
		}
	}
}
