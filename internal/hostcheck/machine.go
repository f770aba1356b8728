package hostcheck

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// Machine is where the checks read from. A nil source makes its checks "cannot tell here".
type Machine struct {
	// Registers takes a chipset register dump.
	Registers func() (*chipset.Dump, error)
	// KernelSPI reports what Linux's spi-intel driver says, if it is loaded.
	KernelSPI func() (*chipset.KernelSPI, bool)
	// Root prefixes /sys (sysfs and securityfs); "" means there is no system to look at (a
	// dump file judged on another machine).
	Root string
	// EventLog reads the firmware's measurement log.
	EventLog func() (*eventlog.Log, error)
}

// System is the running machine: registers through sysfs and /dev/mem, the TPM and the logs
// through sysfs and securityfs (glint's /init mounts them; so does every Linux distribution).
func System() Machine {
	live := chipset.System
	return Machine{Registers: live.ReadLive, KernelSPI: live.ReadKernelSPI, Root: "/", EventLog: eventlog.ReadFirmwareLog}
}

// FromDump judges a register dump taken elsewhere: the register checks only.
func FromDump(d *chipset.Dump) Machine {
	return Machine{Registers: func() (*chipset.Dump, error) { return d, nil }}
}

func (m Machine) path(p string) string { return filepath.Join(m.Root, p) }

func (m Machine) exists(p string) bool {
	_, err := os.Stat(m.path(p))
	return err == nil
}

func (m Machine) nonEmptyDir(p string) bool {
	ents, err := os.ReadDir(m.path(p))
	return err == nil && len(ents) > 0
}

func (m Machine) readTrim(p string) (string, error) {
	b, err := readCapped(m.path(p), 4096)
	return strings.TrimSpace(string(b)), err
}

// readCapped reads a small sysfs/securityfs file, refusing anything over max bytes.
func readCapped(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, max+1)
	n, err := f.Read(buf)
	if err != nil && n == 0 && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%s: more than %d bytes", path, max)
	}
	return buf[:n], nil
}

// tpmInfo is what sysfs says about the first TPM.
type tpmInfo struct {
	present bool
	version tpm.Version
	bank    tpm.Alg
	pcrs    map[int][]byte // PCR 0-7 in bank; nil when they could not be read
	pcrErr  error
}

const tpmClass = "sys/class/tpm/tpm0"

// firmwarePCRs are the PCRs read: the firmware's, 0-7.
var firmwarePCRs = []int{0, 1, 2, 3, 4, 5, 6, 7}

func (m Machine) readTPM() tpmInfo {
	var t tpmInfo
	if m.Root == "" || !m.exists(tpmClass) {
		return t
	}
	t.present = true
	major, _ := m.readTrim(tpmClass + "/tpm_version_major")
	switch major {
	case "2":
		t.version = tpm.Version20
		for _, bank := range []tpm.Alg{tpm.SHA256, tpm.SHA1} {
			dir := tpmClass + "/pcr-" + bank.String() // the kernel's names are tpm.Alg's
			if !m.exists(dir) {
				continue
			}
			t.bank = bank
			t.pcrs, t.pcrErr = pcr.ReadSysfs(m.path(tpmClass), bank, firmwarePCRs)
			return t
		}
		t.pcrErr = errors.New("the kernel shows no PCR bank in sysfs (Linux 5.12 or later does)")
	case "1":
		t.version, t.bank = tpm.Version12, tpm.SHA1
		t.pcrs, t.pcrErr = pcr.ReadSysfs12(m.path(tpmClass), firmwarePCRs)
	default:
		t.pcrErr = fmt.Errorf("tpm_version_major is %q", major)
	}
	return t
}

// firmwareKind tells UEFI from coreboot: the two measure different PCRs.
func (m Machine) firmwareKind(log *eventlog.Log) string {
	switch {
	case m.Root != "" && m.exists("sys/firmware/efi"):
		return "uefi"
	case log != nil && log.Format == eventlog.FormatCorebootTCPA,
		m.Root != "" && m.nonEmptyDir("sys/bus/coreboot/devices"):
		// the coreboot bus exists whenever the driver is built in; devices appear on it only
		// when the firmware left coreboot tables
		return "coreboot"
	}
	return "unknown"
}
