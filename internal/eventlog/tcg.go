package eventlog

import (
	"bytes"
	"fmt"

	"github.com/glint-boot/glint/internal/tpm"
)

// Spec ID event signatures. "Spec ID Event03" opens every crypto-agile log
// (PFP 1.05, 10.4.5.1); "Spec ID Event00" may open a TPM 1.2 log (PC Client
// Implementation Specification for Conventional BIOS 1.21, 11.3.4.1).
var (
	specIDEvent03 = []byte("Spec ID Event03\x00")
	specIDEvent00 = []byte("Spec ID Event00\x00")
)

// maxPCR bounds pcrIndex. PC Client TPMs have 24 PCRs (PTP 2.0, 4.11);
// the headroom tolerates odd firmware while still telling a TCPA table or
// random bytes from a TCG log.
const maxPCR = 31

// noActionPCRIndex is the pcrIndex Windows gives EV_NO_ACTION records in its
// logs (0xFFFFFFFF, "-1"): they were never extended, so no PCR applies.
// go-attestation and tpm2_eventlog read such logs; glint accepts the index
// for EV_NO_ACTION only, where nothing is replayed, and keeps maxPCR for
// every event that is extended.
const noActionPCRIndex = 0xFFFFFFFF

// NoPCR is Event.PCR for an EV_NO_ACTION record logged with pcrIndex
// 0xFFFFFFFF: informational, extended into no PCR.
const NoPCR = -1

// eventPCR checks a logged pcrIndex and returns it as Event.PCR.
func eventPCR(pcr, typ uint32, start int64, field string) (int, error) {
	if pcr == noActionPCRIndex && EventType(typ) == EvNoAction {
		return NoPCR, nil
	}
	if pcr > maxPCR {
		return 0, errorf(start, field, ErrFormat, "PCR %d: a PC Client TPM has 24 (only an EV_NO_ACTION record may carry index 0xFFFFFFFF)", pcr)
	}
	return int(pcr), nil
}

// SpecID is the decoded TCG_EfiSpecIdEvent (PFP 1.05, 10.4.5.1, Table 20).
type SpecID struct {
	PlatformClass uint32
	VersionMajor  uint8
	VersionMinor  uint8
	Errata        uint8
	UintnSize     uint8
	// Algs and Sizes: the digests every TCG_PCR_EVENT2 carries, in order.
	Algs  []tpm.Alg
	Sizes map[tpm.Alg]int
}

// ParseTCG parses a TCG PC Client event log, as Linux exposes it in
// /sys/kernel/security/tpm0/binary_bios_measurements or firmware leaves it in
// an ACPI TCPA/TPM2 log area. The format is detected from the first event: a
// Spec ID Event03 means crypto-agile (TPM 2.0), anything else the SHA-1
// format (TPM 1.2). Zero padding after the last event is accepted.
func ParseTCG(rawLog []byte) (*Log, error) { return parseTCG(rawLog, true) }

func parseTCG(rawLog []byte, describeEvents bool) (*Log, error) {
	if len(rawLog) > MaxLogSize {
		return nil, errorf(0, "log", ErrTooLarge, "%d bytes, limit %d", len(rawLog), MaxLogSize)
	}
	if len(rawLog) == 0 {
		return nil, errorf(0, "log", ErrTruncated, "the log is empty")
	}
	// One copy of the input, which every event's Data and digests then
	// slice (capacity-limited, so an append to one never reaches the
	// next): the parser never aliases the caller's bytes, and costs one
	// allocation instead of three per event.
	r := &reader{b: bytes.Clone(rawLog)}
	var first Event
	if err := readSHA1Event(r, 0, &first); err != nil {
		return nil, err
	}
	if first.Type == EvNoAction && first.PCR == 0 && bytes.HasPrefix(first.Data, specIDEvent03) {
		spec, err := parseSpecID(first.Data, first.Offset+32)
		if err != nil {
			return nil, err
		}
		if describeEvents {
			first.Description = describeSpecID(spec)
		}
		log := &Log{Format: FormatCryptoAgile, Algs: spec.Algs, Events: make([]Event, 1, estimateEvents(r, spec))}
		log.Events[0] = first
		return log, readAgileEvents(r, spec, log, describeEvents)
	}
	if describeEvents {
		first.Description = describe(&first)
	}
	log := &Log{Format: FormatSHA1, Algs: []tpm.Alg{tpm.SHA1}, Events: make([]Event, 1, estimateEvents(r, nil))}
	log.Events[0] = first
	for r.remaining() > 0 && !r.restIsZero() {
		if len(log.Events) >= MaxEvents {
			return nil, errorf(r.pos(), "log", ErrTooLarge, "more than %d events", MaxEvents)
		}
		log.Events = append(log.Events, Event{})
		ev := &log.Events[len(log.Events)-1]
		if err := readSHA1Event(r, len(log.Events)-1, ev); err != nil {
			return nil, err
		}
		if describeEvents {
			ev.Description = describe(ev)
		}
	}
	return log, nil
}

// estimateEvents guesses how many events the rest of a log holds, so the
// events are allocated once: the bytes left over a typical event's size
// (its header and digests, and 32 bytes of data). The guess allocates before
// anything past the first event is checked, so it stops at 8,192 (four
// times the largest real logs); a longer log grows as it parses.
func estimateEvents(r *reader, spec *SpecID) int {
	per := 4 + 4 + 20 + 4 + 32
	if spec != nil {
		per = 4 + 4 + 4 + 4 + 32
		for _, a := range spec.Algs {
			per += 2 + spec.Sizes[a]
		}
	}
	return min(4+r.remaining()/per*5/4, 8192)
}

// readSHA1Event reads one TCG_PCR_EVENT (PFP 1.05, 10.2.1, Table 4):
// pcrIndex u32, eventType u32, digest [20], eventDataSize u32, event.
func readSHA1Event(r *reader, index int, ev *Event) error {
	start := r.pos()
	pcr, err := r.u32("TCG_PCR_EVENT.pcrIndex")
	if err != nil {
		return err
	}
	typ, err := r.u32("TCG_PCR_EVENT.eventType")
	if err != nil {
		return err
	}
	digest, err := r.bytes(20, "TCG_PCR_EVENT.digest")
	if err != nil {
		return err
	}
	size, err := r.u32("TCG_PCR_EVENT.eventDataSize")
	if err != nil {
		return err
	}
	data, err := r.sized(uint64(size), MaxEventDataSize, "TCG_PCR_EVENT.event")
	if err != nil {
		return err
	}
	pcrIndex, err := eventPCR(pcr, typ, start, "TCG_PCR_EVENT.pcrIndex")
	if err != nil {
		return err
	}
	*ev = Event{
		Index:   index,
		PCR:     pcrIndex,
		Type:    EventType(typ),
		Digests: map[tpm.Alg][]byte{tpm.SHA1: digest},
		Data:    data,
		Offset:  start,
	}
	return nil
}

// parseSpecID decodes TCG_EfiSpecIdEvent (PFP 1.05, 10.4.5.1, Table 20) and
// checks each declared digest size against the algorithm registry, since
// every later event's layout depends on them.
func parseSpecID(data []byte, base int64) (*SpecID, error) {
	r := &reader{b: data, base: base}
	if _, err := r.bytes(16, "TCG_EfiSpecIdEvent.signature"); err != nil {
		return nil, err
	}
	s := &SpecID{Sizes: map[tpm.Alg]int{}}
	var err error
	if s.PlatformClass, err = r.u32("TCG_EfiSpecIdEvent.platformClass"); err != nil {
		return nil, err
	}
	v, err := r.bytes(4, "TCG_EfiSpecIdEvent.specVersion")
	if err != nil {
		return nil, err
	}
	s.VersionMinor, s.VersionMajor, s.Errata, s.UintnSize = v[0], v[1], v[2], v[3]
	n, err := r.u32("TCG_EfiSpecIdEvent.numberOfAlgorithms")
	if err != nil {
		return nil, err
	}
	if n == 0 || n > MaxDigestCount {
		return nil, errorf(r.pos()-4, "TCG_EfiSpecIdEvent.numberOfAlgorithms", ErrTooLarge, "%d algorithms, want 1..%d", n, MaxDigestCount)
	}
	for i := uint32(0); i < n; i++ {
		off := r.pos()
		id, err := r.u16("TCG_EfiSpecIdEvent.digestSizes.algorithmId")
		if err != nil {
			return nil, err
		}
		size, err := r.u16("TCG_EfiSpecIdEvent.digestSizes.digestSize")
		if err != nil {
			return nil, err
		}
		alg := tpm.Alg(id)
		if _, dup := s.Sizes[alg]; dup {
			return nil, errorf(off, "TCG_EfiSpecIdEvent.digestSizes", ErrFormat, "algorithm %s listed twice", alg)
		}
		if size == 0 || size > MaxDigestSize {
			return nil, errorf(off, "TCG_EfiSpecIdEvent.digestSizes.digestSize", ErrFormat, "%s digest size %d", alg, size)
		}
		if want := alg.Size(); want != 0 && want != int(size) {
			return nil, errorf(off, "TCG_EfiSpecIdEvent.digestSizes.digestSize", ErrFormat, "%s digests are %d bytes, the log says %d", alg, want, size)
		}
		s.Algs = append(s.Algs, alg)
		s.Sizes[alg] = int(size)
	}
	vlen, err := r.u8("TCG_EfiSpecIdEvent.vendorInfoSize")
	if err != nil {
		return nil, err
	}
	if _, err := r.bytes(int(vlen), "TCG_EfiSpecIdEvent.vendorInfo"); err != nil {
		return nil, err
	}
	return s, nil
}

func readAgileEvents(r *reader, spec *SpecID, log *Log, describeEvents bool) error {
	for r.remaining() > 0 && !r.restIsZero() {
		if len(log.Events) >= MaxEvents {
			return errorf(r.pos(), "log", ErrTooLarge, "more than %d events", MaxEvents)
		}
		log.Events = append(log.Events, Event{})
		ev := &log.Events[len(log.Events)-1]
		if err := readAgileEvent(r, spec, len(log.Events)-1, ev); err != nil {
			return err
		}
		if describeEvents {
			ev.Description = describe(ev)
		}
	}
	return nil
}

// readAgileEvent reads one TCG_PCR_EVENT2 (PFP 1.05, 10.2.2, Table 6):
// pcrIndex u32, eventType u32, TPML_DIGEST_VALUES {count u32, {hashAlg u16,
// digest}...}, eventSize u32, event. Digest sizes come from the Spec ID
// event (10.2.2: "the size of each digest is given in the Spec ID event").
func readAgileEvent(r *reader, spec *SpecID, index int, ev *Event) error {
	start := r.pos()
	pcr, err := r.u32("TCG_PCR_EVENT2.pcrIndex")
	if err != nil {
		return err
	}
	typ, err := r.u32("TCG_PCR_EVENT2.eventType")
	if err != nil {
		return err
	}
	count, err := r.u32("TCG_PCR_EVENT2.digests.count")
	if err != nil {
		return err
	}
	if count > MaxDigestCount || count > uint32(len(spec.Algs)) {
		return errorf(r.pos()-4, "TCG_PCR_EVENT2.digests.count", ErrTooLarge, "%d digests, the Spec ID event declares %d banks", count, len(spec.Algs))
	}
	digests := make(map[tpm.Alg][]byte, count)
	for i := uint32(0); i < count; i++ {
		off := r.pos()
		id, err := r.u16("TCG_PCR_EVENT2.digests.hashAlg")
		if err != nil {
			return err
		}
		alg := tpm.Alg(id)
		size, ok := spec.Sizes[alg]
		if !ok {
			return errorf(off, "TCG_PCR_EVENT2.digests.hashAlg", ErrFormat, "algorithm 0x%04x is not in the Spec ID event, so its digest size is unknown", id)
		}
		if _, dup := digests[alg]; dup {
			return errorf(off, "TCG_PCR_EVENT2.digests.hashAlg", ErrFormat, "%s digest given twice", alg)
		}
		d, err := r.bytes(size, "TCG_PCR_EVENT2.digests.digest")
		if err != nil {
			return err
		}
		digests[alg] = d
	}
	size, err := r.u32("TCG_PCR_EVENT2.eventSize")
	if err != nil {
		return err
	}
	data, err := r.sized(uint64(size), MaxEventDataSize, "TCG_PCR_EVENT2.event")
	if err != nil {
		return err
	}
	pcrIndex, err := eventPCR(pcr, typ, start, "TCG_PCR_EVENT2.pcrIndex")
	if err != nil {
		return err
	}
	*ev = Event{Index: index, PCR: pcrIndex, Type: EventType(typ), Digests: digests, Data: data, Offset: start}
	return nil
}

func describeSpecID(s *SpecID) string {
	var names []string
	for _, a := range s.Algs {
		names = append(names, a.String())
	}
	return fmt.Sprintf("Spec ID Event03: PC Client PFP %d.%d errata %d, banks %v", s.VersionMajor, s.VersionMinor, s.Errata, names)
}

// ParseForReplay parses a log like Parse but leaves every Description
// empty: decoding event data into text for people is most of a parse's
// work, and a verifier that replays and compares digests (the attestation
// server, for every report) needs it only when something differs. Describe
// fills the descriptions then.
func ParseForReplay(rawLog []byte) (*Log, error) {
	l, err := parseTCG(rawLog, false)
	if err == nil {
		return l, nil
	}
	if t, terr := ParseTCPA(rawLog); terr == nil && len(t.Events) > 0 {
		return t, nil
	}
	return nil, err
}

// Describe fills the Description of every event that has none, as the
// parsers do (for a log from ParseForReplay).
func (l *Log) Describe() {
	for i := range l.Events {
		e := &l.Events[i]
		if e.Description != "" {
			continue
		}
		if i == 0 && l.Format == FormatCryptoAgile && bytes.HasPrefix(e.Data, specIDEvent03) {
			if spec, err := parseSpecID(e.Data, e.Offset+32); err == nil {
				e.Description = describeSpecID(spec)
				continue
			}
		}
		e.Description = describe(e)
	}
}
