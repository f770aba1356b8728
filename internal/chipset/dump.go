package chipset

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Dump is a snapshot of the registers glint judges: PCI configuration spaces and the SPI
// register window. A missing PCI function is absent from PCI; an unreadable SPI window is nil.
type Dump struct {
	// Source says where the dump came from ("live", "recorded in QEMU q35 + coreboot 4.15",
	// "synthetic: 7-series datasheet values"), free text on one line.
	Source string
	// PCI maps a bus-0 function ("00:1f.0") to the first ConfigSize bytes of its configuration
	// space.
	PCI map[string][]byte
	// SPIBase is the physical address the SPI window was read from (SPIBAR).
	SPIBase uint32
	// SPI is the first SPIWindow bytes of the SPI register block, or nil.
	SPI []byte
}

// ConfigSize is how much PCI configuration space a dump keeps: the standard header and the
// device-specific registers up to 0xFF, where every register glint reads lives.
const ConfigSize = 256

// Caps for the text format. An honest dump is about 2 KiB: four lines of hex.
const (
	MaxDumpSize  = 64 << 10
	MaxDumpLines = 256
	// maxPCIFunctions bounds the pci lines (glint writes three).
	maxPCIFunctions = 32
	maxSourceLen    = 200
)

const dumpMagic = "glint-chipset-dump 1"

// ErrDumpFormat means a dump file is not in the format Marshal writes.
var ErrDumpFormat = errors.New("malformed")

// ErrDumpTooLarge means a dump exceeds MaxDumpSize or MaxDumpLines.
var ErrDumpTooLarge = errors.New("exceeds limit")

// DumpError says which line of an untrusted dump is wrong and why.
type DumpError struct {
	Line  int    // 1-based line number, 0 for the whole input
	Field string // "magic", "pci", "spi", "source", ...
	Err   error  // ErrDumpFormat or ErrDumpTooLarge, wrapped with details
}

func (e *DumpError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("chipset dump: %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("chipset dump line %d: %s: %v", e.Line, e.Field, e.Err)
}

func (e *DumpError) Unwrap() error { return e.Err }

func dumpErr(line int, field string, base error, format string, a ...any) error {
	return &DumpError{Line: line, Field: field, Err: fmt.Errorf("%w: %s", base, fmt.Sprintf(format, a...))}
}

// Marshal writes d in the text format ParseDump reads: a magic line, then one line per item,
// PCI functions in address order. Hex is lower case.
func (d *Dump) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# glint chipset register dump: PCI config spaces (256 bytes each) and the SPI register window\n")
	b.WriteString(dumpMagic + "\n")
	if d.Source != "" {
		fmt.Fprintf(&b, "source %s\n", d.Source)
	}
	addrs := make([]string, 0, len(d.PCI))
	for a := range d.PCI {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		fmt.Fprintf(&b, "pci %s %s\n", a, hex.EncodeToString(d.PCI[a]))
	}
	if d.SPI != nil {
		fmt.Fprintf(&b, "spi %08x %s\n", d.SPIBase, hex.EncodeToString(d.SPI))
	}
	return b.Bytes()
}

// ParseDump reads a dump written by Marshal (or by hand: '#' starts a comment line, blank
// lines are ignored). Every field is checked; errors are *DumpError.
func ParseDump(untrusted []byte) (*Dump, error) {
	if len(untrusted) > MaxDumpSize {
		return nil, dumpErr(0, "size", ErrDumpTooLarge, "%d bytes, at most %d", len(untrusted), MaxDumpSize)
	}
	d := &Dump{PCI: map[string][]byte{}}
	s := bufio.NewScanner(bytes.NewReader(untrusted))
	s.Buffer(make([]byte, 0, 4096), MaxDumpSize)
	line, sawMagic := 0, false
	for s.Scan() {
		line++
		if line > MaxDumpLines {
			return nil, dumpErr(line, "lines", ErrDumpTooLarge, "more than %d lines", MaxDumpLines)
		}
		text := strings.TrimRight(s.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if !sawMagic {
			if text != dumpMagic {
				return nil, dumpErr(line, "magic", ErrDumpFormat, "want %q first", dumpMagic)
			}
			sawMagic = true
			continue
		}
		key, rest, _ := strings.Cut(text, " ")
		switch key {
		case "source":
			if d.Source != "" {
				return nil, dumpErr(line, "source", ErrDumpFormat, "given twice")
			}
			if len(rest) == 0 || len(rest) > maxSourceLen {
				return nil, dumpErr(line, "source", ErrDumpFormat, "want 1 to %d characters", maxSourceLen)
			}
			for _, r := range rest {
				if r < 0x20 || r == 0x7f {
					return nil, dumpErr(line, "source", ErrDumpFormat, "control character %U", r)
				}
			}
			d.Source = rest
		case "pci":
			addr, hexdata, ok := strings.Cut(rest, " ")
			if !ok || !validPCIAddr(addr) {
				return nil, dumpErr(line, "pci", ErrDumpFormat, "want 'pci BB:DD.F HEX'")
			}
			if _, dup := d.PCI[addr]; dup {
				return nil, dumpErr(line, "pci", ErrDumpFormat, "%s given twice", addr)
			}
			if len(d.PCI) >= maxPCIFunctions {
				return nil, dumpErr(line, "pci", ErrDumpTooLarge, "more than %d functions", maxPCIFunctions)
			}
			cfg, err := decodeHex(hexdata, ConfigSize)
			if err != nil {
				return nil, dumpErr(line, "pci "+addr, ErrDumpFormat, "%v", err)
			}
			d.PCI[addr] = cfg
		case "spi":
			base, hexdata, ok := strings.Cut(rest, " ")
			if !ok || len(base) != 8 {
				return nil, dumpErr(line, "spi", ErrDumpFormat, "want 'spi ADDR8 HEX'")
			}
			if d.SPI != nil {
				return nil, dumpErr(line, "spi", ErrDumpFormat, "given twice")
			}
			v, err := strconv.ParseUint(base, 16, 32)
			if err != nil {
				return nil, dumpErr(line, "spi", ErrDumpFormat, "address %q is not 8 hex digits", base)
			}
			win, err := decodeHex(hexdata, SPIWindow)
			if err != nil {
				return nil, dumpErr(line, "spi", ErrDumpFormat, "%v", err)
			}
			d.SPIBase, d.SPI = uint32(v), win
		default:
			return nil, dumpErr(line, "keyword", ErrDumpFormat, "unknown keyword %q (want source, pci or spi)", key)
		}
	}
	if err := s.Err(); err != nil {
		return nil, dumpErr(line+1, "line", ErrDumpTooLarge, "%v", err)
	}
	if !sawMagic {
		return nil, dumpErr(0, "magic", ErrDumpFormat, "no %q line", dumpMagic)
	}
	return d, nil
}

// decodeHex decodes exactly n bytes of lower- or upper-case hex, checking the length first.
func decodeHex(s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, fmt.Errorf("%d hex digits, want %d (%d bytes)", len(s), 2*n, n)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %v", err)
	}
	return b, nil
}

// validPCIAddr accepts bus-0-style "BB:DD.F" with hex bus and device and an octal-range function.
func validPCIAddr(a string) bool {
	if len(a) != 7 || a[2] != ':' || a[5] != '.' {
		return false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if !isLowerHex(a[i]) {
			return false
		}
	}
	if a[6] < '0' || a[6] > '7' {
		return false
	}
	dev, _ := strconv.ParseUint(a[3:5], 16, 8)
	return dev < 32
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
