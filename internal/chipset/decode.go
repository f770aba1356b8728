package chipset

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// State is a Dump explained: each part is nil when the dump did not have what it needs, and
// the matching ...Missing field says why in words.
type State struct {
	// Chipset is the table entry for the LPC bridge, nil when glint has none for it.
	Chipset *Chipset
	// LPCVendor, LPCDevice identify the LPC bridge (zero when absent).
	LPCVendor, LPCDevice uint16

	BIOS         *BIOSControl
	BIOSMissing  string
	SPI          *SPI
	SPIMissing   string
	SMRAM        *SMRAM
	SMRAMMissing string
	ME           *ME
	MEMissing    string
}

// BIOSControl is the LPC bridge's BIOS_CNTL register.
type BIOSControl struct {
	Raw         uint8
	WriteEnable bool // BIOSWE
	LockEnable  bool // BLE
	SMMBWP      bool // SMM_BWP (false where the chipset lacks the bit)
	HasSMMBWP   bool
}

// SPI is the SPI flash controller's state.
type SPI struct {
	HSFS uint16
	// Locked is HSFS.FLOCKDN: FRAP, the protected ranges and the opcode menus cannot change
	// until the next reset.
	Locked bool
	// DescriptorValid is HSFS.FDV: the flash has an Intel flash descriptor and the region
	// registers below mean something.
	DescriptorValid bool
	// DescriptorOverride is the inverse of HSFS.FDOPSS: the descriptor-override strap (a jumper
	// or a pin pulled on the board) is active and region permissions are ignored.
	DescriptorOverride bool
	FRAP               uint32
	Regions            [5]Region
	Protected          [5]ProtectedRange
}

// Region is one flash region from FREGn (flash linear addresses, inclusive limit).
type Region struct {
	Base, Limit uint32
	Used        bool
}

// ProtectedRange is one PRn register.
type ProtectedRange struct {
	Raw          uint32
	Base, Limit  uint32 // inclusive limit
	WriteProtect bool   // WPE
	ReadProtect  bool   // RPE
}

// Enabled reports whether the range protects anything.
func (p ProtectedRange) Enabled() bool { return p.WriteProtect || p.ReadProtect }

// SMRAM is the host bridge's SMRAM control register.
type SMRAM struct {
	Raw     uint8
	Locked  bool // D_LCK
	Open    bool // D_OPEN
	Enabled bool // G_SMRAME
}

// ME is the Management Engine's firmware status (HFS / FWSTS1 and GMES / FWSTS2), decoded as
// coreboot's src/southbridge/intel/bd82x6x/me.h does for ME 7 and 8.
type ME struct {
	HFS, GMES         uint32
	WorkingState      uint8 // 0 reset, 1 initializing, 2 recovery, 5 normal, 6 disable wait, 7 transition, 8 invalid CPU
	ManufacturingMode bool
	FPTBad            bool
	OperationState    uint8 // 0 preboot, 1 M0 with UMA, 4 M3, 5 M0, 6 bring-up, 7 error
	FWInitComplete    bool
	UpdateInProgress  bool
	ErrorCode         uint8 // 0 none, 1 uncategorized, 3 image failure, 4 debug failure
	OperationMode     uint8 // 0 normal, 2 debug, 3 soft temporary disable, 4 override jumper, 5 override by MEI
}

// MEVerdict sorts the ME's state into what an owner needs to know.
type MEVerdict int

const (
	MEUnknown           MEVerdict = iota
	MERunning                     // full firmware up and running
	MEHalted                      // stopped before finishing its init: what a neutered (me_cleaner) ME does
	MEDisabled                    // soft-disabled (HAP / AltMeDisable / MEI disable)
	MEDebug                       // debug operation mode
	MEManufacturingMode           // manufacturing mode: descriptor and ME settings are still open
	MESecurityOverride            // security override (jumper or MEI): flash permissions bypassed
)

var meVerdictNames = map[MEVerdict]string{
	MEUnknown: "unknown", MERunning: "running", MEHalted: "halted (neutered)", MEDisabled: "disabled",
	MEDebug: "debug mode", MEManufacturingMode: "manufacturing mode", MESecurityOverride: "security override",
}

func (v MEVerdict) String() string { return meVerdictNames[v] }

// Verdict classifies the ME state; the most serious condition wins.
func (m *ME) Verdict() MEVerdict {
	switch {
	case m.HFS == 0xFFFFFFFF || m.HFS == 0:
		return MEUnknown
	case m.ManufacturingMode:
		return MEManufacturingMode
	case m.OperationMode == 4 || m.OperationMode == 5:
		return MESecurityOverride
	case m.OperationMode == 3:
		return MEDisabled
	case m.OperationMode == 2:
		return MEDebug
	case m.FWInitComplete && m.WorkingState == 5:
		return MERunning
	}
	return MEHalted
}

var meWorkingStates = map[uint8]string{0: "reset", 1: "initializing", 2: "recovery", 5: "normal", 6: "disable wait", 7: "transition", 8: "invalid CPU plugged in"}
var meErrors = map[uint8]string{0: "no error", 1: "uncategorized failure", 3: "image failure", 4: "debug failure"}
var meModes = map[uint8]string{0: "normal", 2: "debug", 3: "soft temporary disable", 4: "security override (jumper)", 5: "security override (MEI)"}

func nameOr(m map[uint8]string, v uint8) string {
	if s, ok := m[v]; ok {
		return s
	}
	return fmt.Sprintf("%d", v)
}

// String describes the raw state in the words intelmetool uses.
func (m *ME) String() string {
	return fmt.Sprintf("HFS %#08x: working state %s, operation mode %s, error %s, init complete %t, manufacturing mode %t",
		m.HFS, nameOr(meWorkingStates, m.WorkingState), nameOr(meModes, m.OperationMode),
		nameOr(meErrors, m.ErrorCode), m.FWInitComplete, m.ManufacturingMode)
}

// HostCanRead and HostCanWrite report the BIOS master's (the CPU's) access to a region from
// FRAP.BRRA / FRAP.BRWA.
func (s *SPI) HostCanRead(region int) bool  { return s.FRAP&(1<<uint(region)) != 0 }
func (s *SPI) HostCanWrite(region int) bool { return s.FRAP&(1<<(8+uint(region))) != 0 }

// WriteProtects reports whether the write-protected ranges together cover [base, limit].
func (s *SPI) WriteProtects(base, limit uint32) bool {
	var rs []ProtectedRange
	for _, p := range s.Protected {
		if p.WriteProtect && p.Limit >= p.Base {
			rs = append(rs, p)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Base < rs[j].Base })
	next := uint64(base) // first address not yet known to be covered
	for _, r := range rs {
		if uint64(r.Base) > next {
			break
		}
		if uint64(r.Limit)+1 > next {
			next = uint64(r.Limit) + 1
		}
		if next > uint64(limit) {
			return true
		}
	}
	return next > uint64(limit)
}

// BIOSRegion returns the BIOS region, when the descriptor defines one.
func (s *SPI) BIOSRegion() (Region, bool) {
	if !s.DescriptorValid || !s.Regions[RegionBIOS].Used {
		return Region{}, false
	}
	return s.Regions[RegionBIOS], true
}

// Decode explains a dump with the chipset's register table.
func Decode(d *Dump) (*State, error) {
	if d == nil {
		return nil, fmt.Errorf("chipset: no dump")
	}
	st := &State{}
	lpc, ok := d.PCI[LPC]
	if !ok || len(lpc) < ConfigSize {
		st.BIOSMissing = "the LPC bridge (00:1f.0) was not readable"
		st.SPIMissing, st.SMRAMMissing, st.MEMissing = st.BIOSMissing, st.BIOSMissing, st.BIOSMissing
		return st, nil
	}
	st.LPCVendor = binary.LittleEndian.Uint16(lpc[0:])
	st.LPCDevice = binary.LittleEndian.Uint16(lpc[2:])
	c, known := lookup(st.LPCVendor, st.LPCDevice)
	if !known {
		why := fmt.Sprintf("glint has no register table for the chipset with LPC bridge %04x:%04x", st.LPCVendor, st.LPCDevice)
		st.BIOSMissing, st.SPIMissing, st.SMRAMMissing, st.MEMissing = why, why, why, why
		return st, nil
	}
	st.Chipset = c

	bc := lpc[regBIOSCntl]
	st.BIOS = &BIOSControl{Raw: bc, WriteEnable: bc&bcBIOSWE != 0, LockEnable: bc&bcBLE != 0,
		SMMBWP: c.hasSMMBWP && bc&bcSMMBWP != 0, HasSMMBWP: c.hasSMMBWP}

	st.SPI, st.SPIMissing = decodeSPI(d, binary.LittleEndian.Uint32(lpc[regRCBA:]))

	if hb, ok := d.PCI[HostBridge]; ok && len(hb) >= ConfigSize {
		v := hb[c.smramOffset]
		st.SMRAM = &SMRAM{Raw: v, Locked: v&smramDLCK != 0, Open: v&smramDOPEN != 0, Enabled: v&smramGSMRAM != 0}
	} else {
		st.SMRAMMissing = "the host bridge (00:00.0) was not readable"
	}

	switch {
	case !c.hasME:
		st.MEMissing = "this chipset has no Management Engine"
	default:
		mei, ok := d.PCI[MEI]
		if !ok || len(mei) < ConfigSize {
			st.MEMissing = "the ME interface (00:16.0) is not visible: the firmware hid it (common on neutered builds) or disabled it"
			break
		}
		st.ME = decodeME(binary.LittleEndian.Uint32(mei[regMEHFS:]), binary.LittleEndian.Uint32(mei[regMEGMES:]))
	}
	return st, nil
}

func decodeME(hfs, gmes uint32) *ME {
	return &ME{
		HFS: hfs, GMES: gmes,
		WorkingState:      uint8(hfs & 0xF),
		ManufacturingMode: hfs&(1<<4) != 0,
		FPTBad:            hfs&(1<<5) != 0,
		OperationState:    uint8(hfs >> 6 & 0x7),
		FWInitComplete:    hfs&(1<<9) != 0,
		UpdateInProgress:  hfs&(1<<11) != 0,
		ErrorCode:         uint8(hfs >> 12 & 0xF),
		OperationMode:     uint8(hfs >> 16 & 0xF),
	}
}

// decodeSPI reads the SPI window; the string says why there is no SPI state.
func decodeSPI(d *Dump, rcba uint32) (*SPI, string) {
	if rcba&rcbaEnable == 0 {
		return nil, "the root complex register block (RCBA) is not enabled, so the SPI controller's registers are not mapped"
	}
	if d.SPI == nil {
		return nil, "the SPI registers were not read (run as root on the machine itself)"
	}
	if want := rcba&rcbaMask + spiBarInRCB; d.SPIBase != want {
		return nil, fmt.Sprintf("the SPI window was read at %#x but RCBA puts it at %#x", d.SPIBase, want)
	}
	if len(d.SPI) < SPIWindow {
		return nil, "the SPI window is short"
	}
	w := d.SPI
	allSame := func(b byte) bool {
		for _, v := range w[:0x88] {
			if v != b {
				return false
			}
		}
		return true
	}
	switch {
	case allSame(0xFF):
		return nil, "the SPI registers read as all ones: nothing answers at SPIBAR"
	case allSame(0x00):
		return nil, "the SPI registers read as all zeros: there is no SPI controller behind them (QEMU does not model one)"
	}
	hsfs := binary.LittleEndian.Uint16(w[spiHSFS:])
	s := &SPI{
		HSFS:               hsfs,
		Locked:             hsfs&hsfsFLOCKDN != 0,
		DescriptorValid:    hsfs&hsfsFDV != 0,
		DescriptorOverride: hsfs&hsfsFDV != 0 && hsfs&hsfsFDOPSS == 0,
		FRAP:               binary.LittleEndian.Uint32(w[spiFRAP:]),
	}
	for i := range s.Regions {
		v := binary.LittleEndian.Uint32(w[spiFREG+4*i:])
		base, limit := (v&0x1FFF)<<12, (v>>16&0x1FFF)<<12|0xFFF
		s.Regions[i] = Region{Base: base, Limit: limit, Used: limit > base}
	}
	for i := range s.Protected {
		v := binary.LittleEndian.Uint32(w[spiPR+4*i:])
		s.Protected[i] = ProtectedRange{Raw: v, Base: (v & 0x1FFF) << 12, Limit: (v>>16&0x1FFF)<<12 | 0xFFF,
			WriteProtect: v&(1<<31) != 0, ReadProtect: v&(1<<15) != 0}
	}
	return s, ""
}
