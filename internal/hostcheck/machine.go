package hostcheck

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/eventlog"
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
			t.pcrs, t.pcrErr = m.readPCRDir(dir)
			return t
		}
		t.pcrErr = errors.New("the kernel shows no PCR bank in sysfs (Linux 5.12 or later does)")
	case "1":
		t.version, t.bank = tpm.Version12, tpm.SHA1
		for _, p := range []string{tpmClass + "/pcrs", tpmClass + "/device/pcrs"} {
			if b, err := readCapped(m.path(p), 8192); err == nil {
				t.pcrs, t.pcrErr = parseTPM12PCRs(b)
				return t
			}
		}
		t.pcrErr = errors.New("the kernel shows no TPM 1.2 pcrs file")
	default:
		t.pcrErr = fmt.Errorf("tpm_version_major is %q", major)
	}
	return t
}

func (m Machine) readPCRDir(dir string) (map[int][]byte, error) {
	out := map[int][]byte{}
	for i := 0; i <= 7; i++ {
		s, err := m.readTrim(fmt.Sprintf("%s/%d", dir, i))
		if err != nil {
			return nil, err
		}
		v, err := hex.DecodeString(s)
		if err != nil || len(v) > eventlog.MaxDigestSize {
			return nil, fmt.Errorf("%s/%d: not a digest: %q", dir, i, s)
		}
		out[i] = v
	}
	return out, nil
}

// parseTPM12PCRs reads the TPM 1.2 driver's "PCR-00: 3A 3F ..." lines (drivers/char/tpm/tpm1-cmd.c
// via tpm-sysfs.c pcrs_show), keeping PCR 0-7.
func parseTPM12PCRs(b []byte) (map[int][]byte, error) {
	out := map[int][]byte{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || !strings.HasPrefix(name, "PCR-") {
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(name, "PCR-"))
		if err != nil || i < 0 || i > 7 {
			continue
		}
		v, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(rest), " ", ""))
		if err != nil || len(v) != 20 {
			return nil, fmt.Errorf("pcrs: PCR-%02d is not a SHA-1 digest", i)
		}
		out[i] = v
	}
	if len(out) != 8 {
		return nil, fmt.Errorf("pcrs: found %d of PCR 0-7", len(out))
	}
	return out, nil
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
