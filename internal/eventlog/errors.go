package eventlog

import (
	"errors"
	"fmt"
)

// Absolute caps. Every length a log declares is checked against the bytes that
// remain AND against these before anything is allocated, so a crafted 4 KiB
// header can never ask for gigabytes.
const (
	// MaxLogSize bounds a whole log. Real firmware logs are a few KiB to a
	// few hundred KiB (Linux itself refuses logs over 1 MiB for ACPI TPM2
	// tables); 64 MiB leaves room for anything honest.
	MaxLogSize = 64 << 20
	// MaxEventDataSize bounds one event's data. The largest honest events are
	// EV_EFI_GPT_EVENT and db/dbx variables (tens of KiB).
	MaxEventDataSize = 1 << 20
	// MaxDigestCount bounds TPML_DIGEST_VALUES.count and the Spec ID event's
	// numberOfAlgorithms (PFP 1.05, 10.2.2: one per active PCR bank; the TCG
	// algorithm registry has fewer than 8 hash algorithms in use).
	MaxDigestCount = 8
	// MaxEvents bounds the number of events in one log.
	MaxEvents = 1_000_000
	// MaxDigestSize is the largest digest any registered hash produces (SHA-512).
	MaxDigestSize = 64
)

// ErrTruncated means a declared length runs past the end of the input.
var ErrTruncated = errors.New("truncated")

// ErrTooLarge means a declared length or count exceeds an absolute cap.
var ErrTooLarge = errors.New("exceeds limit")

// ErrFormat means a field holds a value the format does not allow.
var ErrFormat = errors.New("malformed")

// ErrNotFound means no firmware event log was found on this machine.
var ErrNotFound = errors.New("no firmware event log found")

// ParseError says where in an untrusted log parsing stopped and why.
type ParseError struct {
	Offset int64  // byte offset in the log (or physical address for memory walks)
	Field  string // the field being read, e.g. "TCG_PCR_EVENT2.eventSize"
	Err    error  // ErrTruncated, ErrTooLarge, ErrFormat, or an I/O error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("event log: %s at byte %d: %v", e.Field, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func errorf(off int64, field string, err error, format string, a ...any) error {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, a...))
	}
	return &ParseError{Offset: off, Field: field, Err: err}
}
