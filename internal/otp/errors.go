package otp

import "fmt"

// ParseError reports where untrusted text (an otpauth:// URI, a counter
// file) stopped making sense. Offset counts bytes from the start of the
// input; Field names the part being read.
type ParseError struct {
	Input  string // "otpauth URI" or "HOTP counter file"
	Offset int64
	Field  string
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s: %s (byte %d): %v", e.Input, e.Field, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func uriErrorf(off int, field, format string, args ...any) error {
	return &ParseError{Input: "otpauth URI", Offset: int64(off), Field: field, Err: fmt.Errorf(format, args...)}
}
