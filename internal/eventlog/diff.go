package eventlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/tpm"
)

// EventRecord is the compact, JSON-able form of one extended event that the
// seal package keeps beside a sealed secret, so a later failure to unseal can
// be explained ("PCR 2: fallback/payload changed") by diffing it against the
// live log. One digest per record: the bank the secret was sealed to.
type EventRecord struct {
	PCR         int    `json:"pcr"`
	Type        string `json:"type"`
	Description string `json:"desc,omitempty"`
	Digest      string `json:"digest"` // hex
}

// Caps for stored records: they come back from /boot, which an attacker
// with disk access can write.
const (
	MaxRecordsSize        = 4 << 20
	MaxRecords            = 100_000
	maxRecordDescription  = 4096
	maxRecordTypeNameSize = 64
)

// Records returns the extended events of bank as records, in log order.
// Events with no digest in bank are left out.
func (l *Log) Records(bank tpm.Alg) []EventRecord {
	var out []EventRecord
	for _, e := range l.Events {
		d, ok := e.Digests[bank]
		if !e.Extended() || !ok {
			continue
		}
		out = append(out, EventRecord{PCR: e.PCR, Type: e.Type.String(), Description: e.Description, Digest: hex.EncodeToString(d)})
	}
	return out
}

// MarshalRecords is the stored form: a JSON array.
func MarshalRecords(recs []EventRecord) ([]byte, error) { return json.Marshal(recs) }

// ParseRecords reads stored records, refusing anything over the caps or
// malformed (bad hex, a digest of no known size, a negative PCR).
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
		d, err := hex.DecodeString(r.Digest)
		if err != nil || algForSize(len(d)) == 0 {
			return nil, errorf(off, "record.digest", ErrFormat, "%q is not a hex SHA-1/256/384/512 digest", r.Digest)
		}
		if r.PCR < 0 || r.PCR > 1023 || len(r.Description) > maxRecordDescription || len(r.Type) > maxRecordTypeNameSize {
			return nil, errorf(off, "record", ErrFormat, "PCR %d or field sizes out of range", r.PCR)
		}
		if _, err := ParseEventType(r.Type); err != nil {
			return nil, errorf(off, "record.type", ErrFormat, "%v", err)
		}
		out = append(out, r)
	}
	if _, err := dec.Token(); err != nil {
		return nil, errorf(dec.InputOffset(), "records", ErrFormat, "unterminated array: %v", err)
	}
	return out, nil
}

func algForSize(n int) tpm.Alg {
	switch n {
	case 20:
		return tpm.SHA1
	case 32:
		return tpm.SHA256
	case 48:
		return tpm.SHA384
	case 64:
		return tpm.SHA512
	}
	return 0
}

// FromRecords rebuilds a Log from stored records so it can be replayed and
// diffed like a parsed one. The bank is told by the digest size.
func FromRecords(recs []EventRecord) (*Log, error) {
	l := &Log{Format: FormatCryptoAgile, Source: "stored records"}
	seen := map[tpm.Alg]bool{}
	for i, r := range recs {
		d, err := hex.DecodeString(r.Digest)
		if err != nil {
			return nil, fmt.Errorf("record %d: digest: %w", i, err)
		}
		alg := algForSize(len(d))
		if alg == 0 {
			return nil, fmt.Errorf("record %d: a %d-byte digest matches no bank", i, len(d))
		}
		t, err := ParseEventType(r.Type)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if !seen[alg] {
			seen[alg] = true
			l.Algs = append(l.Algs, alg)
		}
		l.Events = append(l.Events, Event{Index: i, PCR: r.PCR, Type: t, Digests: map[tpm.Alg][]byte{alg: d}, Description: r.Description})
	}
	return l, nil
}

// ChangeKind says how an event differs between two logs.
type ChangeKind int

const (
	Changed ChangeKind = iota + 1 // same PCR, type and description; other digest
	Added                         // only in the new log
	Removed                       // only in the old log
)

func (k ChangeKind) String() string {
	return [...]string{"", "changed", "added", "removed"}[k]
}

// Change is one difference between two logs.
type Change struct {
	PCR  int
	Kind ChangeKind
	Old  *Event // nil for Added
	New  *Event // nil for Removed
	// Alg is the bank whose digests differ (Changed only).
	Alg tpm.Alg
}

func (c Change) String() string {
	e := c.New
	if e == nil {
		e = c.Old
	}
	what := e.Description
	if what == "" {
		what = e.Type.String()
	}
	s := fmt.Sprintf("PCR %d: %s %s", c.PCR, what, c.Kind)
	if c.Kind == Changed && c.Alg == 0 {
		s += " (the two logs share no PCR bank, so the digests cannot be compared)"
	} else if c.Kind == Changed {
		s += fmt.Sprintf(" (%s %s -> %s)", c.Alg, shortHex(c.Old.Digests[c.Alg]), shortHex(c.New.Digests[c.Alg]))
	}
	return s
}

// Diff lists, per PCR in ascending order, the extended events that differ
// between old and new. Events are matched by PCR, type and description (the
// n-th occurrence of a key in old with the n-th in new), so a rebuilt payload
// shows as "fallback/payload changed" rather than one removal and one
// addition. Digests are compared in every bank both events carry.
func Diff(old, new *Log) []Change {
	type key struct {
		pcr  int
		typ  EventType
		desc string
	}
	index := func(l *Log) (map[key][]*Event, []*Event) {
		m := map[key][]*Event{}
		var order []*Event
		for i := range l.Events {
			e := &l.Events[i]
			if !e.Extended() {
				continue
			}
			k := key{e.PCR, e.Type, e.Description}
			m[k] = append(m[k], e)
			order = append(order, e)
		}
		return m, order
	}
	oldBy, oldOrder := index(old)
	_, newOrder := index(new)
	var out []Change
	used := map[*Event]bool{}
	for _, e := range newOrder {
		k := key{e.PCR, e.Type, e.Description}
		if len(oldBy[k]) == 0 {
			out = append(out, Change{PCR: e.PCR, Kind: Added, New: e})
			continue
		}
		o := oldBy[k][0]
		oldBy[k] = oldBy[k][1:]
		used[o] = true
		if alg, differ := digestsDiffer(o, e); differ {
			out = append(out, Change{PCR: e.PCR, Kind: Changed, Old: o, New: e, Alg: alg})
		}
	}
	for _, o := range oldOrder {
		if !used[o] {
			out = append(out, Change{PCR: o.PCR, Kind: Removed, Old: o})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].PCR != out[j].PCR {
			return out[i].PCR < out[j].PCR
		}
		return eventIndex(out[i]) < eventIndex(out[j])
	})
	return out
}

func eventIndex(c Change) int {
	if c.New != nil {
		return c.New.Index
	}
	return c.Old.Index
}

// digestsDiffer compares the banks both events have, in a fixed order.
func digestsDiffer(a, b *Event) (tpm.Alg, bool) {
	var algs []tpm.Alg
	for alg := range a.Digests {
		if _, ok := b.Digests[alg]; ok {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 {
		// Nothing to compare (e.g. SHA-1 records against a SHA-256-only
		// log): saying "unchanged" would be a guess.
		return 0, true
	}
	sort.Slice(algs, func(i, j int) bool { return algs[i] < algs[j] })
	for _, alg := range algs {
		if !bytes.Equal(a.Digests[alg], b.Digests[alg]) {
			return alg, true
		}
	}
	return 0, false
}

// Explain renders changes as lines for people, or "" when there are none.
func Explain(changes []Change) string {
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	return strings.Join(lines, "\n")
}
