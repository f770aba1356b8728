package eventlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/glint-boot/glint/internal/tpm"
)

// EventRecord is one measurement as glint keeps and compares it: the PCR,
// the kind of event, what was measured, and the digest extended in one bank.
// It is the one event type between the log readers and the people reading
// an explanation: Log.Records makes them from a firmware log, the boot flow
// records its own measurements as them, a sealed secret keeps them beside
// its blob, and a refused unseal is explained by diffing them (FromRecords,
// Diff).
//
// Digests are bytes; hex exists only in the stored form, a JSON object
//
//	{"pcr":2,"type":"COREBOOT_MEASUREMENT","desc":"FMAP: FMAP","digest":"9f4c..."}
//
// whose bank is told by the digest's size (20 bytes: sha1, 32: sha256, ...).
type EventRecord struct {
	PCR         int
	Type        EventType
	Description string
	Alg         tpm.Alg
	Digest      []byte
}

// Caps for stored records: they come back from /boot, which an attacker
// with disk access can write.
const (
	MaxRecordsSize        = 4 << 20
	MaxRecords            = 100_000
	maxRecordDescription  = 4096
	maxRecordTypeNameSize = 64
	maxRecordPCR          = 1023
)

// recordJSON is the stored form of an EventRecord.
type recordJSON struct {
	PCR         int    `json:"pcr"`
	Type        string `json:"type"`
	Description string `json:"desc,omitempty"`
	Digest      string `json:"digest"` // hex
}

// MarshalJSON writes the stored form.
func (r EventRecord) MarshalJSON() ([]byte, error) {
	return json.Marshal(recordJSON{PCR: r.PCR, Type: r.Type.String(), Description: r.Description, Digest: hex.EncodeToString(r.Digest)})
}

// UnmarshalJSON reads the stored form, refusing unknown fields, a digest
// that is not hex of a known bank's size, an unknown event type, a PCR out
// of 0..1023 and oversized text.
func (r *EventRecord) UnmarshalJSON(untrusted []byte) error {
	var j recordJSON
	dec := json.NewDecoder(bytes.NewReader(untrusted))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	d, err := hex.DecodeString(j.Digest)
	if err != nil || algForSize(len(d)) == 0 {
		return fmt.Errorf("%.80q is not a hex SHA-1/256/384/512 digest", j.Digest)
	}
	if j.PCR < 0 || j.PCR > maxRecordPCR || len(j.Description) > maxRecordDescription || len(j.Type) > maxRecordTypeNameSize {
		return fmt.Errorf("PCR %d or field sizes out of range", j.PCR)
	}
	t, err := ParseEventType(j.Type)
	if err != nil {
		return err
	}
	*r = EventRecord{PCR: j.PCR, Type: t, Description: j.Description, Alg: algForSize(len(d)), Digest: d}
	return nil
}

// Records returns the extended events of bank as records, in log order.
// Events with no digest in bank are left out.
func (l *Log) Records(bank tpm.Alg) []EventRecord {
	var out []EventRecord
	for _, e := range l.Events {
		d, ok := e.Digests[bank]
		if !e.Extended() || !ok {
			continue
		}
		out = append(out, EventRecord{PCR: e.PCR, Type: e.Type, Description: e.Description, Alg: bank, Digest: bytes.Clone(d)})
	}
	return out
}

// MarshalRecords is the stored form: a JSON array.
func MarshalRecords(recs []EventRecord) ([]byte, error) { return json.Marshal(recs) }

// ParseRecords reads stored records, refusing anything over the caps or
// malformed (see EventRecord.UnmarshalJSON).
func ParseRecords(untrusted []byte) ([]EventRecord, error) {
	if len(untrusted) > MaxRecordsSize {
		return nil, errorf(0, "records", ErrTooLarge, "%d bytes, limit %d", len(untrusted), MaxRecordsSize)
	}
	dec := json.NewDecoder(bytes.NewReader(untrusted))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return nil, errorf(0, "records", ErrFormat, "want a JSON array of event records")
	}
	var out []EventRecord
	for dec.More() {
		off := dec.InputOffset()
		if len(out) >= MaxRecords {
			return nil, errorf(off, "records", ErrTooLarge, "more than %d records", MaxRecords)
		}
		var r EventRecord
		if err := dec.Decode(&r); err != nil {
			return nil, errorf(off, "record", ErrFormat, "%v", err)
		}
		out = append(out, r)
	}
	if _, err := dec.Token(); err != nil {
		return nil, errorf(dec.InputOffset(), "records", ErrFormat, "unterminated array: %v", err)
	}
	return out, nil
}

// algForSize tells a stored digest's bank by its size.
func algForSize(n int) tpm.Alg {
	for _, a := range []tpm.Alg{tpm.SHA1, tpm.SHA256, tpm.SHA384, tpm.SHA512} {
		if a.Size() == n {
			return a
		}
	}
	return 0
}

// FromRecords rebuilds a Log from records so it can be replayed and diffed
// like a parsed one. A record without a bank gets the one its digest's size
// tells.
func FromRecords(recs []EventRecord) (*Log, error) {
	l := &Log{Format: FormatCryptoAgile, Source: "stored records"}
	seen := map[tpm.Alg]bool{}
	for i, r := range recs {
		alg := r.Alg
		if alg == 0 {
			alg = algForSize(len(r.Digest))
		}
		if alg == 0 || len(r.Digest) != alg.Size() {
			return nil, fmt.Errorf("record %d: a %d-byte digest is no %s digest", i, len(r.Digest), alg)
		}
		if !seen[alg] {
			seen[alg] = true
			l.Algs = append(l.Algs, alg)
		}
		l.Events = append(l.Events, Event{Index: i, PCR: r.PCR, Type: r.Type, Digests: map[tpm.Alg][]byte{alg: r.Digest}, Description: r.Description})
	}
	return l, nil
}
