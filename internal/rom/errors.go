package rom

import (
	"errors"
	"fmt"
)

// Caps on what an untrusted image may declare.
const (
	// MaxImageSize bounds a flash image: the largest SPI flash parts on
	// laptops are 64 MiB.
	MaxImageSize = 64 << 20
	// MaxFMAPAreas bounds fmap.nareas; real layouts have tens.
	MaxFMAPAreas = 256
	// MaxCBFSFiles bounds a CBFS walk (64-byte alignment in 64 MiB would
	// allow a million; real ones hold under a hundred).
	MaxCBFSFiles = 65536
	// MaxDecompressed bounds one decompressed file (a kernel + initrd
	// payload is tens of MiB).
	MaxDecompressed = 256 << 20
)

var (
	ErrTruncated = errors.New("truncated")
	ErrTooLarge  = errors.New("exceeds limit")
	ErrFormat    = errors.New("malformed")
	ErrNotFound  = errors.New("not found")
)

// ParseError says where in an untrusted image parsing stopped and why.
type ParseError struct {
	Offset int64  // byte offset in the image
	Field  string // e.g. "cbfs_file.len"
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("rom: %s at 0x%x: %v", e.Field, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func errorf(off int64, field string, err error, format string, a ...any) error {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, a...))
	}
	return &ParseError{Offset: off, Field: field, Err: err}
}
