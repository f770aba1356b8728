package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/chipset"
)

// TestRecordedQEMUDumps judges the register dumps glint itself took inside QEMU q35 guests
// (kernel/kerneltest, GLINT_UPDATE=1): real ICH9/MCH configuration spaces as QEMU models them,
// under three firmwares. QEMU has no SPI controller, so the SPI checks cannot tell; what the
// firmware did to SMRAM shows.
func TestRecordedQEMUDumps(t *testing.T) {
	for _, fw := range []string{"seabios", "ovmf", "coreboot"} {
		t.Run(fw, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "qemu-q35-"+fw+".dump"))
			if err != nil {
				t.Fatalf("%v (record with GLINT_UPDATE=1 go test -tags qemu ./kernel/kerneltest/)", err)
			}
			d, err := chipset.ParseDump(b)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(d.Source, "recorded in QEMU") {
				t.Errorf("source %q does not say it was recorded", d.Source)
			}
			r := Run(FromDump(d), PhaseOS)
			if !strings.Contains(r.Chipset, "ICH9") {
				t.Errorf("chipset %q", r.Chipset)
			}
			for _, id := range []string{IDSPILock, IDSPIWrite, IDDescriptor} {
				if res, _ := r.Get(id); res.Status != CannotTell || !strings.Contains(res.Detail, "QEMU does not model") && !strings.Contains(res.Detail, "RCBA") {
					t.Errorf("%s: %s (%s)", id, res.Status, res.Detail)
				}
			}
			if res, _ := r.Get(IDME); res.Status != NotApplicable {
				t.Errorf("ME on ICH9: %s", res.Status)
			}
			// BIOS_CNTL reads 0 on q35 (QEMU keeps no state there), which is unprotected
			if res, _ := r.Get(IDBIOSControl); res.Status != Fail {
				t.Errorf("BIOS_CNTL: %s (%s)", res.Status, res.Detail)
			}
			res, _ := r.Get(IDSMRAM)
			t.Logf("%s: SMRAM %s: %s", fw, res.Status, res.Detail)
			if res.Status != Pass && res.Status != Fail {
				t.Errorf("SMRAM not judged: %s", res.Status)
			}
		})
	}
}
