package hostcheck

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Phase is where in the boot the check runs.
type Phase string

const (
	// PhasePayload: glint's payload, before it locks the flash.
	PhasePayload Phase = "payload"
	// PhaseLocked: glint's payload, after it asked the firmware to lock the flash.
	PhaseLocked Phase = "payload-locked"
	// PhaseOS: the operating system glint started (or any machine glint runs on as a CLI).
	PhaseOS Phase = "os"
)

// ParsePhase reads a phase name.
func ParsePhase(s string) (Phase, error) {
	switch p := Phase(s); p {
	case PhasePayload, PhaseLocked, PhaseOS:
		return p, nil
	}
	return "", fmt.Errorf("unknown phase %q: want payload, payload-locked or os", s)
}

func (p Phase) inPayload() bool { return p == PhasePayload || p == PhaseLocked }

// Status is one check's outcome.
type Status string

const (
	Pass          Status = "pass"
	Fail          Status = "fail"
	NotApplicable Status = "not applicable"
	CannotTell    Status = "cannot tell here"
)

// Result is one check.
type Result struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	// Detail is what was seen, in words, with the register values that decided it.
	Detail string `json:"detail"`
	// Action is one thing the owner can do about a failure (or about a check glint could not
	// make); empty when there is nothing to do.
	Action string `json:"action,omitempty"`
}

// Report is every check of one run.
type Report struct {
	Phase   Phase    `json:"phase"`
	Chipset string   `json:"chipset"`
	Source  string   `json:"source"`
	Results []Result `json:"results"`
}

// Count returns how many results have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, x := range r.Results {
		if x.Status == s {
			n++
		}
	}
	return n
}

// Failed is Count(Fail).
func (r *Report) Failed() int { return r.Count(Fail) }

// Get returns the result with the given ID.
func (r *Report) Get(id string) (Result, bool) {
	for _, x := range r.Results {
		if x.ID == id {
			return x, true
		}
	}
	return Result{}, false
}

// JSON is the report for scripts and the attestation server (stable field names).
func (r *Report) JSON() ([]byte, error) {
	type summary struct {
		Pass          int `json:"pass"`
		Fail          int `json:"fail"`
		NotApplicable int `json:"not_applicable"`
		CannotTell    int `json:"cannot_tell"`
	}
	return json.MarshalIndent(struct {
		*Report
		Summary summary `json:"summary"`
	}{r, summary{r.Count(Pass), r.Count(Fail), r.Count(NotApplicable), r.Count(CannotTell)}}, "", "  ")
}

var marks = map[Status]string{Pass: "PASS", Fail: "FAIL", NotApplicable: "n/a ", CannotTell: " ?  "}

// Text is the report for a person: one line per check, the detail under it, the action after
// an arrow, and a summary.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Platform lock check (%s; chipset: %s; registers: %s)\n", phaseWords[r.Phase], r.Chipset, r.Source)
	for _, x := range r.Results {
		fmt.Fprintf(&b, "[%s] %s\n", marks[x.Status], x.Title)
		if x.Detail != "" {
			fmt.Fprintf(&b, "       %s\n", x.Detail)
		}
		if x.Action != "" {
			fmt.Fprintf(&b, "       -> %s\n", x.Action)
		}
	}
	fmt.Fprintf(&b, "%d pass, %d fail, %d not applicable, %d cannot tell here\n",
		r.Count(Pass), r.Count(Fail), r.Count(NotApplicable), r.Count(CannotTell))
	return b.String()
}

var phaseWords = map[Phase]string{
	PhasePayload: "in glint's payload, before it locks the flash",
	PhaseLocked:  "in glint's payload, after it locked the flash",
	PhaseOS:      "in the running operating system",
}
