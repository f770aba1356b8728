package eventlog

import (
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/physmem"
	"github.com/glint-boot/glint/internal/safefile"
)

// Where a running Linux exposes firmware logs.
const (
	SecurityFSLog = "/sys/kernel/security/tpm0/binary_bios_measurements"
	DevMem        = "/dev/mem"
)

// ReadFirmwareLog returns this machine's firmware measurement log: the TCG
// log Linux exposes in securityfs (UEFI, SeaBIOS, newer coreboot), else
// coreboot's cbmem log read through /dev/mem (coreboot 4.15, whose log Linux
// does not see). securityfs must be mounted (glint's /init mounts it).
func ReadFirmwareLog() (*Log, error) {
	return ReadFirmwareLogFrom(SecurityFSLog, DevMem)
}

// ReadFirmwareLogFrom is ReadFirmwareLog with the two sources named, so tests
// and unusual systems (tpm1, a memory dump) can point elsewhere.
func ReadFirmwareLogFrom(securityfsPath, memPath string) (*Log, error) {
	var tried []string
	raw, err := readCapped(securityfsPath)
	switch {
	case err == nil && len(raw) > 0:
		l, err := ParseTCG(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", securityfsPath, err)
		}
		l.Source = securityfsPath
		return l, nil
	case err == nil:
		tried = append(tried, securityfsPath+" is empty")
	default:
		tried = append(tried, err.Error())
	}
	f, err := physmem.OpenPath(memPath)
	if err != nil {
		tried = append(tried, err.Error())
		return nil, fmt.Errorf("%w (%s); mount securityfs on /sys/kernel/security, or on coreboot run as root so %s can be read", ErrNotFound, joinTried(tried), memPath)
	}
	defer f.Close()
	l, err := ReadCorebootLog(f)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w (%s; %v)", ErrNotFound, joinTried(tried), err)
		}
		return nil, err
	}
	return l, nil
}

func joinTried(t []string) string {
	s := ""
	for i, x := range t {
		if i > 0 {
			s += "; "
		}
		s += x
	}
	return s
}

// readCapped reads a file of at most MaxLogSize bytes. securityfs files
// report size 0, so the size cannot be trusted up front.
func readCapped(path string) ([]byte, error) {
	b, err := safefile.ReadCapped(path, MaxLogSize)
	var tooLarge *safefile.TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, errorf(0, path, ErrTooLarge, "more than %d bytes", MaxLogSize)
	}
	return b, err
}

// ReadFile parses a log file of any supported format: TCG (SHA-1 or
// crypto-agile), or a coreboot TCPA log dumped from cbmem (`cbmem -r
// 54435041`), told apart by the TCG first event's shape.
func ReadFile(path string) (*Log, error) {
	raw, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	l, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.Source = path
	return l, nil
}

// Parse parses a log of any supported format. A TCG log starts with an event
// on PCR 0..23 whose fields are consistent; a TCPA table starts with two u16
// counts. When the TCG reading fails and the TCPA one succeeds, it is TCPA.
func Parse(rawLog []byte) (*Log, error) {
	l, err := ParseTCG(rawLog)
	if err == nil {
		return l, nil
	}
	if t, terr := ParseTCPA(rawLog); terr == nil && len(t.Events) > 0 {
		return t, nil
	}
	return nil, err
}
