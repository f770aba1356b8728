package eventlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/glint-boot/glint/internal/tpm"
)

// coreboot's own measurement log, as coreboot 4.15 keeps it in cbmem under
// CBMEM_ID_TCPA_LOG ("TCPA") and points to it from the coreboot tables with
// LB_TAG_TCPA_LOG (src/commonlib/include/commonlib/tcpa_log_serialized.h;
// renamed TPM_CB_LOG with the same layout in later releases):
//
//	struct tcpa_table { u16 max_entries; u16 num_entries; struct tcpa_entry entries[]; }
//	struct tcpa_entry { u32 pcr; char digest_type[10]; u8 digest[64];
//	                    u32 digest_length; char name[50]; }   // packed, 132 bytes
//
// The format has no magic number (coreboot Documentation/security/vboot/
// measured_boot.md says so), so it is only ever parsed when the coreboot
// tables say that is what the region holds. Little-endian, as coreboot runs
// on little-endian x86 and ARM.
const (
	tcpaHeaderSize   = 4
	tcpaEntrySize    = 4 + 10 + 64 + 4 + 50
	tcpaMaxEntries   = 65535 // u16 count: the cap is the type itself
	tcpaDigestMax    = 64
	tcpaDigestTypeSz = 10
	tcpaNameSize     = 50
)

// ParseTCPA parses coreboot's TCPA log. Each entry becomes an extended event
// of type EvCorebootMeasurement whose Description is coreboot's name, e.g.
// "FMAP: COREBOOT CBFS: fallback/payload".
func ParseTCPA(rawLog []byte) (*Log, error) {
	if len(rawLog) > MaxLogSize {
		return nil, errorf(0, "tcpa_table", ErrTooLarge, "%d bytes, limit %d", len(rawLog), MaxLogSize)
	}
	r := &reader{b: rawLog}
	maxEntries, err := r.u16("tcpa_table.max_entries")
	if err != nil {
		return nil, err
	}
	num, err := r.u16("tcpa_table.num_entries")
	if err != nil {
		return nil, err
	}
	if num > maxEntries {
		return nil, errorf(2, "tcpa_table.num_entries", ErrFormat, "%d entries in a table of %d", num, maxEntries)
	}
	if int(num)*tcpaEntrySize > r.remaining() {
		return nil, errorf(2, "tcpa_table.num_entries", ErrTruncated, "%d entries need %d bytes, %d remain", num, int(num)*tcpaEntrySize, r.remaining())
	}
	log := &Log{Format: FormatCorebootTCPA}
	seen := map[tpm.Alg]bool{}
	for i := 0; i < int(num); i++ {
		start := r.pos()
		pcr, _ := r.u32("tcpa_entry.pcr")
		typ, _ := r.bytes(tcpaDigestTypeSz, "tcpa_entry.digest_type")
		digest, _ := r.bytes(tcpaDigestMax, "tcpa_entry.digest")
		dlen, _ := r.u32("tcpa_entry.digest_length")
		name, _ := r.bytes(tcpaNameSize, "tcpa_entry.name")
		algName := cString(typ)
		alg, err := tpm.ParseAlg(algName)
		if err != nil {
			return nil, errorf(start+4, "tcpa_entry.digest_type", ErrFormat, "entry %d: %v", i, err)
		}
		if dlen > tcpaDigestMax || int(dlen) != alg.Size() {
			return nil, errorf(start+78, "tcpa_entry.digest_length", ErrFormat, "entry %d: %d bytes for %s", i, dlen, algName)
		}
		if !seen[alg] {
			seen[alg] = true
			log.Algs = append(log.Algs, alg)
		}
		data := bytes.TrimRight(name, "\x00")
		log.Events = append(log.Events, Event{
			Index:       i,
			PCR:         int(pcr),
			Type:        EvCorebootMeasurement,
			Digests:     map[tpm.Alg][]byte{alg: bytes.Clone(digest[:dlen])},
			Data:        bytes.Clone(data),
			Description: cString(name),
			Offset:      start,
		})
	}
	return log, nil
}

// MarshalTCPA writes a log in coreboot's TCPA layout with room for max
// entries. It exists so tests and the fuzz target can round-trip, and so a
// synthetic cbmem can be built where no coreboot ROM is at hand.
func MarshalTCPA(l *Log, max int) ([]byte, error) {
	if max < len(l.Events) || max > tcpaMaxEntries {
		return nil, fmt.Errorf("tcpa: %d entries do not fit a table of %d", len(l.Events), max)
	}
	out := make([]byte, tcpaHeaderSize+max*tcpaEntrySize)
	binary.LittleEndian.PutUint16(out, uint16(max))
	binary.LittleEndian.PutUint16(out[2:], uint16(len(l.Events)))
	for i, e := range l.Events {
		if len(e.Digests) != 1 {
			return nil, fmt.Errorf("tcpa: event %d has %d digests, the format holds one", i, len(e.Digests))
		}
		p := out[tcpaHeaderSize+i*tcpaEntrySize:]
		binary.LittleEndian.PutUint32(p, uint32(e.PCR))
		for alg, d := range e.Digests {
			copy(p[4:14], strings.ToUpper(alg.String()))
			copy(p[14:78], d)
			binary.LittleEndian.PutUint32(p[78:], uint32(len(d)))
		}
		name := e.Description
		if len(name) > tcpaNameSize-1 {
			name = name[:tcpaNameSize-1] // coreboot strncpy's NAME-1 bytes
		}
		copy(p[82:], name)
	}
	return out, nil
}
