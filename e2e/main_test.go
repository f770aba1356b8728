//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	printSummary(os.Stdout)
	os.Exit(code)
}

// needTools skips when a real part is missing (CI installs them all: scripts/install-deps.sh)
// and fails when the build outputs are missing (make e2e builds them first).
func needTools(t *testing.T, fw Firmware) {
	t.Helper()
	for _, tool := range []string{"qemu-system-x86_64", "swtpm", "swtpm_setup", "cbfstool", "gpg", "mkfs.ext4", "debugfs", "sfdisk", "mkfs.vfat", "mcopy", "oathtool", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	top := repoRoot(t)
	need := []string{"out/payload.cpio.xz", "out/glint-payload", "out/kernel/bzImage", "cache/kernel/vmlinuz"}
	if fw == OVMF {
		need = append(need, ovmfCode, ovmfVarsEmpty, ovmfVarsMS)
	} else {
		need = append(need, "out/"+string(fw)+".rom")
	}
	for _, f := range need {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(top, f)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing: run `make rom payload` (make e2e does)", p)
		}
	}
}

// TestSmoke powers each firmware variant on once and checks the chain up to glint as /init:
// coreboot measures its stages into PCR 2 (logged on the serial line), the kernel starts,
// glint prints its first line. It needs nothing from the boot flow beyond that first line.
func TestSmoke(t *testing.T) {
	for _, fw := range []Firmware{CorebootTPM2, CorebootTPM1, OVMF} {
		t.Run(string(fw), func(t *testing.T) {
			needTools(t, fw)
			m := NewMachine(t, fw, "smoke-"+string(fw))
			r := m.Boot(t, "smoke")
			if fw != OVMF {
				alg := "SHA256"
				if !fw.TPM2() {
					alg = "SHA1"
				}
				if _, err := r.Expect(`PCR-2 [0-9a-f]+ `+alg+` \[FMAP: COREBOOT CBFS: fallback/payload\]`, 60*time.Second); err != nil {
					t.Fatalf("coreboot did not measure the payload into PCR 2: %v", err)
				}
			}
			if _, err := r.Expect(markerInit, 90*time.Second); err != nil {
				t.Fatalf("glint never ran as /init: %v", err)
			}
			r.Screenshot(t, "smoke")
			toInit, _ := r.FirstSeen(markerInit)
			r.Stop(t)
			t.Logf("%s: power-on to glint's first line: %.1f s", fw, toInit.Seconds())
			fmt.Printf("SMOKE %s to-init %.1fs\n", fw, toInit.Seconds())
		})
	}
}
