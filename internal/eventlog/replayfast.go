package eventlog

import (
	"bytes"
	"hash"

	"github.com/glint-boot/glint/internal/tpm"
)

// finalValues is the result of a replay without its history: each PCR's
// last value, and which PCRs an event without a digest in the bank left
// unknown. PCR indices are bounded by maxPCR, so fixed arrays hold them and
// the replay allocates one hasher and one buffer, whatever the log's size.
type finalValues struct {
	size    int
	buf     []byte // (maxPCR+1) values of size bytes
	seen    [maxPCR + 1]bool
	missing [maxPCR + 1]bool
}

func (f *finalValues) value(pcr int) []byte { return f.buf[pcr*f.size : (pcr+1)*f.size] }

// replayFinal replays bank the way replay does (same start values, same
// skipped and missing events) but keeps only the final values. Verify and
// Replay use it; the step-by-step replay runs only to explain a mismatch.
func (l *Log) replayFinal(bank tpm.Alg) (*finalValues, bool) {
	hf, err := bank.Hash()
	if err != nil {
		return nil, false
	}
	h := hf.New()
	f := &finalValues{size: hf.Size(), buf: make([]byte, (maxPCR+1)*hf.Size())}
	for i := range l.Events {
		e := &l.Events[i]
		if e.Type == EvNoAction {
			if e.PCR == 0 && len(e.Data) == 17 && bytes.HasPrefix(e.Data, []byte("StartupLocality\x00")) {
				// PFP 1.05, 10.4.5.3, as in replay.
				v := f.value(0)
				clear(v)
				v[len(v)-1] = e.Data[16]
				f.seen[0] = true
			}
			continue
		}
		if e.PCR < 0 || e.PCR > maxPCR || f.missing[e.PCR] {
			continue
		}
		d, ok := e.Digests[bank]
		if !ok || len(d) != f.size {
			f.missing[e.PCR] = true
			f.seen[e.PCR] = false
			continue
		}
		extendInPlace(h, f.value(e.PCR), d)
		f.seen[e.PCR] = true
	}
	return f, true
}

// extendInPlace sets v to H(v || digest) (TPM 2.0 Part 1, 17.6.3).
func extendInPlace(h hash.Hash, v, digest []byte) {
	h.Reset()
	h.Write(v)
	h.Write(digest)
	h.Sum(v[:0])
}

// reproduces reports whether every PCR in live has the replayed value (or,
// for a PCR the log never extended, its reset value), as Verify checks.
func (f *finalValues) reproduces(live map[int][]byte) bool {
	for p, actual := range live {
		if p < 0 || p > maxPCR {
			return false
		}
		if f.missing[p] {
			return false
		}
		if f.seen[p] {
			if !bytes.Equal(f.value(p), actual) {
				return false
			}
			continue
		}
		if !bytes.Equal(resetValue(p, f.size), actual) {
			return false
		}
	}
	return true
}
