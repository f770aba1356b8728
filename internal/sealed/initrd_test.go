package sealed

import (
	"os"
	"slices"
	"testing"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// TestUEFISealsTheInitrd: on the UEFI profile the secrets cover PCR 9,
// where the kernel's EFI stub measured glint's initramfs in the real OVMF
// log recorded from QEMU (testdata of internal/eventlog); a coreboot log has
// no such event (there the payload, initramfs included, is in PCR 2).
func TestUEFISealsTheInitrd(t *testing.T) {
	if !slices.Contains(pcr.UEFI.OTP, 9) || !slices.Contains(pcr.UEFI.Disk, 9) || slices.Contains(pcr.Coreboot.OTP, 9) {
		t.Fatalf("PCR 9: pcr.UEFI.OTP %v, disk %v; coreboot OTP %v", pcr.UEFI.OTP, pcr.UEFI.Disk, pcr.Coreboot.OTP)
	}
	raw, err := os.ReadFile("../eventlog/testdata/ovmf-tpm2.bin")
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.ParseTCG(raw)
	if err != nil {
		t.Fatal(err)
	}
	recs := l.Records(tpm.SHA256)
	if !InitrdMeasured(recs) {
		t.Fatal("the OVMF log's Linux initrd event is not recognised")
	}
	var without []eventlog.EventRecord
	for _, r := range recs {
		if r.PCR != 9 {
			without = append(without, r)
		}
	}
	if InitrdMeasured(without) {
		t.Fatal("a log without PCR 9 events counts as measuring the initrd")
	}
}
