package attest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// QuotedPCRs are the PCRs every report must quote: the firmware's and
// glint's (PC Client PFP 1.05, 2.3.4: 0-7 are the pre-OS PCRs).
var QuotedPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7}

// MaxReportEvents bounds the events of a report's log. The largest real
// logs seen have ~2,000 events (a UEFI machine with many option ROMs and a
// long dbx); ten times that is still far from anything honest.
const MaxReportEvents = 20_000

// QuoteError is a report refused before anything about it was believed:
// the signature, nonce or PCR selection is wrong. Nothing is recorded.
type QuoteError struct{ Reason string }

func (e *QuoteError) Error() string { return "report refused: " + e.Reason }

// VerifyQuote checks a report's quote against the enrolled AK and the
// nonce of its token, FIRST and before the event log is even looked at
// (an unauthenticated report must cost no more than a signature check:
// Dstack-TEE/dstack#1267 spent seconds replaying a crafted log before
// finding the signature bad). It returns the PCR values the TPM signed.
func VerifyQuote(tpmVersion tpm.Version, akPublic []byte, r *wire.ReportRequest) (tpm.Alg, map[int][]byte, error) {
	bank := tpm.Alg(r.Bank)
	switch {
	case tpmVersion == tpm.Version12 && bank != tpm.SHA1:
		return 0, nil, &QuoteError{Reason: "a TPM 1.2 quote covers the sha1 bank"}
	case bank != tpm.SHA1 && bank != tpm.SHA256:
		return 0, nil, &QuoteError{Reason: fmt.Sprintf("bank %s: glint verifies sha1 and sha256 quotes", bank)}
	}
	size := 20
	if bank == tpm.SHA256 {
		size = 32
	}
	pcrs := make(map[int][]byte, len(r.PCRs))
	for _, p := range r.PCRs {
		if len(p.Value) != size {
			return 0, nil, &QuoteError{Reason: fmt.Sprintf("PCR %d value is %d bytes, a %s value is %d", p.Index, len(p.Value), bank, size)}
		}
		pcrs[int(p.Index)] = p.Value
	}
	for _, p := range QuotedPCRs {
		if _, ok := pcrs[p]; !ok {
			return 0, nil, &QuoteError{Reason: fmt.Sprintf("the quote must cover PCRs 0-7; PCR %d is missing", p)}
		}
	}
	q := &tpm.Quote{Attest: r.Attest, Signature: r.Signature, Bank: bank, PCRs: pcrs}
	if err := tpm.VerifyQuote(akPublic, q, wire.Nonce(r.Token)); err != nil {
		return 0, nil, &QuoteError{Reason: err.Error()}
	}
	return bank, pcrs, nil
}

// Golden is an approved set of measurements for one model and firmware
// image: the PCR values a good machine quotes, and (when learned from a
// machine or predicted with events) the events that produce them, so a
// difference can be named at event level.
type Golden struct {
	ID     int64
	Model  string
	Label  string // firmware image, e.g. "coreboot 4.15 glint 2.1 (2026-11)"
	Bank   tpm.Alg
	PCRs   map[int][]byte
	Events []eventlog.EventRecord // may be nil
	Source string                 // "learned from device ...", "predicted from ROM sha256:..."
}

// PCRDiff is one PCR whose quoted value differs from the golden one.
type PCRDiff struct {
	PCR    int    `json:"pcr"`
	Golden []byte `json:"golden"`
	Quoted []byte `json:"quoted"`
	// Explained: the device's event log reproduces the quoted value, so the
	// event differences below can be believed for this PCR.
	Explained bool `json:"explained"`
	// LogProblem says why the log cannot explain this PCR, if it cannot.
	LogProblem string `json:"log_problem,omitempty"`
}

// EventDiff is one event that differs from the golden events.
type EventDiff struct {
	PCR         int    `json:"pcr"`
	Kind        string `json:"kind"` // changed, added, removed
	Type        string `json:"type"`
	Description string `json:"description"`
	Golden      string `json:"golden,omitempty"` // hex digest
	Reported    string `json:"reported,omitempty"`
}

// Appraisal is what the server concludes from a verified quote and its log.
type Appraisal struct {
	Verdict wire.Verdict
	Bank    tpm.Alg
	PCRs    map[int][]byte
	// Golden is the golden set compared against (the matching one, or the
	// closest); nil if the model has none in this bank.
	Golden     *Golden
	PCRDiffs   []PCRDiff
	EventDiffs []EventDiff
	// Log facts: its hash, event count, the PCRs it does not reproduce,
	// and a parse error if it could not be read at all.
	LogSHA256   []byte
	EventCount  int
	Unexplained []int
	LogError    string
}

// Appraise compares verified PCR values with the approved golden sets of
// the device's model and explains differences with the event log. The
// verdict rests on the signed PCR values alone; the log (which the device
// could have altered) is replayed against them and used only where it
// reproduces them, to name the events behind a difference.
func Appraise(bank tpm.Alg, pcrs map[int][]byte, rawLog []byte, goldens []Golden, firmwareClaim string) *Appraisal {
	a := &Appraisal{Verdict: wire.Unknown, Bank: bank, PCRs: pcrs}
	sum := sha256.Sum256(rawLog)
	a.LogSHA256 = sum[:]
	problems := map[int]string{}
	var log *eventlog.Log
	if len(rawLog) == 0 {
		a.LogError = "no event log was sent"
	} else if l, err := eventlog.ParseForReplay(rawLog); err != nil {
		a.LogError = err.Error()
	} else if len(l.Events) > MaxReportEvents {
		a.LogError = fmt.Sprintf("the log has %d events, more than the %d this server reads", len(l.Events), MaxReportEvents)
	} else {
		log = l
		a.EventCount = len(l.Events)
		var rerr *eventlog.ReplayError
		if err := l.Verify(bank, pcrs); errors.As(err, &rerr) {
			for _, m := range rerr.Mismatches {
				problems[m.PCR] = m.Reason
			}
		} else if err != nil {
			a.LogError = err.Error()
		}
	}
	for p := range pcrs {
		if log == nil {
			problems[p] = a.LogError
		}
		if _, bad := problems[p]; bad {
			a.Unexplained = append(a.Unexplained, p)
		}
	}
	sort.Ints(a.Unexplained)

	best, bestDiffs := -1, 0
	for i := range goldens {
		g := &goldens[i]
		if g.Bank != bank {
			continue
		}
		n := 0
		for p, v := range g.PCRs {
			if !bytes.Equal(pcrs[p], v) {
				n++
			}
		}
		// Prefer a match; among equals, the set the device says it runs.
		if best < 0 || n < bestDiffs || (n == bestDiffs && g.Label == firmwareClaim && goldens[best].Label != firmwareClaim) {
			best, bestDiffs = i, n
		}
	}
	if best < 0 {
		return a
	}
	g := &goldens[best]
	a.Golden = g
	if bestDiffs == 0 {
		a.Verdict = wire.Trusted
		return a
	}
	a.Verdict = wire.Changed
	var idx []int
	for p := range g.PCRs {
		idx = append(idx, p)
	}
	sort.Ints(idx)
	differing := map[int]bool{}
	for _, p := range idx {
		if bytes.Equal(pcrs[p], g.PCRs[p]) {
			continue
		}
		_, bad := problems[p]
		a.PCRDiffs = append(a.PCRDiffs, PCRDiff{PCR: p, Golden: g.PCRs[p], Quoted: pcrs[p], Explained: !bad, LogProblem: problems[p]})
		differing[p] = !bad
	}
	if log != nil && g.Events != nil {
		// Events are matched by description: name them now that they are
		// needed (ParseForReplay left them bare).
		log.Describe()
		if old, err := eventlog.FromRecords(g.Events); err == nil {
			for _, c := range eventlog.Diff(old, log) {
				if explained, ok := differing[c.PCR]; !ok || !explained {
					continue
				}
				a.EventDiffs = append(a.EventDiffs, eventDiff(c, bank))
			}
		}
	}
	return a
}

func eventDiff(c eventlog.Change, bank tpm.Alg) EventDiff {
	e := c.New
	if e == nil {
		e = c.Old
	}
	d := EventDiff{PCR: c.PCR, Kind: c.Kind.String(), Type: e.Type.String(), Description: e.Description}
	if c.Old != nil {
		d.Golden = fmt.Sprintf("%x", c.Old.Digests[bank])
	}
	if c.New != nil {
		d.Reported = fmt.Sprintf("%x", c.New.Digests[bank])
	}
	return d
}

// Summary renders the appraisal for the device's console and the
// dashboard: the verdict, then each PCR and event that differs.
func (a *Appraisal) Summary() string {
	var b strings.Builder
	switch a.Verdict {
	case wire.Trusted:
		fmt.Fprintf(&b, "trusted: PCRs match the approved measurements %q (%s)", a.Golden.Label, a.Golden.Model)
	case wire.Unknown:
		fmt.Fprintf(&b, "unknown: no approved %s measurements for this model yet; an administrator can approve this machine's as golden", a.Bank)
	case wire.Changed:
		fmt.Fprintf(&b, "CHANGED: %d PCR(s) differ from the approved measurements %q (%s)", len(a.PCRDiffs), a.Golden.Label, a.Golden.Model)
		for _, d := range a.PCRDiffs {
			fmt.Fprintf(&b, "\n  PCR %d: approved %x, quoted %x", d.PCR, d.Golden, d.Quoted)
			if !d.Explained {
				fmt.Fprintf(&b, " (the event log does not explain it: %s)", d.LogProblem)
			}
		}
		for _, e := range a.EventDiffs {
			fmt.Fprintf(&b, "\n  PCR %d: %s %s", e.PCR, describeEvent(e), e.Kind)
		}
	case wire.NotApproved:
		b.WriteString("not approved: the quote is genuine, but an administrator has not approved this machine (or revoked it)")
	}
	if a.LogError != "" {
		fmt.Fprintf(&b, "\n  event log: %s", a.LogError)
	}
	return b.String()
}

func describeEvent(e EventDiff) string {
	if e.Description != "" {
		return e.Description
	}
	return e.Type
}
