package otp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"

	"github.com/glint-boot/glint/internal/safefile"
)

// The HOTP counter file, /boot/glint/hotp-counter, holds the next counter
// value glint will use, authenticated with the HOTP secret:
//
//	glint-hotp-counter v1
//	counter 42
//	mac 5f1c...(64 hex digits)
//
// mac = HMAC-SHA256(secret, "glint-hotp-counter v1\x00" || counter as 8
// bytes big-endian). The package documentation explains what this does
// and does not protect against.

const (
	// CounterFileName is the file's name under /boot/glint.
	CounterFileName = "hotp-counter"
	// maxCounterFile caps what ReadCounter reads: the canonical file is at
	// most 22+29+69 = 120 bytes.
	maxCounterFile = 256
	counterMagic   = "glint-hotp-counter v1"
)

var (
	// ErrNoCounter means there is no counter file: HOTP was never sealed
	// on this /boot (run glint otp seal --hotp).
	ErrNoCounter = errors.New("no HOTP counter file: run glint otp seal --hotp")
	// ErrCounterForged is what a *CounterForgedError matches.
	ErrCounterForged = errors.New("HOTP counter file was not written by glint with this machine's secret")
	// ErrCounterRollback is what a *CounterRollbackError matches.
	ErrCounterRollback = errors.New("HOTP counter went backwards")
)

// CounterRecord is the parsed content of a counter file. Counter is
// untrusted until Verify succeeds.
type CounterRecord struct {
	Counter uint64
	MAC     [sha256.Size]byte
}

func counterMAC(secret []byte, counter uint64) [sha256.Size]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(counterMagic))
	m.Write([]byte{0})
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// NewCounterRecord authenticates counter with the HOTP secret.
func NewCounterRecord(secret []byte, counter uint64) CounterRecord {
	return CounterRecord{Counter: counter, MAC: counterMAC(secret, counter)}
}

// Marshal writes the record in the file format.
func (r CounterRecord) Marshal() []byte {
	return fmt.Appendf(nil, "%s\ncounter %d\nmac %s\n", counterMagic, r.Counter, hex.EncodeToString(r.MAC[:]))
}

// CounterForgedError says the file's MAC does not match: someone without
// the unsealed secret wrote it, or it was damaged.
type CounterForgedError struct {
	Path    string
	Claimed uint64
}

func (e *CounterForgedError) Error() string {
	return fmt.Sprintf("%s says the next HOTP counter is %d, but its MAC does not match this machine's secret: "+
		"the file was changed by something other than glint (or damaged). If you did not edit it, treat /boot as tampered; "+
		"glint otp seal --hotp starts a new counter", e.Path, e.Claimed)
}

func (e *CounterForgedError) Unwrap() error { return ErrCounterForged }

// CounterRollbackError says a counter is lower than one known to be used.
type CounterRollbackError struct {
	Path  string
	Found uint64 // what the file says (or what a caller tried to write)
	Floor uint64 // the lowest value still unused
	Write bool   // true: refused to write Found over a higher counter
}

func (e *CounterRollbackError) Error() string {
	if e.Write {
		return fmt.Sprintf("refusing to lower the HOTP counter in %s from %d to %d: codes up to %d were already computed",
			e.Path, e.Floor, e.Found, e.Floor-1)
	}
	return fmt.Sprintf("%s says the next HOTP counter is %d, but counters up to %d were already used: "+
		"the file was restored from an older copy of /boot. Codes for the old counters may have been recorded; "+
		"treat /boot as tampered", e.Path, e.Found, e.Floor-1)
}

func (e *CounterRollbackError) Unwrap() error { return ErrCounterRollback }

func counterErrorf(off int, field, format string, args ...any) error {
	return &ParseError{Input: "HOTP counter file", Offset: int64(off), Field: field, Err: fmt.Errorf(format, args...)}
}

// ParseCounterFile reads the file format. It accepts only the exact form
// Marshal writes (decimal without leading zeros, lower-case hex, one
// newline after each line), so a file has one meaning and one spelling.
// It does not check the MAC: call Verify.
func ParseCounterFile(untrusted []byte) (CounterRecord, error) {
	var r CounterRecord
	if len(untrusted) > maxCounterFile {
		return r, counterErrorf(maxCounterFile, "length", "file is %d bytes; a counter file is at most %d", len(untrusted), maxCounterFile)
	}
	pos := 0
	line := func(field string) (string, error) {
		i := bytes.IndexByte(untrusted[pos:], '\n')
		if i < 0 {
			return "", counterErrorf(pos, field, "line does not end with a newline")
		}
		l := string(untrusted[pos : pos+i])
		pos += i + 1
		return l, nil
	}
	l, err := line("header")
	if err != nil {
		return r, err
	}
	if l != counterMagic {
		return r, counterErrorf(0, "header", "want %q, got %q", counterMagic, l)
	}
	start := pos
	l, err = line("counter")
	if err != nil {
		return r, err
	}
	v, ok := bytes.CutPrefix([]byte(l), []byte("counter "))
	if !ok {
		return r, counterErrorf(start, "counter", "want \"counter N\", got %q", l)
	}
	if len(v) == 0 || len(v) > 20 || (v[0] == '0' && len(v) > 1) {
		return r, counterErrorf(start+8, "counter", "not a decimal number without leading zeros: %q", v)
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return r, counterErrorf(start+8, "counter", "not a decimal number: %q", v)
		}
	}
	r.Counter, err = strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return r, counterErrorf(start+8, "counter", "does not fit in 64 bits: %q", v)
	}
	start = pos
	l, err = line("mac")
	if err != nil {
		return r, err
	}
	m, ok := bytes.CutPrefix([]byte(l), []byte("mac "))
	if !ok || len(m) != 2*sha256.Size {
		return r, counterErrorf(start, "mac", "want \"mac\" and 64 hex digits, got %q", l)
	}
	for _, c := range m {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return r, counterErrorf(start+4, "mac", "not lower-case hex: %q", m)
		}
	}
	if _, err := hex.Decode(r.MAC[:], m); err != nil {
		return r, counterErrorf(start+4, "mac", "%v", err)
	}
	if pos != len(untrusted) {
		return r, counterErrorf(pos, "trailer", "%d unexpected bytes after the mac line", len(untrusted)-pos)
	}
	return r, nil
}

// Verify checks the MAC with the unsealed secret, in constant time.
func (r CounterRecord) Verify(secret []byte) bool {
	want := counterMAC(secret, r.Counter)
	return hmac.Equal(want[:], r.MAC[:])
}

func readCounterRecord(path string) (CounterRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return CounterRecord{}, fmt.Errorf("%s: %w", path, ErrNoCounter)
		}
		return CounterRecord{}, fmt.Errorf("read HOTP counter: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxCounterFile+1))
	if err != nil {
		return CounterRecord{}, fmt.Errorf("read HOTP counter %s: %w", path, err)
	}
	r, err := ParseCounterFile(raw)
	if err != nil {
		return CounterRecord{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ReadCounter returns the next unused HOTP counter from the file at path,
// after checking its MAC with secret and that it is not below floor. floor
// is the lowest counter a tamper-proof source says is unused (a TPM
// monotonic counter, if the caller keeps one; 0 if not).
func ReadCounter(path string, secret []byte, floor uint64) (uint64, error) {
	r, err := readCounterRecord(path)
	if err != nil {
		return 0, err
	}
	if !r.Verify(secret) {
		return 0, &CounterForgedError{Path: path, Claimed: r.Counter}
	}
	if r.Counter < floor {
		return 0, &CounterRollbackError{Path: path, Found: r.Counter, Floor: floor}
	}
	return r.Counter, nil
}

// WriteCounter atomically replaces the file with next (the next unused
// counter). It refuses to lower a counter the file already holds under the
// same secret; a file that does not verify (a new secret after re-sealing,
// or a forged file the caller has already reported) is replaced.
func WriteCounter(path string, secret []byte, next uint64) error {
	if old, err := readCounterRecord(path); err == nil && old.Verify(secret) && old.Counter > next {
		return &CounterRollbackError{Path: path, Found: next, Floor: old.Counter, Write: true}
	}
	return safefile.Write(path, NewCounterRecord(secret, next).Marshal(), 0o644)
}

// ReserveCounter returns the counter to compute the next HOTP code with,
// and first advances the file past it. The order matters: if power fails
// after the code was sent, the counter is already used up, so every code
// glint ever computes has its own counter and the dongle's look-ahead
// offset (see CheckVerifyOffset) counts codes it never saw.
func ReserveCounter(path string, secret []byte, floor uint64) (uint64, error) {
	c, err := ReadCounter(path, secret, floor)
	if err != nil {
		return 0, err
	}
	if c == math.MaxUint64 {
		return 0, fmt.Errorf("%s: HOTP counter exhausted at 2^64-1: run glint otp seal --hotp", path)
	}
	if err := WriteCounter(path, secret, c+1); err != nil {
		return 0, fmt.Errorf("advance HOTP counter: %w", err)
	}
	return c, nil
}

// SkippedCodesError says the dongle accepted a code ahead of its own
// counter: glint computed codes the dongle never verified.
type SkippedCodesError struct{ Skipped int }

func (e *SkippedCodesError) Error() string {
	return fmt.Sprintf("the dongle accepted the code, %d counts ahead of its own counter: this machine computed %d HOTP code(s) "+
		"that the dongle never checked. That is expected after booting without the dongle or a failed USB transfer; "+
		"otherwise something posing as the dongle may have recorded codes, which would let a tampered firmware "+
		"pass the next check. Re-seal (glint otp seal --hotp) to make any recorded codes useless", e.Skipped, e.Skipped)
}

// CheckVerifyOffset interprets the look-ahead offset a dongle reports for
// an accepted code (Nitrokey VERIFY_OTP_CODE payload byte 1): 0 means the
// dongle and the file agree; k > 0 returns a *SkippedCodesError.
func CheckVerifyOffset(offset int) error {
	if offset > 0 {
		return &SkippedCodesError{Skipped: offset}
	}
	return nil
}
