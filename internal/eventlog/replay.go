package eventlog

import (
	"bytes"
	"crypto"
	"fmt"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/tpm"
)

// Replay computes the PCR values the log's events produce in one bank:
// each PCR starts at zero (or at the startup locality for PCR 0, PFP 1.05,
// 10.4.5.3) and is extended with every event's digest in log order
// (TPM 2.0 Part 1, 17.6.3: new = H(old || digest)). EV_NO_ACTION events are
// skipped. Events that lack a digest for bank, and banks glint cannot hash,
// leave their PCR out of the result: Verify explains those.
func (l *Log) Replay(bank tpm.Alg) map[int][]byte {
	f, ok := l.replayFinal(bank)
	if !ok {
		return map[int][]byte{}
	}
	out := map[int][]byte{}
	for p := range f.seen {
		if f.seen[p] {
			out[p] = bytes.Clone(f.value(p))
		}
	}
	return out
}

// replayState carries per-PCR progress so Verify can say which event a live
// value stopped at.
type replayState struct {
	// steps[pcr] holds the value after each extended event, with the event.
	steps map[int][]replayStep
	// missing[pcr] is the first event with no digest in the bank.
	missing map[int]*Event
}

type replayStep struct {
	value []byte
	event *Event
}

func (l *Log) replay(bank tpm.Alg) (map[int][]byte, *replayState) {
	st := &replayState{steps: map[int][]replayStep{}, missing: map[int]*Event{}}
	h, err := bank.Hash()
	if err != nil {
		return map[int][]byte{}, st
	}
	pcrs := map[int][]byte{}
	init := func(pcr int) []byte {
		if v, ok := pcrs[pcr]; ok {
			return v
		}
		return make([]byte, h.Size())
	}
	for i := range l.Events {
		e := &l.Events[i]
		if e.Type == EvNoAction {
			if e.PCR == 0 && bytes.HasPrefix(e.Data, []byte("StartupLocality\x00")) && len(e.Data) == 17 {
				// PFP 1.05, 10.4.5.3: a TPM started from locality 3 or 4
				// resets PCR 0 to that locality in its last byte.
				v := make([]byte, h.Size())
				v[len(v)-1] = e.Data[16]
				pcrs[0] = v
			}
			continue
		}
		if _, bad := st.missing[e.PCR]; bad {
			continue
		}
		d, ok := e.Digests[bank]
		if !ok || len(d) != h.Size() {
			st.missing[e.PCR] = e
			delete(pcrs, e.PCR)
			continue
		}
		v := extend(h, init(e.PCR), d)
		pcrs[e.PCR] = v
		st.steps[e.PCR] = append(st.steps[e.PCR], replayStep{value: v, event: e})
	}
	return pcrs, st
}

func extend(h crypto.Hash, old, digest []byte) []byte {
	w := h.New()
	w.Write(old)
	w.Write(digest)
	return w.Sum(nil)
}

// PCRMismatch is one PCR whose live value differs from the log's replay.
type PCRMismatch struct {
	PCR      int
	Expected []byte // replayed from the log (nil if the log cannot say)
	Actual   []byte // read from the TPM
	// Event is the first event that explains the difference, when one can
	// be told (see Reason); nil otherwise.
	Event  *Event
	Reason string
}

// ReplayError lists every PCR whose live value the log does not reproduce.
type ReplayError struct {
	Bank       tpm.Alg
	Mismatches []PCRMismatch
}

func (e *ReplayError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the event log does not reproduce %d %s PCR value(s):", len(e.Mismatches), e.Bank)
	for _, m := range e.Mismatches {
		fmt.Fprintf(&b, "\n  PCR %d: log gives %s, TPM has %s", m.PCR, shortHex(m.Expected), shortHex(m.Actual))
		if m.Reason != "" {
			fmt.Fprintf(&b, "; %s", m.Reason)
		}
	}
	b.WriteString("\nThe log cannot be trusted to explain these PCRs: either it was altered, or something was measured without being logged.")
	return b.String()
}

// Verify replays the log in bank and compares the result with the live
// values in pcrs. Every PCR in pcrs is checked: a PCR the log never touches
// is expected to hold its reset value. It returns nil or a *ReplayError naming each
// mismatching PCR and, where it can be told, the event that explains it:
// an event with no digest in this bank, an event whose data does not hash to
// its digest (the log was edited), or the first logged event the TPM never
// received (the live value equals the replay stopped just before it).
func (l *Log) Verify(bank tpm.Alg, pcrs map[int][]byte) error {
	h, err := bank.Hash()
	if err != nil {
		return fmt.Errorf("event log: cannot replay the %s bank: glint has no implementation of that hash; use sha1 or sha256", bank)
	}
	// The common case, a log that reproduces every PCR, needs only the
	// final values; the step-by-step replay explains a mismatch.
	if f, ok := l.replayFinal(bank); ok && f.reproduces(pcrs) {
		return nil
	}
	replayed, st := l.replay(bank)
	var idx []int
	for p := range pcrs {
		idx = append(idx, p)
	}
	sort.Ints(idx)
	rerr := &ReplayError{Bank: bank}
	for _, p := range idx {
		actual := pcrs[p]
		if e, bad := st.missing[p]; bad {
			rerr.Mismatches = append(rerr.Mismatches, PCRMismatch{PCR: p, Actual: actual, Event: e,
				Reason: fmt.Sprintf("event %d (%s) has no %s digest, so the log cannot be replayed in this bank", e.Index, e.Type, bank)})
			continue
		}
		want, ok := replayed[p]
		if !ok {
			want = resetValue(p, h.Size())
		}
		if bytes.Equal(want, actual) {
			continue
		}
		m := PCRMismatch{PCR: p, Expected: want, Actual: actual}
		explain(&m, h, bank, st.steps[p])
		rerr.Mismatches = append(rerr.Mismatches, m)
	}
	if len(rerr.Mismatches) > 0 {
		return rerr
	}
	return nil
}

// explain finds the event behind a mismatch, if the log shows one.
func explain(m *PCRMismatch, h crypto.Hash, bank tpm.Alg, steps []replayStep) {
	// An event whose data is what was hashed but no longer hashes to the
	// digest was edited after the fact (for these types the digest is
	// H(event data): PFP 1.05, 10.4.1).
	for _, s := range steps {
		if !digestIsDataHash(s.event.Type) {
			continue
		}
		w := h.New()
		w.Write(s.event.Data)
		if !bytes.Equal(w.Sum(nil), s.event.Digests[bank]) {
			m.Event = s.event
			m.Reason = fmt.Sprintf("event %d (%s %s) data does not hash to its digest: the log was altered", s.event.Index, s.event.Type, s.event.Description)
			return
		}
	}
	// The TPM stopped partway: it holds the value after k events.
	if isZero(m.Actual) && len(steps) > 0 {
		m.Event = steps[0].event
		m.Reason = fmt.Sprintf("the TPM PCR was never extended; the first logged event is %d (%s)", steps[0].event.Index, steps[0].event.Description)
		return
	}
	for k := 0; k+1 < len(steps); k++ {
		if bytes.Equal(steps[k].value, m.Actual) {
			e := steps[k+1].event
			m.Event = e
			m.Reason = fmt.Sprintf("the TPM matches the log up to event %d; event %d (%s) onwards never reached the TPM", steps[k].event.Index, e.Index, e.Description)
			return
		}
	}
	if len(steps) == 0 {
		m.Reason = "the log has no events for this PCR, yet the TPM value is not the reset value: something was measured without being logged"
		return
	}
	m.Reason = "no logged event explains it: something was measured without being logged, or a logged digest was replaced"
}

// digestIsDataHash lists event types whose digest PFP 1.05, 10.4.1 defines
// as the hash of the event data itself.
func digestIsDataHash(t EventType) bool {
	switch t {
	case EvSeparator, EvAction, EvEFIAction, EvEFIVariableDriverConfig, EvEFIVariableAuthority, EvEFIGPTEvent:
		return true
	}
	return false
}

// resetValue is a PCR's value after TPM2_Startup with no measurements:
// PCRs 17-22 (DRTM) start at all ones until a dynamic launch resets them,
// the others at zero (PC Client PTP 2.0, 3.7.4.1, Table 3; PFP 1.05, 2.3.4).
func resetValue(pcr, size int) []byte {
	v := make([]byte, size)
	if pcr >= 17 && pcr <= 22 {
		for i := range v {
			v[i] = 0xff
		}
	}
	return v
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return len(b) > 0
}

func shortHex(b []byte) string {
	if b == nil {
		return "(nothing)"
	}
	if len(b) > 8 {
		return fmt.Sprintf("%x…", b[:8])
	}
	return fmt.Sprintf("%x", b)
}
