package rom

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The Intel Flash Descriptor (IFD) is the first 4 KiB of the SPI flash on
// Intel platforms since ICH8. The chipset reads it at power-on to learn how
// the flash is split into regions (descriptor, BIOS, ME, GbE, platform
// data, ...), which bus master may read or write which region, and the
// soft straps (among them the bits that ask the ME to disable itself).
//
// Layout (Intel PCH datasheets, "SPI Flash Descriptor"; coreboot
// util/ifdtool/ifdtool.h, which glint is cross-checked against), all fields
// little-endian:
//
//	0x10  FLVALSIG 0x0FF0A55A (0x00 on ICH8 before Ibex Peak B-step)
//	+0x04 FLMAP0: FCBA = bits 0-7 << 4, NC = bits 8-9 (+1),
//	              FRBA = bits 16-23 << 4, NR = bits 24-26
//	+0x08 FLMAP1: FMBA = bits 0-7 << 4, NM = bits 8-10,
//	              FPSBA = bits 16-23 << 4, ISL (PCH strap dwords) = bits 24-31
//	+0x0c FLMAP2: FMSBA = bits 0-7 << 4, MSL/PSL = bits 8-15
//	FCBA  FLCOMP (component densities, SPI clocks), FLILL, FLPB
//	FRBA  FLREG0..n: base = bits 0-14 << 12, limit = bits 16-30 << 12 | 0xfff
//	      (IFD v1 masks both with 0xfff: 16 MiB at most)
//	FMBA  FLMSTR1 (host CPU/BIOS), FLMSTR2 (ME), FLMSTR3 (GbE), FLMSTR5 (EC, v2):
//	      v1: read bits 16-23, write bits 24-31, requester ID bits 0-15;
//	      v2: read bits 8-19, write bits 20-31 (one bit per region)
//	FPSBA PCHSTRP0..ISL-1 (soft straps); FMSBA processor straps
const (
	ifdSignature     = 0x0FF0A55A
	descriptorSize   = 4096
	ifdV1Regions     = 5 // regions ifdtool 4.15 reads on IFD v1 (descriptor .. platform data)
	ifdV2Regions     = 9 // and on v2 (up to EC); regions 9-15 of newer PCHs are not read
	ifdV1BaseMask    = 0xfff
	ifdV2BaseMask    = 0x7fff
	flmstrWrShiftV1  = 24
	flmstrRdShiftV1  = 16
	flmstrWrShiftV2  = 20
	flmstrRdShiftV2  = 8
	procStrapDwords  = 8 // FMSBA holds 8 dwords of processor straps (ifdtool dumps 8)
	maxPCHStrapBytes = descriptorSize
)

// IFDVersion is the descriptor format generation. Version 1 is ICH8 up to
// 9-series PCHs (Sandy/Ivy Bridge, Haswell, Broadwell: the ThinkPad X230,
// T430, T440p); version 2 is 100-series PCHs and later (Skylake on: T480).
type IFDVersion int

const (
	IFDv1 IFDVersion = 1
	IFDv2 IFDVersion = 2
)

// RegionID numbers the flash regions as the descriptor does.
type RegionID int

const (
	RegionDescriptor   RegionID = 0
	RegionBIOS         RegionID = 1
	RegionME           RegionID = 2
	RegionGbE          RegionID = 3
	RegionPlatformData RegionID = 4
	RegionEC           RegionID = 8
)

// regionNames are ifdtool's names (pretty, terse): the terse ones are what
// flashrom layout files and `ifdtool -i/-n` use.
var regionNames = [ifdV2Regions][2]string{
	{"Flash Descriptor", "fd"}, {"BIOS", "bios"}, {"Intel ME", "me"}, {"GbE", "gbe"},
	{"Platform Data", "pd"}, {"Reserved", "res1"}, {"Reserved", "res2"}, {"Reserved", "res3"},
	{"EC", "ec"},
}

func (r RegionID) String() string {
	if r >= 0 && int(r) < len(regionNames) {
		return regionNames[r][0]
	}
	return fmt.Sprintf("region %d", int(r))
}

// Short is the region's layout-file name ("fd", "bios", "me", ...).
func (r RegionID) Short() string {
	if r >= 0 && int(r) < len(regionNames) {
		return regionNames[r][1]
	}
	return fmt.Sprintf("region%d", int(r))
}

// RegionByName finds a region by its ifdtool name, pretty or terse, in any
// case ("BIOS", "bios", "Intel ME", "me", "Descriptor" ...).
func RegionByName(name string) (RegionID, bool) {
	if strings.EqualFold(name, "Descriptor") {
		return RegionDescriptor, true
	}
	if strings.EqualFold(name, "Platform") {
		return RegionPlatformData, true
	}
	for i, n := range regionNames {
		if strings.EqualFold(name, n[0]) || strings.EqualFold(name, n[1]) {
			return RegionID(i), true
		}
	}
	return 0, false
}

// Region is one FLREG entry.
type Region struct {
	ID RegionID
	// Base and Limit are flash offsets; Limit is the last byte (inclusive),
	// as the descriptor stores it. A region whose limit is below its base
	// is unused.
	Base, Limit uint32
	Raw         uint32 // the FLREG dword
}

// Used reports whether the region occupies flash.
func (r Region) Used() bool { return r.Limit >= r.Base }

// Size is the region's length in bytes (0 when unused).
func (r Region) Size() int64 {
	if !r.Used() {
		return 0
	}
	return int64(r.Limit) - int64(r.Base) + 1
}

func (r Region) String() string {
	if !r.Used() {
		return fmt.Sprintf("%-16s unused", r.ID)
	}
	return fmt.Sprintf("%-16s 0x%08x-0x%08x (%d KiB)", r.ID, r.Base, r.Limit, r.Size()>>10)
}

// Master is one FLMSTR register: which regions a bus master may read and
// write. Bit n of Read/Write is region n.
type Master struct {
	Name        string // "Host CPU/BIOS", "Intel ME", "GbE", "EC"
	Register    int    // 1 for FLMSTR1 ...
	Raw         uint32
	Read, Write uint16
	RequesterID uint16 // IFD v1 only
}

// CanRead reports whether the master may read region r.
func (m Master) CanRead(r RegionID) bool { return r >= 0 && r < 16 && m.Read&(1<<r) != 0 }

// CanWrite reports whether the master may write region r.
func (m Master) CanWrite(r RegionID) bool { return r >= 0 && r < 16 && m.Write&(1<<r) != 0 }

// MEDisableStrap is the soft strap that asks the ME to turn itself off after
// platform initialisation: HAP on IFD v2 (PCHSTRP0 bit 16), AltMeDisable on
// 5-9 series PCHs (PCHSTRP10 bit 7), ICH_MeDisable on ICH8-10 (PCHSTRP0 bit 0).
type MEDisableStrap struct {
	Name    string // "HAP", "AltMeDisable", "ICH_MeDisable"
	Present bool   // false when the descriptor has too few straps to hold it
	Set     bool
}

// Descriptor is a parsed Intel Flash Descriptor.
type Descriptor struct {
	Offset  int64 // of the FLVALSIG signature (0x10, or 0 on early ICH8)
	Version IFDVersion
	Chipset string // a guess in the manner of flashrom/ifdtool, e.g. "7 series Panther Point"

	FLMAP0, FLMAP1, FLMAP2 uint32
	FLCOMP                 uint32
	// FCBA, FRBA, FMBA, FPSBA and FMSBA are the section offsets in the image.
	FCBA, FRBA, FMBA, FPSBA, FMSBA int64

	// Components is the number of flash chips; ComponentSize their sizes
	// from FLCOMP (0 when the density field says "unused" or is unknown).
	Components    int
	ComponentSize [2]int64

	Regions    []Region
	Masters    []Master
	PCHStraps  []uint32
	ProcStraps []uint32
	MEDisable  MEDisableStrap
}

// FlashSize is the flash size the descriptor declares (sum of the
// components), 0 if it declares none it knows.
func (d *Descriptor) FlashSize() int64 {
	n := d.ComponentSize[0]
	if d.Components == 2 {
		n += d.ComponentSize[1]
	}
	return n
}

// Region returns region id.
func (d *Descriptor) Region(id RegionID) (Region, bool) {
	if id < 0 || int(id) >= len(d.Regions) {
		return Region{}, false
	}
	return d.Regions[id], true
}

// Master returns the master whose FLMSTR register is n (1 = host CPU/BIOS).
func (d *Descriptor) Master(n int) (Master, bool) {
	for _, m := range d.Masters {
		if m.Register == n {
			return m, true
		}
	}
	return Master{}, false
}

// HostMaster is FLMSTR1: what software on the CPU (coreboot, flashrom
// running internally, glint) may read and write.
func (d *Descriptor) HostMaster() Master {
	m, _ := d.Master(1)
	return m
}

// Locked reports the descriptor's own lock state: the host CPU cannot write
// the descriptor region. A locked descriptor cannot be changed by internal
// flashing (only with an external programmer, or with the PCH's "flash
// descriptor override" strap), and with it the ME region stays as it is.
func (d *Descriptor) Locked() bool {
	return !d.HostMaster().CanWrite(RegionDescriptor)
}

// FindDescriptor reports whether image starts with an Intel Flash
// Descriptor. Only the two places the chipset looks are accepted (offset
// 0x10, and 0 for early ICH8): a signature elsewhere, inside a coreboot
// file say, is not a descriptor.
func FindDescriptor(image []byte) (int64, bool) {
	for _, at := range []int{0x10, 0} {
		if len(image) >= at+4 && binary.LittleEndian.Uint32(image[at:]) == ifdSignature {
			return int64(at), true
		}
	}
	return 0, false
}

// ParseDescriptor parses the descriptor at the start of image, guessing the
// IFD version from the component section as later ifdtool releases do.
func ParseDescriptor(image []byte) (*Descriptor, error) {
	return ParseDescriptorVersion(image, 0)
}

// ParseDescriptorVersion parses with a known IFD version (0 = guess). Pass
// the version when the board is known: the guess reads the SPI read clock,
// which a vendor may set either way.
func ParseDescriptorVersion(image []byte, version IFDVersion) (*Descriptor, error) {
	if len(image) > MaxImageSize {
		return nil, errorf(0, "image", ErrTooLarge, "%d bytes, limit %d", len(image), MaxImageSize)
	}
	at, ok := FindDescriptor(image)
	if !ok {
		return nil, errorf(0, "ifd.flvalsig", ErrNotFound, "no flash descriptor signature 0x%08x at 0x10: not a full Intel flash image (a BIOS-region-only image has none)", ifdSignature)
	}
	if len(image) < descriptorSize {
		return nil, errorf(0, "ifd", ErrTruncated, "a descriptor is %d bytes, the image has %d", descriptorSize, len(image))
	}
	// Every section must lie in the 4 KiB descriptor region.
	desc := image[:descriptorSize:descriptorSize]
	d := &Descriptor{Offset: at}
	d.FLMAP0 = binary.LittleEndian.Uint32(desc[at+4:])
	d.FLMAP1 = binary.LittleEndian.Uint32(desc[at+8:])
	d.FLMAP2 = binary.LittleEndian.Uint32(desc[at+12:])
	d.FCBA = int64(d.FLMAP0&0xff) << 4
	d.FRBA = int64((d.FLMAP0>>16)&0xff) << 4
	d.FMBA = int64(d.FLMAP1&0xff) << 4
	d.FPSBA = int64((d.FLMAP1>>16)&0xff) << 4
	d.FMSBA = int64(d.FLMAP2&0xff) << 4
	d.Components = int((d.FLMAP0>>8)&3) + 1
	section := func(field string, off int64, n int) ([]byte, error) {
		if off+int64(n) > descriptorSize {
			return nil, errorf(at, field, ErrFormat, "section at 0x%x of %d bytes runs past the 4 KiB descriptor", off, n)
		}
		return desc[off : off+int64(n)], nil
	}
	fcba, err := section("ifd.fcba", d.FCBA, 12)
	if err != nil {
		return nil, err
	}
	d.FLCOMP = binary.LittleEndian.Uint32(fcba)
	switch version {
	case 0:
		d.Version = guessIFDVersion(d.FLCOMP)
	case IFDv1, IFDv2:
		d.Version = version
	default:
		return nil, fmt.Errorf("rom: IFD version %d: glint knows 1 and 2", version)
	}
	d.Chipset = d.guessChipset()
	for i := 0; i < 2; i++ {
		var code uint32
		if d.Version == IFDv1 {
			code = (d.FLCOMP >> (3 * i)) & 7
		} else {
			code = (d.FLCOMP >> (4 * i)) & 0xf
		}
		if code <= 7 {
			d.ComponentSize[i] = 512 << 10 << code
		}
	}

	nregions, mask := ifdV1Regions, uint32(ifdV1BaseMask)
	if d.Version == IFDv2 {
		nregions, mask = ifdV2Regions, ifdV2BaseMask
	}
	frba, err := section("ifd.frba", d.FRBA, 4*nregions)
	if err != nil {
		return nil, err
	}
	for i := 0; i < nregions; i++ {
		raw := binary.LittleEndian.Uint32(frba[4*i:])
		d.Regions = append(d.Regions, decodeRegion(RegionID(i), raw, mask))
	}

	masters := []struct {
		reg  int
		name string
	}{{1, "Host CPU/BIOS"}, {2, "Intel ME"}, {3, "GbE"}}
	if d.Version == IFDv2 {
		masters = append(masters, struct {
			reg  int
			name string
		}{5, "EC"})
	}
	nmasters := 3
	if d.Version == IFDv2 {
		nmasters = 5 // FLMSTR4 is reserved; FLMSTR5 is the EC
	}
	fmba, err := section("ifd.fmba", d.FMBA, 4*nmasters)
	if err != nil {
		return nil, err
	}
	for _, m := range masters {
		raw := binary.LittleEndian.Uint32(fmba[4*(m.reg-1):])
		d.Masters = append(d.Masters, decodeMaster(m.reg, m.name, raw, d.Version))
	}

	isl := int(d.FLMAP1 >> 24)
	straps, err := section("ifd.fpsba", d.FPSBA, 4*isl)
	if err != nil {
		return nil, err
	}
	for i := 0; i < isl; i++ {
		d.PCHStraps = append(d.PCHStraps, binary.LittleEndian.Uint32(straps[4*i:]))
	}
	if proc, err := section("ifd.fmsba", d.FMSBA, 4*procStrapDwords); err == nil {
		for i := 0; i < procStrapDwords; i++ {
			d.ProcStraps = append(d.ProcStraps, binary.LittleEndian.Uint32(proc[4*i:]))
		}
	}
	d.MEDisable = d.meDisableStrap()
	return d, nil
}

func decodeRegion(id RegionID, raw, mask uint32) Region {
	// ifdtool: base = (flreg & mask) << 12; limit = ((flreg & mask<<16) >> 4) | 0xfff.
	return Region{ID: id, Raw: raw, Base: (raw & mask) << 12, Limit: ((raw&(mask<<16))>>4 | 0xfff)}
}

func decodeMaster(reg int, name string, raw uint32, v IFDVersion) Master {
	m := Master{Name: name, Register: reg, Raw: raw}
	if v == IFDv2 {
		m.Read = uint16((raw >> flmstrRdShiftV2) & 0xfff)
		m.Write = uint16((raw >> flmstrWrShiftV2) & 0xfff)
	} else {
		m.Read = uint16((raw >> flmstrRdShiftV1) & 0xff)
		m.Write = uint16((raw >> flmstrWrShiftV1) & 0xff)
		m.RequesterID = uint16(raw)
	}
	return m
}

// guessIFDVersion reads the "read clock frequency" of FLCOMP, as ifdtool
// (after 4.15) and flashrom do: 20 MHz on v1 descriptors, 17 MHz or
// 30 MHz on v2 ones. Anything else is taken as v1, the older format.
func guessIFDVersion(flcomp uint32) IFDVersion {
	switch (flcomp >> 17) & 7 {
	case 6, 4: // SPI_FREQUENCY_17MHZ, SPI_FREQUENCY_50MHZ_30MHZ
		return IFDv2
	}
	return IFDv1
}

// guessChipset ports ifdtool's ifd1_guess_chipset (from flashrom): only the
// ICH8-10 / PCH distinction matters to glint (which ME-disable strap applies).
func (d *Descriptor) guessChipset() string {
	if d.Version == IFDv2 {
		return "100 series or later PCH (IFD v2)"
	}
	iccriba := (d.FLMAP2 >> 16) & 0xff
	msl := (d.FLMAP2 >> 8) & 0xff
	isl := d.FLMAP1 >> 24
	nm := (d.FLMAP1 >> 8) & 7
	switch {
	case iccriba == 0:
		switch {
		case msl == 0 && isl <= 2:
			return "ICH8"
		case isl <= 2:
			return "ICH9"
		case isl <= 10:
			return "ICH10"
		}
		return "5 series Ibex Peak"
	case iccriba < 0x31 && d.FLMAP2&0xff < 0x30:
		switch {
		case msl == 0 && isl <= 17:
			return "Baytrail"
		case msl <= 1 && isl <= 18:
			return "6 series Cougar Point"
		case msl <= 1 && isl <= 21:
			return "8 series Lynx Point"
		}
		return "9 series Wildcat Point"
	case nm == 6:
		return "C620 series Lewisburg"
	}
	return "Unknown PCH"
}

func (d *Descriptor) isICH() bool {
	return d.Chipset == "ICH8" || d.Chipset == "ICH9" || d.Chipset == "ICH10"
}

// meDisableStrap mirrors ifdtool's dump_fpsba.
func (d *Descriptor) meDisableStrap() MEDisableStrap {
	strap := func(name string, i int, bit uint) MEDisableStrap {
		s := MEDisableStrap{Name: name}
		if i < len(d.PCHStraps) {
			s.Present = true
			s.Set = d.PCHStraps[i]&(1<<bit) != 0
		}
		return s
	}
	switch {
	case d.Version == IFDv2:
		return strap("HAP", 0, 16)
	case d.isICH():
		return strap("ICH_MeDisable", 0, 0)
	}
	return strap("AltMeDisable", 10, 7)
}

// FlashromLayout is the region table as a flashrom layout file, the same
// text `ifdtool -f` writes: one "base:limit name" line per used region.
func (d *Descriptor) FlashromLayout() string {
	var b strings.Builder
	for _, r := range d.Regions {
		if r.Used() {
			fmt.Fprintf(&b, "%08x:%08x %s\n", r.Base, r.Limit, r.ID.Short())
		}
	}
	return b.String()
}

// Check reports what is inconsistent between the descriptor and an image of
// size bytes: regions outside the image, overlapping regions, a descriptor
// region that is not at 0.
func (d *Descriptor) Check(size int64) []string {
	var out []string
	if fs := d.FlashSize(); fs != 0 && fs != size {
		out = append(out, fmt.Sprintf("the descriptor declares %d KiB of flash, the image has %d KiB", fs>>10, size>>10))
	}
	for i, r := range d.Regions {
		if !r.Used() {
			continue
		}
		if int64(r.Limit) >= size {
			out = append(out, fmt.Sprintf("region %s (0x%x-0x%x) ends past the %d-byte image", r.ID, r.Base, r.Limit, size))
		}
		for _, o := range d.Regions[i+1:] {
			if o.Used() && r.Base <= o.Limit && o.Base <= r.Limit {
				out = append(out, fmt.Sprintf("regions %s and %s overlap", r.ID, o.ID))
			}
		}
	}
	if fd := d.Regions[RegionDescriptor]; !fd.Used() || fd.Base != 0 {
		out = append(out, "the descriptor region does not start the flash")
	}
	return out
}

// RegionData returns the bytes of a used region that lies within image.
func (d *Descriptor) RegionData(image []byte, id RegionID) ([]byte, error) {
	r, ok := d.Region(id)
	if !ok || !r.Used() {
		return nil, errorf(d.FRBA, "ifd.flreg", ErrNotFound, "the descriptor has no %s region", id)
	}
	if int64(r.Limit) >= int64(len(image)) {
		return nil, errorf(d.FRBA+4*int64(id), "ifd.flreg", ErrTruncated, "region %s ends at 0x%x, past the %d-byte image", id, r.Limit, len(image))
	}
	end := int64(r.Limit) + 1
	return image[r.Base:end:end], nil
}

// fmapRegionAreas are the FMAP areas coreboot names after descriptor
// regions (ifdtool's region_names fmapname column).
var fmapRegionAreas = map[RegionID]string{
	RegionDescriptor: "SI_DESC", RegionBIOS: "SI_BIOS", RegionME: "SI_ME",
	RegionGbE: "SI_GBE", RegionPlatformData: "SI_PDR", RegionEC: "SI_EC",
}

// CheckFMAPAgainstDescriptor is `ifdtool -t`: every SI_* area of coreboot's
// flash map must cover exactly the descriptor region of that name. A
// mismatch means coreboot was built for another layout than the chip's
// descriptor (say, a "maximized" coreboot with a stock descriptor).
func CheckFMAPAgainstDescriptor(f *FMAP, d *Descriptor) []string {
	var out []string
	for _, r := range d.Regions {
		name, ok := fmapRegionAreas[r.ID]
		if !ok || r.Size() == 0 {
			continue
		}
		a, ok := f.Area(name)
		if !ok {
			continue
		}
		if int64(a.Offset) != int64(r.Base) || int64(a.Size) != r.Size() {
			out = append(out, fmt.Sprintf("descriptor region %s is 0x%x+0x%x, FMAP area %s is 0x%x+0x%x", r.ID.Short(), r.Base, r.Size(), name, a.Offset, a.Size))
		}
	}
	return out
}
