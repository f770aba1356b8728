package manifest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/tpm"
)

// Format limits. The parser checks every one of them before it allocates, so
// a crafted manifest of a few bytes can never ask for more.
const (
	// FormatVersion is the newest version: 2 adds the machine line, which
	// binds the manifest to one TPM. Marshal writes 2 for a manifest with
	// a Machine and 1 otherwise; Parse reads both.
	FormatVersion = 2
	// MaxEntries bounds the number of file, dir and link lines.
	MaxEntries = 100000
	// MaxPathLen bounds a path or link target (raw bytes, before escaping);
	// it is Linux's PATH_MAX.
	MaxPathLen = 4096
	// MaxEntryIDLen bounds the default boot entry id.
	MaxEntryIDLen = 4096
	// MaxLineLen bounds one line: "link " + two fully escaped 4096-byte
	// strings + separators, with room to spare.
	MaxLineLen = 5 + 2*4*MaxPathLen + 16
	// MaxManifestSize bounds the whole manifest file.
	MaxManifestSize = 64 << 20
)

const header = "glint-manifest"

// Kind is what a manifest entry describes.
type Kind uint8

const (
	KindFile Kind = iota + 1 // regular file: SHA-256 and size
	KindDir                  // directory (so added or removed directories are seen)
	KindLink                 // symbolic link: its target string, never followed
	// KindSpecial is a device node, FIFO or socket found while verifying.
	// It never appears in a manifest (signing refuses such files).
	KindSpecial
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "directory"
	case KindLink:
		return "symlink"
	case KindSpecial:
		return "device, FIFO or socket"
	}
	return "unknown"
}

// Entry is one path under /boot.
type Entry struct {
	Kind   Kind
	Path   string // relative to /boot, '/'-separated, no "." or ".." parts
	Size   int64  // KindFile only
	SHA256 [32]byte
	Target string // KindLink only: the link's content as readlink returns it
}

// Manifest is the signed description of /boot (format: docs/manifest.md).
type Manifest struct {
	// CounterIndex is the TPM NV index of the rollback counter and Counter
	// the value it held when this manifest was signed.
	CounterIndex uint32
	Counter      uint64
	// Machine is the identity of the TPM this manifest was signed for
	// (tpm.Identity; format version 2). nil: unbound (version 1), valid on
	// any machine whose counter has the value.
	Machine *tpm.Identity
	// Default is the default boot entry id (opaque, from internal/bootcfg);
	// empty means none.
	Default string
	// Created is informational only; the counter, not the clock, orders
	// manifests.
	Created time.Time
	// Entries are sorted by Path (byte order), without duplicates.
	Entries []Entry
	// Kept holds the bytes of the files BuildOptions.Keep selected, exactly
	// as hashed (Build only; never marshalled).
	Kept map[string][]byte
}

// ParseError is a malformed manifest: which line, which field, what is wrong.
type ParseError struct {
	Line  int // 1-based; 0 for whole-file problems
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("manifest: %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("manifest line %d: %s: %v", e.Line, e.Field, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrTooLarge is wrapped by a ParseError when a cap is exceeded.
var ErrTooLarge = errors.New("over the format limit")

func perrorf(line int, field, format string, a ...any) error {
	return &ParseError{Line: line, Field: field, Err: fmt.Errorf(format, a...)}
}

// Marshal returns the canonical text of m. Signing and verifying both work
// on these exact bytes; Parse accepts only canonical text, so one manifest
// has exactly one encoding.
func (m *Manifest) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(m.Entries)*120)
	version := 1
	if m.Machine != nil {
		version = 2
	}
	fmt.Fprintf(&b, "%s %d\n", header, version)
	fmt.Fprintf(&b, "counter 0x%08x %d\n", m.CounterIndex, m.Counter)
	if m.Machine != nil {
		fmt.Fprintf(&b, "machine %s\n", m.Machine)
	}
	if m.Default != "" {
		b.WriteString("default ")
		b.WriteString(escape(m.Default))
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "created %s\n", m.Created.UTC().Format(time.RFC3339))
	for _, e := range m.Entries {
		switch e.Kind {
		case KindFile:
			fmt.Fprintf(&b, "file %s %d %s\n", hex.EncodeToString(e.SHA256[:]), e.Size, escape(e.Path))
		case KindDir:
			fmt.Fprintf(&b, "dir %s\n", escape(e.Path))
		case KindLink:
			fmt.Fprintf(&b, "link %s %s\n", escape(e.Target), escape(e.Path))
		}
	}
	return b.Bytes()
}

// Parse reads a manifest. The bytes are untrusted until their signature has
// been checked, and even then the parser assumes nothing about them.
func Parse(untrusted []byte) (*Manifest, error) {
	if len(untrusted) > MaxManifestSize {
		return nil, perrorf(0, "size", "%d bytes: %w (max %d)", len(untrusted), ErrTooLarge, MaxManifestSize)
	}
	if len(untrusted) == 0 {
		return nil, perrorf(0, "size", "empty file")
	}
	if untrusted[len(untrusted)-1] != '\n' {
		return nil, perrorf(0, "end", "last line has no newline (truncated file?)")
	}
	m := &Manifest{}
	rest := untrusted
	lineNo := 0
	next := func() (string, bool) {
		if len(rest) == 0 {
			return "", false
		}
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i]
		rest = rest[i+1:]
		lineNo++
		return string(line), true
	}
	stage := 0 // 0 header, 1 counter, 2 default/created, 3 entries; 4 machine (version 2)
	version := 0
	var prev string
	for {
		line, ok := next()
		if !ok {
			break
		}
		if len(line) > MaxLineLen {
			return nil, perrorf(lineNo, "line", "%d bytes: %w (max %d)", len(line), ErrTooLarge, MaxLineLen)
		}
		fields := strings.Split(line, " ")
		switch stage {
		case 0:
			if len(fields) != 2 || fields[0] != header {
				return nil, perrorf(lineNo, "header", "not a glint manifest (want %q)", header+" 2")
			}
			switch fields[1] {
			case "1", "2":
				version = int(fields[1][0] - '0')
			default:
				return nil, perrorf(lineNo, "version", "unsupported format version %q (this glint reads 1 and %d; update glint)", fields[1], FormatVersion)
			}
			stage = 1
			continue
		case 1:
			if len(fields) != 3 || fields[0] != "counter" {
				return nil, perrorf(lineNo, "counter", "want \"counter 0xINDEX VALUE\"")
			}
			idx, err := parseIndex(fields[1])
			if err != nil {
				return nil, perrorf(lineNo, "counter index", "%w", err)
			}
			v, err := parseDecimal(fields[2], 64)
			if err != nil {
				return nil, perrorf(lineNo, "counter value", "%w", err)
			}
			m.CounterIndex, m.Counter = idx, v
			stage = 2
			if version == 2 {
				stage = 4
			}
			continue
		case 4:
			if len(fields) != 2 || fields[0] != "machine" {
				return nil, perrorf(lineNo, "machine", "want \"machine KIND:HEX\" (format version 2)")
			}
			id, err := tpm.ParseIdentity(fields[1])
			if err != nil {
				return nil, perrorf(lineNo, "machine", "%w", err)
			}
			m.Machine = id
			stage = 2
			continue
		case 2:
			if fields[0] == "default" && m.Default == "" {
				if len(fields) != 2 {
					return nil, perrorf(lineNo, "default", "want \"default ENTRY-ID\"")
				}
				id, err := unescape(fields[1], MaxEntryIDLen)
				if err != nil || id == "" {
					return nil, perrorf(lineNo, "default", "bad entry id: %w", err)
				}
				m.Default = id
				continue
			}
			if len(fields) != 2 || fields[0] != "created" {
				return nil, perrorf(lineNo, "created", "want \"created RFC3339-TIME\"")
			}
			t, err := time.Parse(time.RFC3339, fields[1])
			if err != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != fields[1] {
				return nil, perrorf(lineNo, "created", "want a UTC RFC 3339 time like 2026-01-02T15:04:05Z")
			}
			m.Created = t
			stage = 3
			continue
		}
		if len(m.Entries) >= MaxEntries {
			return nil, perrorf(lineNo, "entries", "%w: more than %d entries", ErrTooLarge, MaxEntries)
		}
		e, err := parseEntry(fields, lineNo)
		if err != nil {
			return nil, err
		}
		if len(m.Entries) > 0 && e.Path <= prev {
			return nil, perrorf(lineNo, "path", "%q is out of order or repeated (entries are sorted by path)", e.Path)
		}
		if err := checkParent(m.Entries, e.Path); err != nil {
			return nil, perrorf(lineNo, "path", "%w", err)
		}
		prev = e.Path
		m.Entries = append(m.Entries, e)
	}
	if stage < 3 {
		return nil, perrorf(lineNo, "header", "manifest ends before its header is complete (truncated file?)")
	}
	// Belt and braces: every field above is checked for its canonical
	// form, so this only fires if the two halves of this file disagree.
	if !bytes.Equal(m.Marshal(), untrusted) {
		return nil, perrorf(0, "encoding", "not in canonical form")
	}
	return m, nil
}

func parseEntry(fields []string, lineNo int) (Entry, error) {
	var e Entry
	var err error
	switch fields[0] {
	case "file":
		if len(fields) != 4 {
			return e, perrorf(lineNo, "file", "want \"file SHA256 SIZE PATH\"")
		}
		if len(fields[1]) != 64 || strings.ToLower(fields[1]) != fields[1] {
			return e, perrorf(lineNo, "sha256", "want 64 lowercase hex digits")
		}
		if _, err := hex.Decode(e.SHA256[:], []byte(fields[1])); err != nil {
			return e, perrorf(lineNo, "sha256", "%w", err)
		}
		size, err := parseDecimal(fields[2], 63)
		if err != nil {
			return e, perrorf(lineNo, "size", "%w", err)
		}
		e.Kind, e.Size = KindFile, int64(size)
		e.Path, err = parsePath(fields[3])
		if err != nil {
			return e, perrorf(lineNo, "path", "%w", err)
		}
	case "dir":
		if len(fields) != 2 {
			return e, perrorf(lineNo, "dir", "want \"dir PATH\"")
		}
		e.Kind = KindDir
		e.Path, err = parsePath(fields[1])
		if err != nil {
			return e, perrorf(lineNo, "path", "%w", err)
		}
	case "link":
		if len(fields) != 3 {
			return e, perrorf(lineNo, "link", "want \"link TARGET PATH\"")
		}
		e.Kind = KindLink
		e.Target, err = unescape(fields[1], MaxPathLen)
		if err != nil || e.Target == "" {
			return e, perrorf(lineNo, "link target", "bad target: %w", err)
		}
		e.Path, err = parsePath(fields[2])
		if err != nil {
			return e, perrorf(lineNo, "path", "%w", err)
		}
	default:
		return e, perrorf(lineNo, "entry", "unknown line type %.32q (want file, dir or link)", fields[0])
	}
	return e, nil
}

// checkParent insists every entry's parent directory is listed before it
// (sorted order puts "a" before "a/b"), so a manifest cannot describe a file
// inside a file or a directory it never mentions.
func checkParent(entries []Entry, path string) error {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return nil
	}
	parent := path[:i]
	// The parent sorts before path but not necessarily right before it
	// ("a", "a-b", "a/c"), so search.
	lo, hi := 0, len(entries)
	for lo < hi {
		mid := (lo + hi) / 2
		if entries[mid].Path < parent {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(entries) && entries[lo].Path == parent && entries[lo].Kind == KindDir {
		return nil
	}
	return fmt.Errorf("%q is listed but its directory %q is not", path, parent)
}

func parseIndex(s string) (uint32, error) {
	if len(s) != 10 || !strings.HasPrefix(s, "0x") || strings.ToLower(s) != s {
		return 0, errors.New("want 0x and 8 lowercase hex digits")
	}
	v, err := strconv.ParseUint(s[2:], 16, 32)
	if err != nil {
		return 0, errors.New("want 0x and 8 lowercase hex digits")
	}
	return uint32(v), nil
}

// parseDecimal accepts only canonical decimal: no sign, no leading zeros.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%.24q is not a canonical decimal number", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%.24q is not a canonical decimal number", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%.24q is out of range", s)
	}
	return v, nil
}

func parsePath(field string) (string, error) {
	p, err := unescape(field, MaxPathLen)
	if err != nil {
		return "", err
	}
	if err := ValidPath(p); err != nil {
		return "", err
	}
	return p, nil
}

// ValidPath reports whether p is a canonical relative path: not empty, no
// leading or trailing '/', no empty, "." or ".." components, no NUL.
func ValidPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("path of %d bytes: %w (max %d)", len(p), ErrTooLarge, MaxPathLen)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return errors.New("path contains a NUL byte")
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("path %q is not canonical (empty, \".\" or \"..\" component, or leading/trailing /)", p)
		}
	}
	return nil
}

// escape writes bytes outside printable ASCII, space and backslash as \xHH,
// so every path fits in one space-separated field whatever its bytes.
func escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const digits = "0123456789abcdef"
	b := make([]byte, 0, len(s)+3*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b = append(b, '\\', 'x', digits[c>>4], digits[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func needsEscape(c byte) bool { return c <= ' ' || c >= 0x7f || c == '\\' }

// unescape reverses escape and rejects every other spelling (uppercase hex,
// escaped printable bytes, stray backslashes), keeping the encoding unique.
func unescape(s string, maxLen int) (string, error) {
	if s == "" {
		return "", errors.New("empty field")
	}
	if len(s) > 4*maxLen {
		return "", fmt.Errorf("field of %d bytes: %w", len(s), ErrTooLarge)
	}
	if strings.IndexByte(s, '\\') < 0 {
		for i := 0; i < len(s); i++ {
			if needsEscape(s[i]) {
				return "", fmt.Errorf("byte 0x%02x must be written as \\x%02x", s[i], s[i])
			}
		}
		if len(s) > maxLen {
			return "", fmt.Errorf("%d bytes: %w (max %d)", len(s), ErrTooLarge, maxLen)
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			if needsEscape(c) {
				return "", fmt.Errorf("byte 0x%02x must be written as \\x%02x", c, c)
			}
			b = append(b, c)
			continue
		}
		if i+3 >= len(s) {
			return "", errors.New("truncated \\x escape")
		}
		if s[i+1] != 'x' || !isLowerHex(s[i+2]) || !isLowerHex(s[i+3]) {
			return "", errors.New("bad escape (want \\x and two lowercase hex digits)")
		}
		v := unhex(s[i+2])<<4 | unhex(s[i+3])
		if !needsEscape(v) {
			return "", fmt.Errorf("byte %q must not be escaped", v)
		}
		b = append(b, v)
		i += 3
	}
	if len(b) > maxLen {
		return "", fmt.Errorf("%d bytes: %w (max %d)", len(b), ErrTooLarge, maxLen)
	}
	return string(b), nil
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}
