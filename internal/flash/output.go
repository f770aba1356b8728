package flash

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// What flashrom prints is untrusted text: it comes from another program
// (possibly replaced on a compromised workstation) and echoes chip names
// read from a database and file names given by the user. The parser below
// only looks for the few sentences glint acts on, bounds everything, and
// never lets the exit status be overruled by text: a zero exit with
// "FAILED" in the output is a failure, a non-zero exit is a failure
// whatever the text says.
//
// Sentences are those of flashrom 1.3 (Debian 12's package); older and
// newer releases print the same ones for the operations glint uses
// (cli_classic.c, flashrom.c, print.c).

// Caps on flashrom's output. Without -V, a probe, read, write or verify
// prints a few kilobytes; the cap leaves room for verbose runs and stops a
// misbehaving program from filling memory.
const (
	// MaxOutput is the most output kept from one flashrom run.
	MaxOutput = 4 << 20
	// maxLine bounds one line; flashrom's longest lines (the list of
	// matching chip definitions) are a few hundred bytes.
	maxLine = 64 << 10
	// maxChips bounds the chips a probe may report; a bus has one or two.
	maxChips = 16
	// maxChipKB is 4 GiB of flash in kB: anything larger is not a chip
	// flashrom could have found.
	maxChipKB = 4 << 20
)

// OutputError says where flashrom's output did not make sense.
type OutputError struct {
	Line  int // 1-based line number
	Field string
	Err   error
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("flashrom output line %d: %s: %v", e.Line, e.Field, e.Err)
}

func (e *OutputError) Unwrap() error { return e.Err }

// ErrOutput is wrapped by every OutputError.
var ErrOutput = errors.New("unexpected flashrom output")

// Chip is one flash chip a probe found.
type Chip struct {
	Vendor string // "Winbond"
	Name   string // "W25Q128.V"
	Size   int64  // bytes
	Bus    string // "SPI"
	On     string // programmer or mapping, as printed ("dummy", "internal", ...)
}

func (c Chip) String() string {
	return fmt.Sprintf("%s %s (%d KiB, %s)", c.Vendor, c.Name, c.Size>>10, c.Bus)
}

// Report is what glint understood of one flashrom run.
type Report struct {
	Chips []Chip
	// Ambiguous lists the chip definitions flashrom could not choose
	// between ("Multiple flash chip definitions match"); -c picks one.
	Ambiguous []string
	NoChip    bool // "No EEPROM/flash device found."
	Verified  bool // "VERIFIED."
	// Identical: the chip already held the image, nothing was written.
	Identical bool
	// VerifyFailed and FailedAt: "Verifying flash... FAILED at 0x...".
	VerifyFailed bool
	FailedAt     int64 // -1 when flashrom did not say where
	// Failed collects lines that report a failure (FAILED, Error, unknown
	// state, size mismatch), sanitised, for the message to the owner.
	Failed []string
	// SizeMismatch is set from "Image size (N B) doesn't match the
	// expected size (M B)".
	SizeMismatch   bool
	ImageSize      int64
	ExpectedSize   int64
	UnknownState   bool // "Your flash chip is in an unknown state."
	WriteProtected bool // a protected range or a locked region refused the write
}

// The sentences are matched by hand rather than with package regexp: this
// code runs in the firmware's initramfs too, where regexp's tables would
// cost a few hundred KiB of flash.

// parseFound reads
//
//	Found Winbond flash chip "W25Q128.V" (16384 kB, SPI) on dummy.
//	Found Winbond flash chip "W25Q64.V" (8192 kB, SPI) mapped at physical address 0x00000000ff800000.
//
// ok is false for lines that are not such a sentence; err is set for one
// whose numbers are out of range.
func parseFound(s string) (c Chip, ok bool, err error) {
	rest, found := strings.CutPrefix(s, "Found ")
	if !found {
		return Chip{}, false, nil
	}
	vendor, rest, found := strings.Cut(rest, ` flash chip "`)
	if !found || vendor == "" || len(vendor) > 64 || strings.Contains(vendor, `"`) {
		return Chip{}, false, nil
	}
	name, rest, found := strings.Cut(rest, `" (`)
	if !found || name == "" || len(name) > 64 || strings.Contains(name, `"`) {
		return Chip{}, false, nil
	}
	num, rest, found := strings.Cut(rest, " kB, ")
	if !found || num == "" || len(num) > 20 || strings.Trim(num, "0123456789") != "" {
		return Chip{}, false, nil
	}
	bus, rest, found := strings.Cut(rest, ")")
	if !found || bus == "" || len(bus) > 32 {
		return Chip{}, false, nil
	}
	kb, perr := strconv.ParseInt(num, 10, 64)
	if perr != nil || kb <= 0 || kb > maxChipKB {
		return Chip{}, true, fmt.Errorf("%w: %q kB", ErrOutput, num)
	}
	c = Chip{Vendor: vendor, Name: name, Size: kb << 10, Bus: bus}
	switch {
	case strings.HasPrefix(rest, " on "):
		c.On, _, _ = strings.Cut(strings.TrimPrefix(rest, " on "), " ")
		c.On = strings.TrimSuffix(c.On, ".")
	case strings.HasPrefix(rest, " mapped at physical address "):
		c.On, _, _ = strings.Cut(strings.TrimPrefix(rest, " mapped at physical address "), " ")
		c.On = strings.TrimSuffix(c.On, ".")
	}
	if len(c.On) > 64 {
		c.On = c.On[:64]
	}
	return c, true, nil
}

// quoted returns the "..." strings of s (at most max, each 1..64 bytes).
func quoted(s string, max int) []string {
	var out []string
	for len(out) < max {
		_, rest, ok := strings.Cut(s, `"`)
		if !ok {
			break
		}
		q, after, ok := strings.Cut(rest, `"`)
		if !ok {
			break
		}
		if q != "" && len(q) <= 64 {
			out = append(out, q)
		}
		s = after
	}
	return out
}

// hexAfter parses the hexadecimal number after marker ("FAILED at 0x").
func hexAfter(s, marker string) (int64, bool, error) {
	_, rest, ok := strings.Cut(s, marker)
	if !ok {
		return 0, false, nil
	}
	n := 0
	for n < len(rest) && n < 17 && strings.IndexByte("0123456789abcdefABCDEF", rest[n]) >= 0 {
		n++
	}
	if n == 0 {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(rest[:n], 16, 64)
	if err != nil || n > 16 || v > maxChipKB<<10 {
		return 0, true, fmt.Errorf("%w: %q", ErrOutput, rest[:n])
	}
	return int64(v), true, nil
}

// parseSizeMismatch reads "Image size (N B) doesn't match the expected
// size (M B)" (or "... the flash chip's size (M B)").
func parseSizeMismatch(s string) (img, exp int64, ok bool) {
	_, rest, found := strings.Cut(s, "Image size (")
	if !found {
		return 0, 0, false
	}
	a, rest, found := strings.Cut(rest, " B) doesn't match the ")
	if !found {
		return 0, 0, false
	}
	_, rest, found = strings.Cut(rest, "size (")
	if !found {
		return 0, 0, false
	}
	b, _, found := strings.Cut(rest, " B)")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || x < 0 || y < 0 {
		return 0, 0, false
	}
	return x, y, true
}

// ParseOutput reads flashrom's combined output. It fails only on output
// that contradicts itself or exceeds the caps; sentences it does not know
// are ignored.
func ParseOutput(untrusted []byte) (*Report, error) {
	if len(untrusted) > MaxOutput {
		return nil, &OutputError{Line: 0, Field: "size", Err: fmt.Errorf("%w: %d bytes, more than the %d kept", ErrOutput, len(untrusted), MaxOutput)}
	}
	r := &Report{FailedAt: -1}
	lineNo := 0
	for len(untrusted) > 0 {
		var line []byte
		if i := bytes.IndexByte(untrusted, '\n'); i >= 0 {
			line, untrusted = untrusted[:i], untrusted[i+1:]
		} else {
			line, untrusted = untrusted, nil
		}
		lineNo++
		if len(line) > maxLine {
			return nil, &OutputError{Line: lineNo, Field: "line", Err: fmt.Errorf("%w: %d bytes long", ErrOutput, len(line))}
		}
		if err := r.line(lineNo, printable(string(bytes.TrimRight(line, "\r")))); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Report) line(n int, s string) error {
	// flashrom prints progress on one line ("Reading old flash chip
	// contents... done. Erasing and writing flash chip... "), so each
	// sentence is looked for anywhere on the line.
	c, ok, err := parseFound(s)
	if err != nil {
		return &OutputError{Line: n, Field: "chip size", Err: err}
	}
	if ok {
		if len(r.Chips) >= maxChips {
			return &OutputError{Line: n, Field: "chips", Err: fmt.Errorf("%w: more than %d chips reported", ErrOutput, maxChips)}
		}
		r.Chips = append(r.Chips, c)
	}
	if rest, ok := strings.CutPrefix(s, "Multiple flash chip definitions match the detected chip(s): "); ok {
		r.Ambiguous = append(r.Ambiguous, quoted(rest, maxChips)...)
	}
	if strings.Contains(s, "No EEPROM/flash device found") {
		r.NoChip = true
	}
	if strings.Contains(s, "VERIFIED.") {
		r.Verified = true
	}
	if strings.Contains(s, "Chip content is identical to the requested image") {
		r.Identical = true
	}
	if strings.Contains(s, "Verifying flash... FAILED") || strings.Contains(s, "Verifying flash...FAILED") {
		r.VerifyFailed = true
	}
	if at, ok, err := hexAfter(s, "FAILED at 0x"); err != nil {
		return &OutputError{Line: n, Field: "failure offset", Err: err}
	} else if ok && r.FailedAt < 0 {
		r.FailedAt = at
	}
	if img, exp, ok := parseSizeMismatch(s); ok {
		r.SizeMismatch, r.ImageSize, r.ExpectedSize = true, img, exp
	}
	if strings.Contains(s, "Your flash chip is in an unknown state") {
		r.UnknownState = true
	}
	lower := strings.ToLower(s)
	if strings.Contains(lower, "write protect") && (strings.Contains(lower, "enabled") || strings.Contains(lower, "protected")) ||
		strings.Contains(s, "is read-only") || strings.Contains(s, "denied") && strings.Contains(lower, "region") {
		r.WriteProtected = true
	}
	if strings.Contains(s, "FAILED") || strings.HasPrefix(s, "Error") || strings.Contains(s, "ERROR") ||
		strings.Contains(s, "unknown state") || r.SizeMismatch && strings.Contains(s, "Image size") {
		if len(r.Failed) < 32 {
			r.Failed = append(r.Failed, truncate(s, 300))
		}
	}
	return nil
}

// printable replaces control bytes and non-ASCII so that a crafted chip
// name or echoed file name cannot drive the owner's terminal.
func printable(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\t' {
			c = ' '
		}
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
