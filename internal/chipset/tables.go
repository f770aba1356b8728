package chipset

import "fmt"

// PCI functions whose configuration space a Dump carries (bus 0).
const (
	HostBridge = "00:00.0" // memory controller / host bridge: SMRAM control
	MEI        = "00:16.0" // Management Engine interface (absent on ICH9, hidden on some builds)
	LPC        = "00:1f.0" // LPC bridge: BIOS_CNTL, RCBA
)

// Register offsets shared by every chipset glint knows (ICH9 and later PCHs before the SPI
// controller moved to its own PCI function).
const (
	regBIOSCntl = 0xDC // LPC: BIOS_CNTL, 8 bits
	regRCBA     = 0xF0 // LPC: root complex base address, 32 bits

	rcbaMask    = 0xFFFFC000 // RCBA bits 31:14 (16 KiB aligned)
	rcbaEnable  = 1 << 0
	spiBarInRCB = 0x3800 // SPI registers' offset inside the root complex register block

	// SPI registers, offsets from SPIBAR (7-series PCH datasheet 21.1; ICH9 datasheet 22.1).
	spiHSFS = 0x04 // 16 bits
	spiFRAP = 0x50
	spiFREG = 0x54 // FREG0..FREG4, 4 bytes each
	spiPR   = 0x74 // PR0..PR4, 4 bytes each

	// SPIWindow is how many bytes of the SPI register block a Dump keeps: everything up to and
	// past the protected ranges (PR4 ends at 0x88).
	SPIWindow = 0x100

	// MEI: host firmware status (FWSTS1 / HFS) and general ME status (FWSTS2 / GMES).
	regMEHFS  = 0x40
	regMEGMES = 0x48
)

// BIOS_CNTL bits.
const (
	bcBIOSWE = 1 << 0 // BIOS write enable: flash writes through the controller are allowed
	bcBLE    = 1 << 1 // BIOS lock enable: setting BIOSWE raises an SMI
	bcSMMBWP = 1 << 5 // SMM BIOS write protect: writes only while all CPUs are in SMM (PCH only)
)

// HSFS bits.
const (
	hsfsFLOCKDN = 1 << 15 // flash configuration lock-down: PRs, FRAP and opcode menus frozen until reset
	hsfsFDV     = 1 << 14 // flash descriptor valid
	hsfsFDOPSS  = 1 << 13 // descriptor override pin-strap status: 0 means the override jumper is on
)

// Flash regions (FREG index, descriptor order).
const (
	RegionDescriptor = 0
	RegionBIOS       = 1
	RegionME         = 2
	RegionGbE        = 3
	RegionPlatform   = 4
)

var regionNames = [5]string{"descriptor", "BIOS", "ME", "GbE", "platform data"}

// RegionName names a flash region index.
func RegionName(i int) string {
	if i >= 0 && i < len(regionNames) {
		return regionNames[i]
	}
	return fmt.Sprintf("region %d", i)
}

// SMRAM control bits (SMRAMC on Sandy/Ivy Bridge at 0x88, SMRAM on the 3-series MCH at 0x9D).
const (
	smramDLCK   = 1 << 4 // D_LCK: SMRAM configuration locked until reset
	smramDOPEN  = 1 << 6 // D_OPEN: SMRAM visible outside SMM
	smramGSMRAM = 1 << 3 // G_SMRAME: SMRAM enabled
)

// Family groups chipsets that share one register layout.
type Family string

const (
	Family7Series Family = "7-series" // Panther Point (X230, T430), and 6-series Cougar Point
	FamilyICH9    Family = "ICH9"     // ICH9 + 3-series MCH: QEMU's q35 machine
)

// Chipset is one entry of glint's register table.
type Chipset struct {
	Name   string
	Family Family
	// LPC device IDs (vendor 8086) that identify it, inclusive range.
	lpcFirst, lpcLast uint16
	// smramOffset is the SMRAM control register in the host bridge.
	smramOffset int
	// hasSMMBWP: BIOS_CNTL has the SMM_BWP bit (the PCHs do, ICH9 does not).
	hasSMMBWP bool
	// hasME: the chipset has a Management Engine with an MEI function at 00:16.0.
	hasME bool
}

// Chipsets is glint's register table.
var Chipsets = []Chipset{
	{Name: "Intel 7 Series PCH (Panther Point)", Family: Family7Series, lpcFirst: 0x1E40, lpcLast: 0x1E5F,
		smramOffset: 0x88, hasSMMBWP: true, hasME: true},
	{Name: "Intel 6 Series PCH (Cougar Point)", Family: Family7Series, lpcFirst: 0x1C40, lpcLast: 0x1C5F,
		smramOffset: 0x88, hasSMMBWP: true, hasME: true},
	{Name: "Intel ICH9 (QEMU q35)", Family: FamilyICH9, lpcFirst: 0x2910, lpcLast: 0x291F,
		smramOffset: 0x9D, hasSMMBWP: false, hasME: false},
}

const vendorIntel = 0x8086

// lookup finds the table entry for an LPC bridge's vendor and device ID.
func lookup(vendor, device uint16) (*Chipset, bool) {
	if vendor != vendorIntel {
		return nil, false
	}
	for i := range Chipsets {
		c := &Chipsets[i]
		if device >= c.lpcFirst && device <= c.lpcLast {
			return c, true
		}
	}
	return nil, false
}

// HasSMMBWP reports whether BIOS_CNTL has the SMM_BWP bit on this chipset.
func (c *Chipset) HasSMMBWP() bool { return c.hasSMMBWP }

// HasME reports whether this chipset has a Management Engine.
func (c *Chipset) HasME() bool { return c.hasME }
