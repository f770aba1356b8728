package rom

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The Intel Management Engine's firmware lives in the ME region of the
// flash. It starts with a flash partition table (FPT) that lists the
// partitions the ME loads: FTPR (the recovery/boot code, the only one the ME
// needs to bring the platform up), NFTP, MDES, EFFS, MFS, ...
//
// me_cleaner (github.com/corna/me_cleaner, which Heads and coreboot users
// run) "neuters" the ME: it removes every partition but FTPR (data overwritten
// with 0xff, entries dropped from the FPT, checksum fixed), optionally sets
// the HAP/AltMeDisable soft strap (-S), and with -t/-D shrinks the ME region
// to what FTPR needs so the BIOS region can grow ("maximized" images).
// glint reads the result and says which of these happened; it never changes
// the ME.
//
// FPT layout (as me_cleaner and ifdtool's users read it), little-endian,
// offsets from the start of the ME region:
//
//	0x00 16 bytes ROM bypass vector
//	0x10 "$FPT"; 0x14 u32 number of entries; 0x18 u8 header version;
//	0x19 u8 entry version; 0x1a u8 header length; 0x1b u8 checksum
//	     (ME < 11: bytes 0x00-0x2f sum to 0; ME 11+: bytes 0x10-0x2f);
//	0x24 u32 flags (bit 0: EFFS present)
//	0x30 entries of 32 bytes: name[4] owner[4] u32 offset u32 length
//	     u32 start tokens, max tokens, scratch sectors; u32 flags
//	     (bits 0-6 type: 0 code, 1 data, 2 NVRAM; bits 24-31 0xff: invalid)
//
// FTPR begins with its manifest ("$MN2" at +0x1c, version u16[4] at +0x24)
// before ME 11; from ME 11 (Skylake) with a "$CPD" directory whose
// "FTPR.man" entry points at the manifest.
const (
	fptSignature   = "$FPT"
	fptHeaderAt    = 0x10
	fptEntriesAt   = 0x30
	fptEntrySize   = 0x20
	mn2Tag         = "$MN2"
	cpdSignature   = "$CPD"
	cpdEntrySize   = 0x18
	fptTypeNVRAM   = 2
	meShrunkSlack  = 64 << 10 // me_cleaner -t leaves up to 5 spare 4 KiB blocks
	mnVersionAt    = 0x24
	mn2TagAt       = 0x1c
	fptFlagsAt     = 0x24
	fptChecksumAt  = 0x1b
	fptEFFSPresent = 1
)

// MaxFPTEntries bounds the FPT entry count (real tables have under 20; the
// 4 KiB before the first partition holds at most 126).
const MaxFPTEntries = 128

// MaxCPDEntries bounds a $CPD directory (FTPR has tens of modules).
const MaxCPDEntries = 1024

// MEState is what the ME region holds.
type MEState string

const (
	// MEAbsent: the descriptor has no ME region, or it is erased.
	MEAbsent MEState = "absent"
	// MEPresent: a stock ME with its partitions.
	MEPresent MEState = "present"
	// MENeutered: only FTPR (and partitions that hold no data) remain, as
	// me_cleaner leaves it.
	MENeutered MEState = "neutered"
	// MEUnknown: the region holds data glint does not recognise (no FPT),
	// or an FPT without FTPR (the ME will not start).
	MEUnknown MEState = "unknown"
)

// FPTPartition is one FPT entry.
type FPTPartition struct {
	Name   string
	Owner  string
	Offset uint32 // from the start of the ME region
	Length uint32
	Flags  uint32
	// Type is the flags' low 7 bits: 0 code, 1 data, 2 NVRAM (no data in
	// flash).
	Type uint32
	// Valid is false when the entry is marked invalid (flags bits 24-31 all set).
	Valid bool
	// HasData: the partition lies within the region and is not all 0xff.
	HasData bool
}

// MEFirmware is a parsed ME region.
type MEFirmware struct {
	Base       int64 // of the region in the image
	Size       int64
	Partitions []FPTPartition
	ChecksumOK bool
	EFFS       bool   // the FPT's "EFFS present" flag
	Gen11      bool   // ME 11 or later (Skylake on): FTPR has a $CPD directory
	Version    string // from the FTPR manifest, "8.1.30.1350"; "" if not found
	// DataEnd is the end (from the region start) of the last partition that
	// holds data; past it the region is free.
	DataEnd uint32
}

// Partition returns the named FPT entry.
func (m *MEFirmware) Partition(name string) (FPTPartition, bool) {
	for _, p := range m.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return FPTPartition{}, false
}

// ParseMERegion parses an ME region (the bytes of the region; base is where
// it starts in the image, for error offsets). A region without an FPT
// returns ErrNotFound.
func ParseMERegion(region []byte, base int64) (*MEFirmware, error) {
	if len(region) > MaxImageSize {
		return nil, errorf(base, "me", ErrTooLarge, "%d bytes, limit %d", len(region), MaxImageSize)
	}
	if len(region) < fptEntriesAt || string(region[fptHeaderAt:fptHeaderAt+4]) != fptSignature {
		return nil, errorf(base+fptHeaderAt, "fpt", ErrNotFound, "no %q partition table at 0x10 of the ME region", fptSignature)
	}
	n := binary.LittleEndian.Uint32(region[fptHeaderAt+4:])
	if n > MaxFPTEntries {
		return nil, errorf(base+fptHeaderAt+4, "fpt.entries", ErrTooLarge, "%d entries, limit %d", n, MaxFPTEntries)
	}
	if uint64(fptEntriesAt)+uint64(n)*fptEntrySize > uint64(len(region)) {
		return nil, errorf(base+fptHeaderAt+4, "fpt.entries", ErrTruncated, "%d entries run past the %d-byte region", n, len(region))
	}
	m := &MEFirmware{Base: base, Size: int64(len(region))}
	m.EFFS = binary.LittleEndian.Uint32(region[fptFlagsAt:])&fptEFFSPresent != 0
	for i := uint32(0); i < n; i++ {
		e := region[fptEntriesAt+i*fptEntrySize:]
		p := FPTPartition{
			Name:   cName(trimFF(e[0:4])),
			Owner:  cName(trimFF(e[4:8])),
			Offset: binary.LittleEndian.Uint32(e[8:]),
			Length: binary.LittleEndian.Uint32(e[12:]),
			Flags:  binary.LittleEndian.Uint32(e[28:]),
		}
		p.Type = p.Flags & 0x7f
		p.Valid = p.Flags>>24 != 0xff
		end := uint64(p.Offset) + uint64(p.Length)
		if p.Type != fptTypeNVRAM && p.Offset != 0 && p.Length != 0 && end <= uint64(len(region)) {
			p.HasData = !erased(region[p.Offset:end])
			if p.HasData && uint32(end) > m.DataEnd {
				m.DataEnd = uint32(end)
			}
		}
		m.Partitions = append(m.Partitions, p)
	}
	if ftpr, ok := m.Partition("FTPR"); ok && ftpr.HasData {
		m.readManifest(region, ftpr)
	}
	// ME 11 checksums the header from $FPT; older ones include the bypass vector.
	from := 0
	if m.Gen11 {
		from = fptHeaderAt
	}
	var sum byte
	for _, c := range region[from:fptEntriesAt] {
		sum += c
	}
	m.ChecksumOK = sum == 0
	return m, nil
}

// readManifest finds FTPR's manifest and reads the firmware version.
func (m *MEFirmware) readManifest(region []byte, ftpr FPTPartition) {
	p := region[ftpr.Offset : uint64(ftpr.Offset)+uint64(ftpr.Length)]
	mn := -1
	if len(p) >= 8 && string(p[:4]) == cpdSignature {
		m.Gen11 = true
		n := binary.LittleEndian.Uint32(p[4:])
		for i := uint32(0); i < n && i < MaxCPDEntries; i++ {
			at := 0x10 + uint64(i)*cpdEntrySize
			if at+cpdEntrySize > uint64(len(p)) {
				break
			}
			e := p[at : at+cpdEntrySize]
			if cName(e[:12]) == "FTPR.man" {
				mn = int(binary.LittleEndian.Uint32(e[12:]) & 0x01ffffff)
				break
			}
		}
	} else {
		mn = 0
	}
	if mn < 0 || mn+mnVersionAt+8 > len(p) || string(p[mn+mn2TagAt:mn+mn2TagAt+4]) != mn2Tag {
		return
	}
	v := p[mn+mnVersionAt:]
	m.Version = fmt.Sprintf("%d.%d.%d.%d", binary.LittleEndian.Uint16(v), binary.LittleEndian.Uint16(v[2:]),
		binary.LittleEndian.Uint16(v[4:]), binary.LittleEndian.Uint16(v[6:]))
}

// trimFF drops trailing 0xff and NUL padding from an FPT name.
func trimFF(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == 0xff || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

// MEReport is what glint tells the owner about the ME.
type MEReport struct {
	State MEState
	// Region is the descriptor's ME region (Used() false when absent).
	Region Region
	// Firmware is the parsed FPT (nil when absent or unrecognised).
	Firmware *MEFirmware
	// Emptied lists FPT entries that should hold data but are erased
	// (me_cleaner without its FPT clean-up, or a damaged ME).
	Emptied []string
	// Kept lists partitions that hold data.
	Kept []string
	// Shrunk: neutered and the region ends within 64 KiB of FTPR's end
	// (me_cleaner -t with the descriptor adjusted).
	Shrunk bool
	// FreeTail is how many bytes at the end of the region are unused.
	FreeTail int64
	// Disable is the HAP/AltMeDisable soft strap from the descriptor.
	Disable MEDisableStrap
	// Notes explain anything odd (checksum, invalid entries).
	Notes []string
}

// AnalyzeME reports the ME state of a full flash image with descriptor d.
func AnalyzeME(image []byte, d *Descriptor) *MEReport {
	r := &MEReport{State: MEAbsent, Disable: d.MEDisable}
	r.Region, _ = d.Region(RegionME)
	if !r.Region.Used() {
		return r
	}
	region, err := d.RegionData(image, RegionME)
	if err != nil {
		r.State = MEUnknown
		r.Notes = append(r.Notes, err.Error())
		return r
	}
	if erased(region) {
		r.Notes = append(r.Notes, fmt.Sprintf("the %d KiB ME region is erased", len(region)>>10))
		return r
	}
	fw, err := ParseMERegion(region, int64(r.Region.Base))
	if err != nil {
		r.State = MEUnknown
		r.Notes = append(r.Notes, "the ME region holds no partition table glint recognises: "+err.Error())
		return r
	}
	r.Firmware = fw
	r.FreeTail = int64(len(region)) - int64(fw.DataEnd)
	if !fw.ChecksumOK {
		r.Notes = append(r.Notes, "the FPT header checksum does not add up")
	}
	removable := 0
	for _, p := range fw.Partitions {
		if !p.Valid {
			r.Notes = append(r.Notes, fmt.Sprintf("FPT entry %q is marked invalid", p.Name))
		}
		switch {
		case p.HasData:
			r.Kept = append(r.Kept, p.Name)
			if p.Name != "FTPR" {
				removable++
			}
		case p.Type != fptTypeNVRAM && p.Length != 0:
			r.Emptied = append(r.Emptied, p.Name)
		}
	}
	ftpr, ok := fw.Partition("FTPR")
	switch {
	case !ok || !ftpr.HasData:
		r.State = MEUnknown
		r.Notes = append(r.Notes, "no FTPR partition with data: the ME cannot start (some platforms then power off after 30 minutes)")
	case removable == 0:
		r.State = MENeutered
		r.Shrunk = r.FreeTail < meShrunkSlack
	default:
		r.State = MEPresent
	}
	return r
}

// Summary is one line for the owner.
func (r *MEReport) Summary() string {
	var b strings.Builder
	switch r.State {
	case MEAbsent:
		b.WriteString("absent")
		if r.Region.Used() {
			b.WriteString(" (the ME region is erased)")
		} else {
			b.WriteString(" (the descriptor has no ME region)")
		}
	case MEPresent:
		fmt.Fprintf(&b, "present: %d partitions with data (%s)", len(r.Kept), strings.Join(r.Kept, " "))
	case MENeutered:
		b.WriteString("neutered (me_cleaner-style): only " + strings.Join(r.Kept, " ") + " left")
		if r.Shrunk {
			b.WriteString(", region shrunk to fit")
		} else if r.FreeTail > 0 {
			fmt.Fprintf(&b, ", %d KiB of the region unused", r.FreeTail>>10)
		}
	case MEUnknown:
		b.WriteString("unrecognised")
	}
	if r.Firmware != nil && r.Firmware.Version != "" {
		fmt.Fprintf(&b, "; firmware %s", r.Firmware.Version)
	}
	if r.Disable.Present {
		if r.Disable.Set {
			fmt.Fprintf(&b, "; %s bit set (ME asked to disable itself)", r.Disable.Name)
		} else {
			fmt.Fprintf(&b, "; %s bit not set", r.Disable.Name)
		}
	}
	return b.String()
}
