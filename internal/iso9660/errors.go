package iso9660

import (
	"errors"
	"fmt"
)

// Caps on what an untrusted image may declare. Each is far above what a
// distribution image holds (Debian's DVD has directories of a few thousand
// entries and paths 10 deep) and small enough that a crafted image of a few
// sectors cannot make glint allocate or loop much.
const (
	// SectorSize is the logical block size this package reads. ECMA-119
	// allows 512 and 1024 too (8.4.12); no image made for optical or USB
	// media uses them, and Linux refuses them on CD-ROMs.
	SectorSize = 2048
	// MaxVolumeDescriptors bounds the descriptor set scanned from sector 16
	// (real images have 3-5: primary, boot record, Joliet, terminator).
	MaxVolumeDescriptors = 64
	// MaxDirSize bounds one directory's extent (a directory of 100,000
	// entries with long Rock Ridge names fits in 32 MiB).
	MaxDirSize = 32 << 20
	// MaxDirEntries bounds the entries of one directory.
	MaxDirEntries = 1 << 17
	// MaxDepth bounds a path's components, and so any walk of the tree.
	MaxDepth = 64
	// MaxNameLen bounds one name after decoding (Linux NAME_MAX is 255; a
	// Rock Ridge NM may be longer on paper).
	MaxNameLen = 1024
	// MaxSymlinkLen bounds a Rock Ridge symlink target (Linux PATH_MAX).
	MaxSymlinkLen = 4096
	// MaxSymlinkHops bounds symlinks followed while opening one path
	// (Linux follows 40; ISO images use one at most).
	MaxSymlinkHops = 8
	// MaxContinuations bounds SUSP continuation areas (CE) read for one
	// directory record.
	MaxContinuations = 16
	// MaxFileExtents bounds the records of one multi-extent file (64 of
	// 4 GiB each: 256 GiB, more than any medium).
	MaxFileExtents = 64
)

// Sentinel causes inside a ParseError, for errors.Is.
var (
	ErrNotISO      = errors.New("not an ISO 9660 image (no CD001 volume descriptor at sector 16)")
	ErrTruncated   = errors.New("beyond the end of the image")
	ErrTooLarge    = errors.New("over the cap")
	ErrMalformed   = errors.New("malformed")
	ErrUnsupported = errors.New("unsupported ISO 9660 feature")
)

// ParseError says where in an untrusted image reading stopped and why.
type ParseError struct {
	Offset int64  // byte offset in the image
	Field  string // e.g. "directory record length", "Rock Ridge NM"
	Path   string // the directory or file concerned, when known
	Err    error
}

func (e *ParseError) Error() string {
	where := ""
	if e.Path != "" {
		where = fmt.Sprintf(" (in %q)", e.Path)
	}
	return fmt.Sprintf("iso9660: %s at byte 0x%x%s: %v", e.Field, e.Offset, where, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func errorf(off int64, field string, cause error, format string, a ...any) *ParseError {
	err := cause
	if format != "" {
		err = fmt.Errorf("%w: %s", cause, fmt.Sprintf(format, a...))
	}
	return &ParseError{Offset: off, Field: field, Err: err}
}
