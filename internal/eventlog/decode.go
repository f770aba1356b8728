package eventlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// describe turns an event's untrusted data into one line of text for people.
// It never fails: data that does not decode is summarised by size. Nothing
// here affects replay, which uses digests only.
func describe(e *Event) string {
	d := e.Data
	switch e.Type {
	case EvNoAction:
		return describeNoAction(d)
	case EvSeparator:
		if len(d) == 4 {
			switch binary.LittleEndian.Uint32(d) {
			case 0, 0xFFFFFFFF:
				// UEFI firmware logs 0 (PFP 1.05, 10.4.1 EV_SEPARATOR);
				// BIOS-era firmware such as SeaBIOS logs 0xFFFFFFFF
				// (PC Client Implementation for Conventional BIOS 1.21).
				return "separator"
			case 1:
				// PFP 1.05, 10.4.1: 1 marks an error before the separator.
				return "separator (firmware reported an error)"
			}
		}
		return "separator " + summarise(d)
	case EvEFIVariableDriverConfig, EvEFIVariableBoot, EvEFIVariableBoot2, EvEFIVariableAuthority:
		return describeVariable(e.Type, d)
	case EvEFIBootServicesApp, EvEFIBootServicesDriver, EvEFIRuntimeServicesDrv:
		return describeImageLoad(d)
	case EvEFIPlatformFirmwareBlob:
		// UEFI_PLATFORM_FIRMWARE_BLOB (PFP 1.05, 10.2.4): base u64, length u64.
		if len(d) == 16 {
			return "firmware blob at 0x" + strconv.FormatUint(binary.LittleEndian.Uint64(d), 16) + ", " + strconv.FormatUint(binary.LittleEndian.Uint64(d[8:]), 10) + " bytes"
		}
		return summarise(d)
	case EvEFIPlatformFirmwareBlob2:
		return describeBlob2(d)
	case EvPostCode, EvPostCode2:
		// PFP 1.05, 10.4.1 EV_POST_CODE: either a string or a
		// UEFI_PLATFORM_FIRMWARE_BLOB.
		if len(d) == 16 && !printable(d) {
			return "POST code blob at 0x" + strconv.FormatUint(binary.LittleEndian.Uint64(d), 16) + ", " + strconv.FormatUint(binary.LittleEndian.Uint64(d[8:]), 10) + " bytes"
		}
		return summarise(d)
	case EvSCRTMVersion:
		// Usually a NUL-terminated UCS-2 string (PFP 1.05, 10.4.1); OVMF logs
		// a lone NUL.
		if s, ok := utf16String(d); ok {
			return fmt.Sprintf("S-CRTM version %q", s)
		}
		return "S-CRTM version " + summarise(d)
	case EvEFIHandoffTables:
		return describeHandoff(d, false)
	case EvEFIHandoffTables2:
		return describeHandoff(d, true)
	case EvEFIGPTEvent, EvEFIGPTEvent2:
		return describeGPT(d)
	case EvEventTag:
		return describeTagged(d)
	case EvCorebootMeasurement:
		return cString(d)
	}
	return summarise(d)
}

// describeNoAction names the EV_NO_ACTION records of PFP 1.05, 10.4.5.
func describeNoAction(d []byte) string {
	switch {
	case bytes.HasPrefix(d, specIDEvent03):
		if s, err := parseSpecID(d, 0); err == nil {
			return describeSpecID(s)
		}
		return "Spec ID Event03 (malformed)"
	case bytes.HasPrefix(d, specIDEvent00):
		return "Spec ID Event00 (TPM 1.2 log header)"
	case bytes.HasPrefix(d, []byte("StartupLocality\x00")) && len(d) == 17:
		// PFP 1.05, 10.4.5.3: the locality TPM2_Startup came from; PCR 0
		// starts at that value instead of zero.
		return fmt.Sprintf("StartupLocality %d", d[16])
	case bytes.HasPrefix(d, []byte("SP800-155 Event")):
		return "SP800-155 reference manifest event"
	case bytes.HasPrefix(d, []byte("NvIndexInstance")):
		return "NV index instance event"
	}
	return summarise(d)
}

// describeVariable decodes UEFI_VARIABLE_DATA (PFP 1.05, 10.2.3, Table 11):
// VariableName GUID, UnicodeNameLength u64 (in CHAR16), VariableDataLength
// u64, UnicodeName, VariableData.
func describeVariable(t EventType, d []byte) string {
	if len(d) < 32 {
		return summarise(d)
	}
	guid := formatGUID(d[:16])
	nameLen := binary.LittleEndian.Uint64(d[16:])
	dataLen := binary.LittleEndian.Uint64(d[24:])
	rest := d[32:]
	if nameLen > uint64(len(rest))/2 {
		return "variable " + summarise(d)
	}
	name := decodeUTF16(rest[:nameLen*2])
	rest = rest[nameLen*2:]
	if dataLen > uint64(len(rest)) {
		return fmt.Sprintf("%s (%s): data truncated", name, guidName(guid))
	}
	val := rest[:dataLen]
	s := name + " (" + guidName(guid) + ")"
	switch {
	case name == "SecureBoot" || name == "SetupMode" || name == "AuditMode" || name == "DeployedMode":
		if len(val) == 1 {
			return fmt.Sprintf("%s = %d", s, val[0])
		}
		if len(val) == 0 {
			return s + " = (empty: not set)"
		}
	case name == "BootOrder" && len(val)%2 == 0:
		var ids []string
		for i := 0; i+1 < len(val); i += 2 {
			ids = append(ids, fmt.Sprintf("%04X", binary.LittleEndian.Uint16(val[i:])))
		}
		return fmt.Sprintf("%s = %s", s, strings.Join(ids, ","))
	case strings.HasPrefix(name, "Boot") && len(name) == 8 && t != EvEFIVariableDriverConfig:
		if desc, path, ok := loadOption(val); ok {
			return fmt.Sprintf("%s = %q %s", s, desc, path)
		}
	}
	return s + ", " + strconv.Itoa(len(val)) + " bytes"
}

// loadOption decodes EFI_LOAD_OPTION (UEFI 2.9, 3.1.3): Attributes u32,
// FilePathListLength u16, Description (NUL-terminated CHAR16), FilePathList.
func loadOption(v []byte) (string, string, bool) {
	if len(v) < 6 {
		return "", "", false
	}
	fpl := int(binary.LittleEndian.Uint16(v[4:]))
	rest := v[6:]
	end := -1
	for i := 0; i+1 < len(rest); i += 2 {
		if rest[i] == 0 && rest[i+1] == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return "", "", false
	}
	desc := decodeUTF16(rest[:end])
	rest = rest[end+2:]
	if fpl > len(rest) {
		return desc, "", true
	}
	return desc, devicePath(rest[:fpl]), true
}

// describeImageLoad decodes UEFI_IMAGE_LOAD_EVENT (PFP 1.05, 10.2.3,
// Table 10): ImageLocationInMemory u64, ImageLengthInMemory u64,
// ImageLinkTimeAddress u64, LengthOfDevicePath u64, DevicePath.
func describeImageLoad(d []byte) string {
	if len(d) < 32 {
		return summarise(d)
	}
	n := binary.LittleEndian.Uint64(d[24:])
	size := binary.LittleEndian.Uint64(d[8:])
	if n > uint64(len(d)-32) {
		return fmt.Sprintf("image of %d bytes (device path truncated)", size)
	}
	return "image " + devicePath(d[32:32+n]) + ", " + strconv.FormatUint(size, 10) + " bytes"
}

// describeBlob2 decodes UEFI_PLATFORM_FIRMWARE_BLOB2 (PFP 1.05, 10.2.4):
// BlobDescriptionSize u8, BlobDescription, BlobBase u64, BlobLength u64.
func describeBlob2(d []byte) string {
	if len(d) < 1 || len(d) < 1+int(d[0])+16 {
		return summarise(d)
	}
	n := int(d[0])
	desc := cString(d[1 : 1+n])
	b := d[1+n:]
	return fmt.Sprintf("firmware blob %q at 0x%x, %d bytes", desc, binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]))
}

// describeHandoff decodes UEFI_HANDOFF_TABLE_POINTERS(2) (PFP 1.05, 10.2.5):
// [TableDescriptionSize u8, TableDescription] NumberOfTables u64, then
// EFI_CONFIGURATION_TABLE {VendorGuid, VendorTable u64} entries.
func describeHandoff(d []byte, v2 bool) string {
	prefix := ""
	if v2 {
		if len(d) < 1 || len(d) < 1+int(d[0]) {
			return summarise(d)
		}
		prefix = fmt.Sprintf("%q: ", cString(d[1:1+int(d[0])]))
		d = d[1+int(d[0]):]
	}
	if len(d) < 8 {
		return prefix + summarise(d)
	}
	n := binary.LittleEndian.Uint64(d)
	d = d[8:]
	if n > uint64(len(d))/24 {
		return prefix + fmt.Sprintf("%d tables (truncated)", n)
	}
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString("tables ")
	for i := uint64(0); i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(guidName(formatGUID(d[i*24 : i*24+16])))
	}
	return b.String()
}

// describeGPT summarises UEFI_GPT_DATA (PFP 1.05, 10.2.6): the GPT header
// (UEFI 2.9, 5.3.2, 92 bytes) then NumberOfPartitions u64 and the entries.
func describeGPT(d []byte) string {
	if len(d) < 92+8 || string(d[:8]) != "EFI PART" {
		return "GPT " + summarise(d)
	}
	disk := formatGUID(d[56:72])
	n := binary.LittleEndian.Uint64(d[92:])
	return fmt.Sprintf("GPT disk %s, %d partitions", disk, n)
}

// describeTagged decodes TCG_PCClientTaggedEvent (PC Client Implementation
// for Conventional BIOS 1.21, 11.3.2.2): taggedEventID u32,
// taggedEventDataSize u32, data.
func describeTagged(d []byte) string {
	if len(d) < 8 {
		return summarise(d)
	}
	id := binary.LittleEndian.Uint32(d)
	n := binary.LittleEndian.Uint32(d[4:])
	data := d[8:]
	if uint64(n) <= uint64(len(data)) {
		data = data[:n]
	}
	name := taggedEventNames[id]
	if name == "" {
		name = fmt.Sprintf("tag 0x%x", id)
	}
	if printable(data) {
		return fmt.Sprintf("%s: %q", name, cString(data))
	}
	if id == 0x7 && len(data) >= 4 {
		// SeaBIOS option ROM: reserved u16, PFA u16, then the ROM's SHA-1.
		return fmt.Sprintf("%s (PCI %02x:%02x.%x)", name, data[3], data[2]>>3, data[2]&7)
	}
	return fmt.Sprintf("%s, %d bytes", name, len(data))
}

// taggedEventNames are the taggedEventIDs of PC Client Implementation for
// Conventional BIOS 1.21, 11.3.2.2.1 Table 13, and the Linux EFI stub's
// (drivers/firmware/efi/libstub), which measures these into PCR 9 before
// ExitBootServices.
var taggedEventNames = map[uint32]string{
	0x1: "SMBIOS", 0x2: "BIS certificate", 0x3: "POST BIOS ROM strings", 0x4: "ESCD",
	0x5: "CMOS", 0x6: "NVRAM", 0x7: "option ROM execute", 0x8: "option ROM configuration",
	0xA: "option ROM microcode", 0xB: "S-CRTM version", 0xC: "S-CRTM contents",
	0xD: "POST contents", 0xE: "table of devices",
	0x8F3B22EC: "Linux initrd", 0x8F3B22ED: "Linux LoadOptions",
}

// devicePath renders an EFI device path (UEFI 2.9, 10.3) in the usual text
// form for the node types firmware logs contain; others as Path(type,sub).
func devicePath(d []byte) string {
	var parts []string
	for len(d) >= 4 {
		typ, sub := d[0], d[1]
		n := int(binary.LittleEndian.Uint16(d[2:]))
		if n < 4 || n > len(d) {
			parts = append(parts, "(truncated)")
			break
		}
		node := d[4:n]
		d = d[n:]
		switch {
		case typ == 0x7F && sub == 0xFF:
			return strings.Join(parts, "/")
		case typ == 0x7F:
			parts = append(parts, ",")
		case typ == 1 && sub == 1 && len(node) >= 2:
			parts = append(parts, fmt.Sprintf("Pci(0x%x,0x%x)", node[1], node[0]))
		case typ == 2 && sub == 1 && len(node) >= 8:
			uid := binary.LittleEndian.Uint32(node[4:])
			if binary.LittleEndian.Uint32(node) == 0x0a0341d0 || binary.LittleEndian.Uint32(node) == 0x0a0841d0 {
				parts = append(parts, fmt.Sprintf("PciRoot(0x%x)", uid))
			} else {
				parts = append(parts, fmt.Sprintf("Acpi(0x%08x,0x%x)", binary.LittleEndian.Uint32(node), uid))
			}
		case typ == 3 && sub == 0x12 && len(node) >= 6:
			parts = append(parts, fmt.Sprintf("Sata(0x%x,0x%x,0x%x)", binary.LittleEndian.Uint16(node), binary.LittleEndian.Uint16(node[2:]), binary.LittleEndian.Uint16(node[4:])))
		case typ == 3 && sub == 0x17 && len(node) >= 4:
			parts = append(parts, fmt.Sprintf("NVMe(0x%x)", binary.LittleEndian.Uint32(node)))
		case typ == 3 && sub == 5 && len(node) >= 2:
			parts = append(parts, fmt.Sprintf("USB(0x%x,0x%x)", node[0], node[1]))
		case typ == 3 && sub == 11:
			parts = append(parts, "MAC()")
		case typ == 4 && sub == 1 && len(node) >= 38:
			parts = append(parts, fmt.Sprintf("HD(%d,GPT,%s)", binary.LittleEndian.Uint32(node), formatGUID(node[20:36])))
		case typ == 4 && sub == 2:
			parts = append(parts, "CDROM()")
		case typ == 4 && sub == 3 && len(node) >= 16:
			parts = append(parts, fmt.Sprintf("VenMedia(%s)", formatGUID(node[:16])))
		case typ == 4 && sub == 4:
			s, _ := utf16String(node)
			parts = append(parts, s)
		case typ == 4 && sub == 6 && len(node) >= 16:
			parts = append(parts, fmt.Sprintf("FvFile(%s)", formatGUID(node[:16])))
		case typ == 4 && sub == 7 && len(node) >= 16:
			parts = append(parts, fmt.Sprintf("Fv(%s)", formatGUID(node[:16])))
		case typ == 4 && sub == 8 && len(node) >= 20:
			parts = append(parts, fmt.Sprintf("Offset(0x%x,0x%x)", binary.LittleEndian.Uint64(node[4:]), binary.LittleEndian.Uint64(node[12:])))
		default:
			parts = append(parts, fmt.Sprintf("Path(%d,%d)", typ, sub))
		}
	}
	return strings.Join(parts, "/")
}

// formatGUID prints an EFI_GUID: the first three fields are little-endian
// (UEFI 2.9, Appendix A).
func formatGUID(b []byte) string {
	var out [36]byte
	// The first three fields little-endian, the last two as bytes.
	order := [16]int{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	o := 0
	for i, j := range order {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[o] = '-'
			o++
		}
		hex.Encode(out[o:o+2], b[j:j+1])
		o += 2
	}
	return string(out[:])
}

// guidName names the GUIDs measured logs use; unknown ones print as is.
func guidName(g string) string {
	if n, ok := guidNames[g]; ok {
		return n
	}
	return g
}

var guidNames = map[string]string{
	"8be4df61-93ca-11d2-aa0d-00e098032b8c": "EFI global variable",
	"d719b2cb-3d3a-4596-a3bc-dad00e67656f": "image security database",
	"605dab50-e046-4300-abb6-3dd810dd8b23": "shim",
	"eb9d2d31-2d88-11d3-9a16-0090273fc14d": "SMBIOS",
	"f2fd1544-9794-4a2c-992e-e5bbcf20e394": "SMBIOS3",
	"8868e871-e4f1-11d3-bc22-0080c73c8881": "ACPI 2.0",
	"eb9d2d30-2d88-11d3-9a16-0090273fc14d": "ACPI 1.0",
}

// decodeUTF16 decodes little-endian UTF-16 to a string (unpaired
// surrogates become U+FFFD, as utf16.Decode does).
func decodeUTF16(b []byte) string {
	var out strings.Builder
	out.Grow(len(b) / 2)
	for i := 0; i+1 < len(b); i += 2 {
		r := rune(binary.LittleEndian.Uint16(b[i:]))
		if utf16.IsSurrogate(r) {
			if i+3 < len(b) {
				if dec := utf16.DecodeRune(r, rune(binary.LittleEndian.Uint16(b[i+2:]))); dec != utf8.RuneError {
					out.WriteRune(dec)
					i += 2
					continue
				}
			}
			r = utf8.RuneError
		}
		out.WriteRune(r)
	}
	return out.String()
}

func u16s(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return out
}

// utf16String decodes NUL-terminated UCS-2 if that is what d looks like.
func utf16String(d []byte) (string, bool) {
	if len(d)%2 != 0 {
		return "", false
	}
	u := u16s(d)
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	s := string(utf16.Decode(u))
	for _, r := range s {
		if r < 0x20 || r == utf8.RuneError {
			return "", false
		}
	}
	return s, true
}

// printable: ASCII text, optionally NUL-terminated.
func printable(d []byte) bool {
	d = bytes.TrimRight(d, "\x00")
	if len(d) == 0 {
		return false
	}
	for _, c := range d {
		if c < 0x20 && c != '\t' && c != '\n' || c > 0x7e {
			return false
		}
	}
	return true
}

func cString(d []byte) string {
	if i := bytes.IndexByte(d, 0); i >= 0 {
		d = d[:i]
	}
	return strings.ToValidUTF8(string(d), "?")
}

// summarise shows text as text, anything else by size.
func summarise(d []byte) string {
	if printable(d) {
		// printable leaves ASCII text with NULs only at the end, which
		// cString cuts (so its UTF-8 repair has nothing to do).
		if i := bytes.IndexByte(d, 0); i >= 0 {
			d = d[:i]
		}
		more := ""
		if len(d) > 200 {
			d, more = d[:200], "..."
		}
		return quoteASCII(d, more)
	}
	if len(d) == 0 {
		return "(no data)"
	}
	if len(d) <= 8 {
		return hex.EncodeToString(d)
	}
	return strconv.Itoa(len(d)) + " bytes"
}

// quoteASCII is strconv.Quote(string(d) + more) for printable ASCII d, in
// one allocation when nothing needs escaping (the common case).
func quoteASCII(d []byte, more string) string {
	for _, c := range d {
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			return strconv.Quote(string(d) + more)
		}
	}
	b := make([]byte, 0, len(d)+len(more)+2)
	b = append(b, '"')
	b = append(b, d...)
	b = append(b, more...)
	return string(append(b, '"'))
}
