package boot

import (
	"time"

	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
)

// linuxFirmware is the firmware glint runs on: its image mapped below
// 4 GiB (read through /dev/mem) and its measurement log (securityfs, else
// coreboot's cbmem).
type linuxFirmware struct{}

// OwnerFiles reads the owner's files (CBFS glint/*) from the running image.
func (linuxFirmware) OwnerFiles() (map[string][]byte, error) {
	img, err := rom.FromDevMem()
	if err != nil {
		return nil, err
	}
	return rom.OwnerFiles(img)
}

func (linuxFirmware) Events(bank tpm.Alg) []eventlog.EventRecord {
	return sealed.ReadFirmwareEvents(bank)
}

func (linuxFirmware) Log() ([]byte, error) {
	return client.ReadEventLog(eventlog.SecurityFSLog, eventlog.DevMem)
}

func (linuxFirmware) Image() ([]byte, error) {
	img, err := rom.FromDevMem()
	if err != nil {
		return nil, err
	}
	return img.Data, nil
}

// tpmDevice is the machine's TPM: spec, or /dev/tpmrm0 then /dev/tpm0,
// with every command counted for the boot timing report.
type tpmDevice struct {
	spec  string
	stats *tpm.Stats
}

// OpenTPM waits briefly for the kernel's TPM driver.
func (d *tpmDevice) OpenTPM() (tpm.TPM, error) {
	cands := []string{"/dev/tpmrm0", "/dev/tpm0"}
	if d.spec != "" {
		cands = []string{d.spec}
	}
	var lastErr error
	for try := 0; try < 20; try++ {
		for _, c := range cands {
			t, st, err := tpm.OpenWithStats(c)
			if err == nil {
				d.stats = st
				return t, nil
			}
			lastErr = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, lastErr
}

// Stats are the counts of the opened TPM (nil before OpenTPM).
func (d *tpmDevice) Stats() *tpm.Stats { return d.stats }
