package luks

import (
	"errors"
	"fmt"
)

// Absolute caps. Every length or count a header declares is checked against
// the bytes that remain AND against these before anything is allocated.
const (
	// LUKS2 On-Disk Format Specification (v1.1.x), 2.1: the binary header plus
	// JSON area is one of 16, 32, 64, 128, 256, 512 KiB, 1, 2 or 4 MiB.
	minLUKS2HeaderSize    = 16 << 10
	maxLUKS2HeaderSize    = 4 << 20
	luks2BinaryHeaderSize = 4096
	// maxJSONSize follows from the largest header: 4 MiB minus the binary header.
	maxJSONSize = maxLUKS2HeaderSize - luks2BinaryHeaderSize
	// maxKeyslotsAreaSize is cryptsetup's LUKS2_MAX_KEYSLOTS_SIZE (128 MiB).
	maxKeyslotsAreaSize = 128 << 20
	// LUKS2 has at most 32 keyslots and 32 tokens (LUKS2_KEYSLOTS_MAX,
	// LUKS2_TOKENS_MAX in libcryptsetup). Segments and digests have no
	// spec limit; an honest header has one or two (three during
	// reencryption), so 32 is generous.
	MaxLUKS2Keyslots = 32
	MaxLUKS2Tokens   = 32
	maxSegments      = 32
	maxDigests       = 32
	// maxIDRefs bounds the keyslot/segment references inside one token or digest.
	maxIDRefs = 32
	// LUKS1 On-Disk Format Specification 1.2.3, 2.4: eight keyslots, 4000 AF stripes.
	LUKS1Keyslots = 8
	luks1Stripes  = 4000
	luks1PhdrSize = 592
	// maxLUKS1KeyBytes bounds the master key size (512-bit XTS keys are 64 bytes).
	maxLUKS1KeyBytes = 128
	// maxHeaderArea bounds the region Measure hashes (LUKS2: 2 x 4 MiB + 128 MiB).
	maxHeaderArea = 2*maxLUKS2HeaderSize + maxKeyslotsAreaSize
	// maxTokenBlob bounds a decoded systemd-tpm2 blob (TPM2B_PRIVATE + TPM2B_PUBLIC
	// are each under 1 KiB; newer systemd may add a third object).
	maxTokenBlob = 16 << 10
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotLUKS means the bytes carry no LUKS magic at all.
	ErrNotLUKS = errors.New("not a LUKS device (no LUKS magic)")
	// ErrLUKS1 means a LUKS2-only feature (tokens, slots above 7) was asked of a LUKS1 header.
	ErrLUKS1 = errors.New("this is a LUKS1 header; the feature needs LUKS2 (cryptsetup convert --type luks2 converts it)")
	// ErrTruncated means a declared length runs past the end of the input.
	ErrTruncated = errors.New("truncated")
	// ErrTooLarge means a declared length or count exceeds an absolute cap.
	ErrTooLarge = errors.New("exceeds limit")
	// ErrFormat means a field holds a value the format does not allow.
	ErrFormat = errors.New("malformed")
	// ErrChecksum means a LUKS2 header copy's checksum does not match its bytes.
	ErrChecksum = errors.New("header checksum mismatch")
	// ErrUnsupported means a valid but unsupported value (e.g. an unknown checksum algorithm).
	ErrUnsupported = errors.New("unsupported")
)

// HeaderError says where in an untrusted header parsing stopped and why.
type HeaderError struct {
	Offset int64  // byte offset on the device
	Field  string // e.g. "luks2.hdr_size", "json.keyslots.3.area.offset"
	Err    error  // ErrTruncated, ErrTooLarge, ErrFormat, ErrChecksum, ErrNotLUKS, or an I/O error
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("LUKS header: %s at byte %d: %v", e.Field, e.Offset, e.Err)
}

func (e *HeaderError) Unwrap() error { return e.Err }

func errorf(off int64, field string, err error, format string, a ...any) error {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, a...))
	}
	return &HeaderError{Offset: off, Field: field, Err: err}
}
