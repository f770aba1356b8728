// Package seal binds a secret to the measured boot state, and explains in
// words why a secret did not unseal. Which secrets glint seals, and to which
// PCRs, is package sealed's business; this is the mechanism beneath it.
//
// A TPM that refuses to unseal only says "policy check failed". The owner
// needs to know what changed: firmware? the boot mode? the owner config? So
// every sealed secret is kept in a Record together with the PCR values it was
// sealed to and, when a firmware event log was available, the list of events
// that produced them. On failure Unseal compares those with the PCRs and the
// event log of this boot and returns a *MismatchError naming each PCR that
// differs, what that PCR holds on this platform, and the events that changed.
//
// Where records live: a file under /boot/glint/sealed/ (Save, Load). The
// record is not secret: the sealed blob inside can only be unsealed by this
// TPM in the recorded state. It is not signed either (it changes whenever the
// owner reseals), so its PCR values and events are used only to explain a
// failure, never to decide one: the TPM alone decides.
package seal

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// FormatVersion is the version of the on-disk Record encoding.
const FormatVersion = 1

// Caps for parsing a stored record (untrusted: it sits on /boot).
const (
	maxRecordSize = 1 << 20
	maxEvents     = 4096
	maxBlobSize   = 8192
	maxPCRIndex   = 23
	maxTextLen    = 1024
)

// Record is a sealed secret with what it was sealed to.
type Record struct {
	Version   int                    `json:"version"`
	Purpose   string                 `json:"purpose"` // "totp", "disk"
	TPM       string                 `json:"tpm"`     // "TPM 2.0" / "TPM 1.2"
	Profile   string                 `json:"profile"` // platform profile name
	Bank      tpm.Alg                `json:"bank"`
	PCRs      map[int]hexBytes       `json:"pcrs"` // sealed-to values (some predicted)
	Predicted []int                  `json:"predicted,omitempty"`
	PIN       bool                   `json:"pin"`
	Events    []eventlog.EventRecord `json:"events,omitempty"`
	Created   time.Time              `json:"created"`
	Blob      []byte                 `json:"blob"`            // opaque TPM sealed object
	Extra     map[string]string      `json:"extra,omitempty"` // purpose-specific, e.g. LUKS UUID
}

type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) error {
	if len(b) > 2*64 {
		return fmt.Errorf("digest too long (%d hex digits)", len(b))
	}
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Request says what to seal and to which state.
type Request struct {
	Purpose string
	Profile pcr.Profile
	Bank    tpm.Alg
	// Values are the PCR values to seal to (current or predicted).
	Values map[int][]byte
	// Predicted lists which of Values were predicted rather than read.
	Predicted []int
	PIN       []byte
	Events    []eventlog.EventRecord
	Extra     map[string]string
	Now       time.Time
	// ApprovalKey, on TPM 2.0, seals so that PCR values this key approves
	// for the purpose open the secret too (tpm.Authorizer.SealAuthorized;
	// docs/firmware-updates.md). nil: sealed to Values alone.
	ApprovalKey crypto.PublicKey
	// Epoch binds a secret sealed with ApprovalKey to the approval epoch
	// counter (tpm epoch20.go): its sealed-to values hold while the counter
	// reads at most Epoch.Value, and only approvals of a current epoch open
	// it. nil: not bound (as before epochs). Ignored without ApprovalKey.
	Epoch *tpm.Epoch
}

// Seal seals secret with the TPM and returns the record to store.
func Seal(t tpm.TPM, secret []byte, req Request) (*Record, error) {
	if len(req.Values) == 0 {
		return nil, errors.New("seal: no PCRs selected")
	}
	policy := tpm.PCRPolicy{Bank: req.Bank, Values: req.Values}
	var blob []byte
	var err error
	if a, ok := t.(tpm.Authorizer); ok && req.ApprovalKey != nil {
		policy.Epoch = req.Epoch
		blob, err = a.SealAuthorized(secret, req.ApprovalKey, []byte(ApprovalRef(req.Purpose)), policy, req.PIN)
	} else {
		blob, err = t.Seal(secret, policy, req.PIN)
	}
	if err != nil {
		return nil, fmt.Errorf("seal %s secret: %w", req.Purpose, err)
	}
	r := &Record{
		Version: FormatVersion, Purpose: req.Purpose, TPM: t.Version().String(),
		Profile: req.Profile.Name, Bank: req.Bank, PCRs: map[int]hexBytes{},
		Predicted: append([]int(nil), req.Predicted...), PIN: len(req.PIN) > 0,
		Events: req.Events, Created: req.Now.UTC(), Blob: blob, Extra: req.Extra,
	}
	for i, v := range req.Values {
		r.PCRs[i] = append(hexBytes(nil), v...)
	}
	return r, nil
}

// ApprovalRef is the policyRef that binds owner approvals to a purpose
// ("totp" -> "glint-totp"), as package approval names them.
func ApprovalRef(purpose string) string { return "glint-" + purpose }

// PCRList is the sorted list of PCRs the record is sealed to.
func (r *Record) PCRList() []int {
	l := make([]int, 0, len(r.PCRs))
	for i := range r.PCRs {
		l = append(l, i)
	}
	sort.Ints(l)
	return l
}

// Unseal asks the TPM for the secret. If the TPM refuses because of the PCR
// policy, the error is a *MismatchError that compares the sealed-to values
// with the PCRs now and, given the events of this boot (may be nil), names
// the events that changed.
func Unseal(t tpm.TPM, r *Record, pin []byte, profile pcr.Profile, eventsNow []eventlog.EventRecord) ([]byte, error) {
	secret, err := t.Unseal(r.Blob, pin)
	if err == nil {
		return secret, nil
	}
	var pe *tpm.PolicyError
	if !errors.As(err, &pe) {
		return nil, fmt.Errorf("unseal %s secret: %w", r.Purpose, err)
	}
	now, rerr := t.ReadPCRs(r.Bank, r.PCRList())
	if rerr != nil {
		return nil, fmt.Errorf("unseal %s secret: %w (and reading PCRs to explain it failed: %v)", r.Purpose, err, rerr)
	}
	return nil, Explain(r, now, profile, eventsNow, err)
}

// Explain builds the MismatchError for a record given the PCR values now.
func Explain(r *Record, now map[int][]byte, profile pcr.Profile, eventsNow []eventlog.EventRecord, cause error) *MismatchError {
	me := &MismatchError{Purpose: r.Purpose, Cause: cause}
	predicted := map[int]bool{}
	for _, i := range r.Predicted {
		predicted[i] = true
	}
	for _, i := range r.PCRList() {
		if bytes.Equal(now[i], r.PCRs[i]) {
			continue
		}
		c := PCRChange{Index: i, Holds: profile.Describe(i), Sealed: r.PCRs[i], Now: now[i], Predicted: predicted[i]}
		if r.Events != nil && eventsNow != nil {
			c.Events = diffEvents(i, r.Events, eventsNow)
		}
		me.Changed = append(me.Changed, c)
	}
	return me
}

// PCRChange is one PCR whose value differs from the sealed-to value.
type PCRChange struct {
	Index     int
	Holds     string // what this PCR measures on the platform
	Sealed    []byte
	Now       []byte
	Predicted bool     // the sealed-to value was a prediction (boot mode)
	Events    []string // changed events, in words
}

// MismatchError says the TPM refused because the measured state changed.
type MismatchError struct {
	Purpose string
	Changed []PCRChange
	Cause   error
}

func (e *MismatchError) Unwrap() error { return e.Cause }

func (e *MismatchError) Error() string {
	var b strings.Builder
	epoch := errors.Is(e.Cause, tpm.ErrEpochPassed)
	if epoch && len(e.Changed) == 0 {
		fmt.Fprintf(&b, "the TPM refused to release the %s secret: the measured boot state is the one it was sealed to, but", e.Purpose)
	} else {
		fmt.Fprintf(&b, "the TPM refused to release the %s secret: the measured boot state differs from when it was sealed", e.Purpose)
	}
	if epoch {
		b.WriteString("\n  this state belongs to an older approval epoch: a newer firmware the owner approved has booted on this machine since, so the firmware left behind (or a kept copy of its approval) no longer gets the secret")
	}
	if len(e.Changed) == 0 && !epoch {
		b.WriteString(" (all recorded PCR values still match: the sealed object or the TPM changed; reseal it)")
		return b.String()
	}
	for _, c := range e.Changed {
		fmt.Fprintf(&b, "\n  PCR %d changed (%s)", c.Index, c.Holds)
		if c.Predicted {
			b.WriteString(": this boot is not a normal boot (recovery shell, forced boot or hand-over already happened)")
		}
		for _, ev := range c.Events {
			fmt.Fprintf(&b, "\n    - %s", ev)
		}
	}
	return b.String()
}

// PCRs lists the changed PCR indices.
func (e *MismatchError) PCRs() []int {
	l := make([]int, len(e.Changed))
	for i, c := range e.Changed {
		l[i] = c.Index
	}
	return l
}

// diffEvents compares the events of one PCR at seal time with now, with the
// event-log diff (events matched by PCR, type and description: coreboot
// names its measurements after CBFS files, UEFI events carry variable or
// image names).
func diffEvents(index int, then, now []eventlog.EventRecord) []string {
	pick := func(evs []eventlog.EventRecord) []eventlog.EventRecord {
		var out []eventlog.EventRecord
		for _, e := range evs {
			if e.PCR == index {
				out = append(out, e)
			}
		}
		return out
	}
	a, aerr := eventlog.FromRecords(pick(then))
	b, berr := eventlog.FromRecords(pick(now))
	if aerr != nil || berr != nil {
		return nil
	}
	var out []string
	for _, c := range eventlog.Diff(a, b) {
		out = append(out, c.String())
	}
	return out
}

// Marshal encodes a record for storage.
func (r *Record) Marshal() ([]byte, error) {
	return json.MarshalIndent(r, "", " ")
}

// ParseError says a stored record is unusable, and why.
type ParseError struct {
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("sealed record: %s: %v (reseal the secret from the boot menu)", e.Field, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }

// Parse decodes a stored record, checking every size against caps: the
// bytes come from /boot, which anyone with the disk can write.
func Parse(untrusted []byte) (*Record, error) {
	if len(untrusted) > maxRecordSize {
		return nil, &ParseError{"size", fmt.Errorf("%d bytes, more than the %d allowed", len(untrusted), maxRecordSize)}
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(untrusted))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, &ParseError{"json", err}
	}
	switch {
	case r.Version != FormatVersion:
		return nil, &ParseError{"version", fmt.Errorf("version %d, this glint reads %d", r.Version, FormatVersion)}
	case len(r.Blob) == 0 || len(r.Blob) > maxBlobSize:
		return nil, &ParseError{"blob", fmt.Errorf("size %d outside 1..%d", len(r.Blob), maxBlobSize)}
	case len(r.Events) > maxEvents:
		return nil, &ParseError{"events", fmt.Errorf("%d events, more than %d", len(r.Events), maxEvents)}
	case len(r.PCRs) == 0:
		return nil, &ParseError{"pcrs", errors.New("no PCR values")}
	case r.Bank != tpm.SHA1 && r.Bank != tpm.SHA256:
		return nil, &ParseError{"bank", fmt.Errorf("unsupported bank %s", r.Bank)}
	case len(r.Purpose) > maxTextLen:
		return nil, &ParseError{"purpose", errors.New("too long")}
	}
	for i, v := range r.PCRs {
		if i < 0 || i > maxPCRIndex {
			return nil, &ParseError{"pcrs", fmt.Errorf("PCR index %d out of range", i)}
		}
		if len(v) != r.Bank.Size() {
			return nil, &ParseError{"pcrs", fmt.Errorf("PCR %d value has %d bytes, bank wants %d", i, len(v), r.Bank.Size())}
		}
	}
	for _, e := range r.Events { // each already checked by EventRecord.UnmarshalJSON
		if e.PCR > maxPCRIndex || len(e.Description) > maxTextLen {
			return nil, &ParseError{"events", errors.New("event out of bounds")}
		}
	}
	return &r, nil
}
