package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// glint eventlog replay --pcrs: a log recorded from OVMF against the PCRs
// recorded in the same boot, then against a file with PCR 0 changed.
func TestEventlogReplayPCRFile(t *testing.T) {
	td := filepath.Join("..", "..", "internal", "eventlog", "testdata")
	out, code := glintRun("eventlog", "replay", "--pcrs", filepath.Join(td, "ovmf-tpm2.pcrs"), filepath.Join(td, "ovmf-tpm2.bin"))
	if code != 0 || !strings.Contains(out, "# the log reproduces") {
		t.Fatalf("recorded PCRs: exit %d\n%s", code, out)
	}
	raw, err := os.ReadFile(filepath.Join(td, "ovmf-tpm2.pcrs"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "sha256" && f[1] == "0" {
			lines[i] = "sha256 0 " + strings.Repeat("11", 32)
		}
	}
	changed := filepath.Join(t.TempDir(), "changed.pcrs")
	if err := os.WriteFile(changed, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = glintRun("eventlog", "replay", "--pcrs", changed, filepath.Join(td, "ovmf-tpm2.bin"))
	if code != 1 || !strings.Contains(out, "PCR  0") || !strings.Contains(out, "MISMATCH") {
		t.Fatalf("changed PCR 0: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(changed, []byte("sha256 0 1111\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = glintRun("eventlog", "replay", "--pcrs", changed, filepath.Join(td, "ovmf-tpm2.bin"))
	if !strings.Contains(out, "changed.pcrs:1: PCR 0: 4 hex digits") || strings.Contains(out, "reproduces") {
		t.Fatalf("short value not named: exit %d\n%s", code, out)
	}
}
