package pcr

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/tpm"
)

// PCR values as text, from two places outside the TPM:
//
//   - Linux's sysfs, one file per PCR and bank holding its value in hex
//     (/sys/class/tpm/tpm0/pcr-sha256/7, Linux 5.12 and later):
//     ReadSysfs; a TPM 1.2's driver instead lists every SHA-1 PCR in one
//     pcrs file ("PCR-00: 3A 3F ..."): ReadSysfs12, ParseSysfs12;
//   - "BANK INDEX HEX" lines, one value each, as testdata/record.sh saves
//     them from a guest and `glint eventlog replay --pcrs FILE` compares
//     against: ParseValues.
//
// Both are untrusted text (a file anyone may have written, a kernel
// interface under an attacker's OS): sizes are capped and every value must
// be hex of its bank's digest size.

// Values are PCR values by bank and index.
type Values map[tpm.Alg]map[int][]byte

// Caps for PCR text.
const (
	// MaxValuesSize bounds a "BANK INDEX HEX" file: 24 PCRs in 4 banks of
	// 64-byte digests are under 14 KiB.
	MaxValuesSize = 1 << 20
	// MaxIndex is the highest PCR index accepted (PC Client TPMs have 24;
	// the TCG registry allows 32).
	MaxIndex = 31
	// maxSysfsValue bounds one sysfs PCR file: 128 hex digits and a newline.
	maxSysfsValue = 2*64 + 1
	// MaxSysfs12Size bounds a TPM 1.2 pcrs file: 24 lines of 69 bytes.
	MaxSysfs12Size = 8 << 10
)

// ParseError says which line of PCR text is wrong, and why.
type ParseError struct {
	Source string // a file name, or "" for bytes given directly
	Line   int    // 1-based; 0 for the whole input
	Err    error
}

func (e *ParseError) Error() string {
	src := e.Source
	if src == "" {
		src = "PCR values"
	}
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", src, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", src, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ParseValues reads "BANK INDEX HEX" lines: a bank name tpm.ParseAlg
// knows, a PCR index 0..MaxIndex, the value as hex of the bank's digest
// size. Blank lines and lines starting with '#' are skipped; a PCR given
// twice in one bank is an error.
func ParseValues(untrusted []byte) (Values, error) {
	if len(untrusted) > MaxValuesSize {
		return nil, &ParseError{Err: fmt.Errorf("%d bytes, more than %d", len(untrusted), MaxValuesSize)}
	}
	out := Values{}
	s := bufio.NewScanner(bytes.NewReader(untrusted))
	s.Buffer(make([]byte, 0, 256), MaxValuesSize)
	for n := 1; s.Scan(); n++ {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 3 {
			return nil, &ParseError{Line: n, Err: errors.New("want BANK INDEX HEX")}
		}
		bank, err := tpm.ParseAlg(fields[0])
		if err != nil {
			return nil, &ParseError{Line: n, Err: err}
		}
		i, err := strconv.Atoi(fields[1])
		if err != nil || i < 0 || i > MaxIndex {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("bad PCR index %.20q", fields[1])}
		}
		v, err := parseHexValue(bank, fields[2])
		if err != nil {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("PCR %d: %w", i, err)}
		}
		if out[bank] == nil {
			out[bank] = map[int][]byte{}
		}
		if _, dup := out[bank][i]; dup {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("%s PCR %d given twice", bank, i)}
		}
		out[bank][i] = v
	}
	if err := s.Err(); err != nil {
		return nil, &ParseError{Err: err}
	}
	return out, nil
}

// parseHexValue decodes one value of bank (upper or lower case hex).
func parseHexValue(bank tpm.Alg, text string) ([]byte, error) {
	size := bank.Size()
	if size == 0 {
		return nil, fmt.Errorf("bank %s has no known digest size", bank)
	}
	if len(text) != 2*size {
		return nil, fmt.Errorf("%d hex digits, a %s value has %d", len(text), bank, 2*size)
	}
	return hex.DecodeString(text)
}

// ReadSysfs reads PCRs idx of bank from the files Linux exposes under
// tpmDir (normally /sys/class/tpm/tpm0): pcr-BANK/INDEX.
func ReadSysfs(tpmDir string, bank tpm.Alg, idx []int) (map[int][]byte, error) {
	dir := filepath.Join(tpmDir, "pcr-"+bank.String())
	out := map[int][]byte{}
	for _, i := range idx {
		p := filepath.Join(dir, strconv.Itoa(i))
		raw, err := safefile.ReadCapped(p, maxSysfsValue)
		if err != nil {
			return nil, err
		}
		v, err := parseHexValue(bank, strings.TrimSpace(string(raw)))
		if err != nil {
			return nil, &ParseError{Source: p, Err: err}
		}
		out[i] = v
	}
	return out, nil
}

// ReadSysfs12 reads PCRs idx from a TPM 1.2's pcrs file under tpmDir
// (pcrs, or device/pcrs on kernels before 4.x moved it).
func ReadSysfs12(tpmDir string, idx []int) (map[int][]byte, error) {
	var firstErr error
	for _, name := range []string{"pcrs", "device/pcrs"} {
		p := filepath.Join(tpmDir, name)
		raw, err := safefile.ReadCapped(p, MaxSysfs12Size)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		v, err := ParseSysfs12(raw, idx)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Source = p
			}
		}
		return v, err
	}
	return nil, fmt.Errorf("the kernel shows no TPM 1.2 pcrs file: %w", firstErr)
}

// ParseSysfs12 reads the TPM 1.2 driver's pcrs file (drivers/char/tpm/
// tpm-sysfs.c pcrs_show: "PCR-NN: XX XX ..." with 20 hex bytes) and returns
// PCRs idx, each of which must be present exactly once.
func ParseSysfs12(untrusted []byte, idx []int) (map[int][]byte, error) {
	if len(untrusted) > MaxSysfs12Size {
		return nil, &ParseError{Err: fmt.Errorf("%d bytes, over the %d a pcrs file can hold", len(untrusted), MaxSysfs12Size)}
	}
	want := map[int]bool{}
	for _, i := range idx {
		want[i] = true
	}
	out := map[int][]byte{}
	s := bufio.NewScanner(bytes.NewReader(untrusted))
	for n := 1; s.Scan(); n++ {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || !strings.HasPrefix(name, "PCR-") {
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(name, "PCR-"))
		if err != nil || !want[i] {
			continue
		}
		if _, dup := out[i]; dup {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("PCR-%02d given twice", i)}
		}
		v, err := parseHexValue(tpm.SHA1, strings.ReplaceAll(strings.TrimSpace(rest), " ", ""))
		if err != nil {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("PCR-%02d: %w", i, err)}
		}
		out[i] = v
	}
	if err := s.Err(); err != nil {
		return nil, &ParseError{Err: err}
	}
	if len(out) != len(want) {
		return nil, &ParseError{Err: fmt.Errorf("found %d of the %d PCRs asked for", len(out), len(want))}
	}
	return out, nil
}
