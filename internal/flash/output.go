package flash

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
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

var (
	// Found Winbond flash chip "W25Q128.V" (16384 kB, SPI) on dummy.
	// Found Winbond flash chip "W25Q64.V" (8192 kB, SPI) mapped at physical address 0x00000000ff800000.
	reFound = regexp.MustCompile(`^Found ([^"]{1,64}) flash chip "([^"]{1,64})" \(([0-9]{1,20}) kB, ([A-Za-z0-9,/ ]{1,32})\)(?: on ([^ ]{1,64})\.| mapped at physical address (0x[0-9a-fA-F]{1,16})\.)?`)
	// Multiple flash chip definitions match the detected chip(s): "MX25L6405", "MX25L6405D"
	reMultiple = regexp.MustCompile(`^Multiple flash chip definitions match the detected chip\(s\): (.*)$`)
	reQuoted   = regexp.MustCompile(`"([^"]{1,64})"`)
	// Verifying flash... FAILED at 0x00004000! Expected=0xff, Found=0x00, ...
	reFailedAt = regexp.MustCompile(`FAILED at (0x[0-9a-fA-F]{1,16})`)
	// Error: Image size (8388608 B) doesn't match the expected size (16777216 B)!
	reSize = regexp.MustCompile(`Image size \(([0-9]{1,20}) B\) doesn't match the (?:expected|flash chip's) size \(([0-9]{1,20}) B\)`)
)

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
	if strings.HasPrefix(s, "Found ") {
		if m := reFound.FindStringSubmatch(s); m != nil {
			kb, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil || kb <= 0 || kb > maxChipKB {
				return &OutputError{Line: n, Field: "chip size", Err: fmt.Errorf("%w: %q kB", ErrOutput, m[3])}
			}
			if len(r.Chips) >= maxChips {
				return &OutputError{Line: n, Field: "chips", Err: fmt.Errorf("%w: more than %d chips reported", ErrOutput, maxChips)}
			}
			on := m[5]
			if on == "" {
				on = m[6]
			}
			r.Chips = append(r.Chips, Chip{Vendor: m[1], Name: m[2], Size: kb << 10, Bus: m[4], On: on})
		}
	}
	if m := reMultiple.FindStringSubmatch(s); m != nil {
		for _, q := range reQuoted.FindAllStringSubmatch(m[1], maxChips) {
			r.Ambiguous = append(r.Ambiguous, q[1])
		}
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
	if m := reFailedAt.FindStringSubmatch(s); m != nil {
		at, err := strconv.ParseInt(m[1][2:], 16, 64)
		if err != nil || at < 0 || at > maxChipKB<<10 {
			return &OutputError{Line: n, Field: "failure offset", Err: fmt.Errorf("%w: %q", ErrOutput, m[1])}
		}
		if r.FailedAt < 0 {
			r.FailedAt = at
		}
	}
	if m := reSize.FindStringSubmatch(s); m != nil {
		img, err1 := strconv.ParseInt(m[1], 10, 64)
		exp, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil {
			return &OutputError{Line: n, Field: "image size", Err: fmt.Errorf("%w: %q", ErrOutput, s)}
		}
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
