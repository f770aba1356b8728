package eventlog

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/tpm"
)

// Format is the encoding a log was read from.
type Format int

const (
	// FormatSHA1 is the TPM 1.2 log: TCG_PCR_EVENT records with one SHA-1
	// digest each (TCG PC Client Specific Implementation Specification for
	// Conventional BIOS 1.21, 11.1; PFP 1.05, 10.2.1 "TCG_PCClientPCREvent").
	FormatSHA1 Format = iota + 1
	// FormatCryptoAgile is the TPM 2.0 log: a SHA-1-format Spec ID Event03
	// first, then TCG_PCR_EVENT2 records with one digest per bank (PFP 1.05,
	// 10.2.2).
	FormatCryptoAgile
	// FormatCorebootTCPA is coreboot's own cbmem log (4.15 "TCPA", later
	// "TPM_CB_LOG"): fixed-size entries with one digest and a name.
	FormatCorebootTCPA
)

func (f Format) String() string {
	switch f {
	case FormatSHA1:
		return "TCG SHA-1 (TPM 1.2)"
	case FormatCryptoAgile:
		return "TCG crypto-agile (TPM 2.0)"
	case FormatCorebootTCPA:
		return "coreboot TCPA"
	}
	return "unknown"
}

// Log is a parsed firmware measurement log, whatever format it came from.
type Log struct {
	Format Format
	// Algs lists the banks the log carries digests for, in the log's order
	// (the Spec ID event's list for crypto-agile logs).
	Algs   []tpm.Alg
	Events []Event
	// Source says where the log was read from (a path, "cbmem at 0x...").
	Source string
}

// Event is one measurement (or, for EV_NO_ACTION, one informational record
// that was not extended).
type Event struct {
	Index int // position in the log, 0-based, counting the Spec ID event
	// PCR is the logged pcrIndex, 0..31; NoPCR for an EV_NO_ACTION record
	// logged with index 0xFFFFFFFF (Windows), which no PCR received.
	PCR     int
	Type    EventType
	Digests map[tpm.Alg][]byte
	// Data is the event data as logged. The parsers never alias their
	// input: Data and the digests slice the parser's own copy of the log.
	// It is untrusted: only the digests are what the TPM saw.
	Data []byte
	// Description is Data decoded to text (or coreboot's name).
	Description string
	// Offset is where the event starts in the raw log.
	Offset int64
}

// Extended reports whether the event was extended into its PCR. EV_NO_ACTION
// events are informational and are not (PFP 1.05, 10.4.1, EV_NO_ACTION).
func (e *Event) Extended() bool { return e.Type != EvNoAction }

// EventType is a TCG event type (PFP 1.05, 10.4.1, Table 9 "Events").
type EventType uint32

// Event types from PFP 1.05 section 10.4.1 and the UEFI additions.
const (
	EvPrebootCert              EventType = 0x00
	EvPostCode                 EventType = 0x01
	EvUnused                   EventType = 0x02
	EvNoAction                 EventType = 0x03
	EvSeparator                EventType = 0x04
	EvAction                   EventType = 0x05
	EvEventTag                 EventType = 0x06
	EvSCRTMContents            EventType = 0x07
	EvSCRTMVersion             EventType = 0x08
	EvCPUMicrocode             EventType = 0x09
	EvPlatformConfigFlags      EventType = 0x0A
	EvTableOfDevices           EventType = 0x0B
	EvCompactHash              EventType = 0x0C
	EvIPL                      EventType = 0x0D
	EvIPLPartitionData         EventType = 0x0E
	EvNonhostCode              EventType = 0x0F
	EvNonhostConfig            EventType = 0x10
	EvNonhostInfo              EventType = 0x11
	EvOmitBootDeviceEvents     EventType = 0x12
	EvPostCode2                EventType = 0x13
	EvEFIEventBase             EventType = 0x80000000
	EvEFIVariableDriverConfig  EventType = 0x80000001
	EvEFIVariableBoot          EventType = 0x80000002
	EvEFIBootServicesApp       EventType = 0x80000003
	EvEFIBootServicesDriver    EventType = 0x80000004
	EvEFIRuntimeServicesDrv    EventType = 0x80000005
	EvEFIGPTEvent              EventType = 0x80000006
	EvEFIAction                EventType = 0x80000007
	EvEFIPlatformFirmwareBlob  EventType = 0x80000008
	EvEFIHandoffTables         EventType = 0x80000009
	EvEFIPlatformFirmwareBlob2 EventType = 0x8000000A
	EvEFIHandoffTables2        EventType = 0x8000000B
	EvEFIVariableBoot2         EventType = 0x8000000C
	EvEFIGPTEvent2             EventType = 0x8000000D
	EvEFIHCRTMEvent            EventType = 0x80000010
	EvEFIVariableAuthority     EventType = 0x800000E0
	EvEFISPDMFirmwareBlob      EventType = 0x800000E1
	EvEFISPDMFirmwareConfig    EventType = 0x800000E2
)

var eventTypeNames = map[EventType]string{
	EvPrebootCert:              "EV_PREBOOT_CERT",
	EvPostCode:                 "EV_POST_CODE",
	EvUnused:                   "EV_UNUSED",
	EvNoAction:                 "EV_NO_ACTION",
	EvSeparator:                "EV_SEPARATOR",
	EvAction:                   "EV_ACTION",
	EvEventTag:                 "EV_EVENT_TAG",
	EvSCRTMContents:            "EV_S_CRTM_CONTENTS",
	EvSCRTMVersion:             "EV_S_CRTM_VERSION",
	EvCPUMicrocode:             "EV_CPU_MICROCODE",
	EvPlatformConfigFlags:      "EV_PLATFORM_CONFIG_FLAGS",
	EvTableOfDevices:           "EV_TABLE_OF_DEVICES",
	EvCompactHash:              "EV_COMPACT_HASH",
	EvIPL:                      "EV_IPL",
	EvIPLPartitionData:         "EV_IPL_PARTITION_DATA",
	EvNonhostCode:              "EV_NONHOST_CODE",
	EvNonhostConfig:            "EV_NONHOST_CONFIG",
	EvNonhostInfo:              "EV_NONHOST_INFO",
	EvOmitBootDeviceEvents:     "EV_OMIT_BOOT_DEVICE_EVENTS",
	EvPostCode2:                "EV_POST_CODE2",
	EvEFIEventBase:             "EV_EFI_EVENT_BASE",
	EvEFIVariableDriverConfig:  "EV_EFI_VARIABLE_DRIVER_CONFIG",
	EvEFIVariableBoot:          "EV_EFI_VARIABLE_BOOT",
	EvEFIBootServicesApp:       "EV_EFI_BOOT_SERVICES_APPLICATION",
	EvEFIBootServicesDriver:    "EV_EFI_BOOT_SERVICES_DRIVER",
	EvEFIRuntimeServicesDrv:    "EV_EFI_RUNTIME_SERVICES_DRIVER",
	EvEFIGPTEvent:              "EV_EFI_GPT_EVENT",
	EvEFIAction:                "EV_EFI_ACTION",
	EvEFIPlatformFirmwareBlob:  "EV_EFI_PLATFORM_FIRMWARE_BLOB",
	EvEFIHandoffTables:         "EV_EFI_HANDOFF_TABLES",
	EvEFIPlatformFirmwareBlob2: "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
	EvEFIHandoffTables2:        "EV_EFI_HANDOFF_TABLES2",
	EvEFIVariableBoot2:         "EV_EFI_VARIABLE_BOOT2",
	EvEFIGPTEvent2:             "EV_EFI_GPT_EVENT2",
	EvEFIHCRTMEvent:            "EV_EFI_HCRTM_EVENT",
	EvEFIVariableAuthority:     "EV_EFI_VARIABLE_AUTHORITY",
	EvEFISPDMFirmwareBlob:      "EV_EFI_SPDM_FIRMWARE_BLOB",
	EvEFISPDMFirmwareConfig:    "EV_EFI_SPDM_FIRMWARE_CONFIG",
}

// EvCorebootMeasurement is the type glint gives coreboot TCPA entries, which
// carry no TCG event type. It lies in the vendor range the PFP leaves free
// (PFP 1.05, 10.4.1: 0x00000013..0x7FFFFFFF reserved) and is never written to
// a TPM; it only names the entries in output and stored records.
const EvCorebootMeasurement EventType = 0x434F5245 // "CORE"

func init() { eventTypeNames[EvCorebootMeasurement] = "COREBOOT_MEASUREMENT" }

func (t EventType) String() string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%08x", uint32(t))
}

// ParseEventType is the inverse of EventType.String.
func ParseEventType(s string) (EventType, error) {
	for t, n := range eventTypeNames {
		if n == s {
			return t, nil
		}
	}
	if strings.HasPrefix(s, "0x") {
		v, err := strconv.ParseUint(s[2:], 16, 32)
		if err == nil {
			return EventType(v), nil
		}
	}
	return 0, fmt.Errorf("unknown event type %q", s)
}
