package chipset

import (
	"errors"
	"fmt"
	"os"
)

// The request coreboot's SMM handler treats as "finalize the chipset": APM_CNT_FINALIZE (0xcb)
// written to the APM control port (0xb2) raises an SMI (coreboot src/include/cpu/x86/smm.h).
// On the 6/7-series PCH the handler sets HSFS.FLOCKDN, BIOS interface lockdown, SMI_LOCK,
// TCO_LOCK and the host bridge's register locks (southbridge/intel/common/finalize.c,
// northbridge/intel/sandybridge/finalize.c). The protected ranges it freezes were programmed
// earlier in ramstage (CONFIG_BOOTMEDIA_LOCK_CONTROLLER). Heads' lock_chip sends the same.
const (
	APMControlPort = 0xb2
	APMFinalize    = 0xcb
)

// PortWriter writes one byte to an x86 I/O port.
type PortWriter interface {
	WritePort(port uint16, value byte) error
}

// DevPort writes I/O ports through /dev/port (CONFIG_DEVPORT), which needs root and no iopl.
type DevPort string

// WritePort writes value to port.
func (p DevPort) WritePort(port uint16, value byte) error {
	f, err := os.OpenFile(string(p), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", string(p), err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{value}, int64(port)); err != nil {
		return fmt.Errorf("write %#02x to I/O port %#x: %w", value, port, err)
	}
	return nil
}

// Snapshot takes a register dump of the machine (Live.ReadLive on real hardware).
type Snapshot func() (*Dump, error)

// LockReport is what Lock did and found.
type LockReport struct {
	Before, After *State
	// AlreadyLocked: the flash was locked before glint asked (the firmware locked it itself, or
	// this is a second call); no SMI was sent.
	AlreadyLocked bool
	// Sent: glint raised the finalize SMI.
	Sent bool
	// Missing lists, in words, each protection that is not in place afterwards. Empty means
	// the lock took.
	Missing []string
}

// Took reports whether the flash is locked after Lock.
func (r *LockReport) Took() bool { return r != nil && len(r.Missing) == 0 }

// String is one line for the console and the journal.
func (r *LockReport) String() string {
	switch {
	case r.Took() && r.AlreadyLocked:
		return "flash lock: already locked by the firmware"
	case r.Took():
		return "flash lock: locked (SPI configuration lock-down set, protected ranges cover the BIOS region)"
	}
	s := "flash lock: NOT locked:"
	for i, m := range r.Missing {
		if i > 0 {
			s += ";"
		}
		s += " " + m
	}
	return s
}

// ErrNoChipset means Lock cannot judge this machine: glint has no register table for it.
var ErrNoChipset = errors.New("no register table for this chipset")

// Lock asks the firmware to lock the flash and checks that the lock took, by reading the
// registers before and after. It only returns an error when it could not ask or not read;
// a lock that did not take is a report with Missing filled in.
func Lock(port PortWriter, snap Snapshot) (*LockReport, error) {
	before, err := snapState(snap)
	if err != nil {
		return nil, fmt.Errorf("flash lock: read the chipset before locking: %w", err)
	}
	r := &LockReport{Before: before}
	if before.Chipset == nil {
		return nil, fmt.Errorf("flash lock: %w (%s)", ErrNoChipset, before.SPIMissing)
	}
	if len(FlashLockGaps(before)) == 0 {
		r.AlreadyLocked, r.After = true, before
		return r, nil
	}
	if err := port.WritePort(APMControlPort, APMFinalize); err != nil {
		return nil, fmt.Errorf("flash lock: raise the finalize SMI: %w", err)
	}
	r.Sent = true
	after, err := snapState(snap)
	if err != nil {
		return nil, fmt.Errorf("flash lock: read the chipset after locking: %w", err)
	}
	r.After = after
	r.Missing = FlashLockGaps(after)
	return r, nil
}

func snapState(snap Snapshot) (*State, error) {
	d, err := snap()
	if err != nil {
		return nil, err
	}
	return Decode(d)
}

// FlashLockGaps lists what keeps the flash from being locked against writes from the running
// system: the SPI configuration must be locked down (FLOCKDN), and the BIOS region (the whole
// flash when there is no descriptor) must be write-protected, either by protected ranges, or
// by BIOS_CNTL with SMM_BWP (writes only from SMM) where protected ranges do not cover it.
func FlashLockGaps(st *State) []string {
	if st.SPI == nil {
		return []string{"cannot read the SPI controller: " + st.SPIMissing}
	}
	var gaps []string
	if !st.SPI.Locked {
		gaps = append(gaps, "the SPI controller's configuration is not locked down (HSFS.FLOCKDN clear), so protections can still be undone")
	}
	if !BIOSWriteProtected(st) {
		gaps = append(gaps, "no protected range covers the BIOS region and BIOS_CNTL does not restrict writes to SMM")
	}
	return gaps
}

// BIOSWriteProtected reports whether the BIOS region cannot be written through the SPI
// controller from outside SMM: protected ranges with write protection cover it, or BIOS_CNTL
// has BIOSWE clear, BLE and SMM_BWP set.
func BIOSWriteProtected(st *State) bool {
	return RangesProtectBIOS(st) || BIOSControlProtects(st)
}

// RangesProtectBIOS reports whether write-protected PRs cover the BIOS region. Without a valid
// descriptor there is no BIOS region to check against, and the answer is false.
func RangesProtectBIOS(st *State) bool {
	if st.SPI == nil {
		return false
	}
	if r, ok := st.SPI.BIOSRegion(); ok {
		return st.SPI.WriteProtects(r.Base, r.Limit)
	}
	return false
}

// BIOSControlProtects reports whether BIOS_CNTL alone keeps writes to SMM: BIOSWE clear, BLE
// set (setting BIOSWE raises an SMI) and SMM_BWP set (writes need every CPU in SMM, which
// closes the race in which a second CPU writes while the SMI handler runs).
func BIOSControlProtects(st *State) bool {
	b := st.BIOS
	return b != nil && !b.WriteEnable && b.LockEnable && b.SMMBWP
}
