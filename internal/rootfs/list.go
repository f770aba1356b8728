package rootfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/manifest"
)

// Format limits. A desktop root has 200,000-1,000,000 entries under usr;
// the parser checks each cap before it allocates.
const (
	// FormatVersion is the only version written and read.
	FormatVersion = 1
	// MaxEntries bounds the entries of a list.
	MaxEntries = 1 << 22
	// MaxListSize bounds the list file (4M entries of ~150 bytes).
	MaxListSize = 1 << 30
	// MaxDirs bounds the directories a list covers.
	MaxDirs = 64
	// MaxLineLen bounds one line: a link with two fully escaped paths.
	MaxLineLen = 8*manifest.MaxPathLen + 256
)

const header = "glint-rootfs"

// Entry is one path under a listed directory. Files, directories and
// special files carry their permission bits and owner (a binary that
// gains the set-user-ID bit and root ownership is a change, with the same
// bytes). Files also carry the inode, modification and change times they
// had when the list was made, so the opt-in fast check can skip files whose
// metadata did not move; those three are not compared.
type Entry struct {
	manifest.Entry
	Mode     uint32 // st_mode: permission bits, plus the type for KindSpecial
	UID, GID uint32
	Ino      uint64
	Mtime    int64 // nanoseconds since the epoch
	Ctime    int64
}

// List is the owner-signed description of a root file system's directories.
type List struct {
	// Dirs are the top-level directories covered, relative to the root
	// ("bin", "usr"), sorted.
	Dirs []string
	// Entries are sorted by path (byte order), without duplicates; each
	// Dirs element is itself an entry (a dir, or a link on merged-/usr
	// systems where bin -> usr/bin).
	Entries []Entry
}

// ParseError is a malformed list: which line and what is wrong.
type ParseError struct {
	Line  int
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("rootfs list line %d: %s: %v", e.Line, e.Field, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrTooLarge is wrapped by a ParseError when a cap is exceeded.
var ErrTooLarge = errors.New("over the format limit")

func perr(line int, field, format string, a ...any) error {
	return &ParseError{Line: line, Field: field, Err: fmt.Errorf(format, a...)}
}

// Marshal returns the list's canonical text:
//
//	glint-rootfs 1
//	dirs bin boot lib sbin usr
//	file SHA256 SIZE MODE UID GID INO MTIME CTIME PATH
//	dir MODE UID GID PATH
//	link TARGET PATH
//	special MODE UID GID PATH         (device node, FIFO or socket)
//
// MODE is octal.
//
// Paths and targets are escaped as in the /boot manifest (docs/manifest.md).
func (l *List) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(l.Entries)*140)
	fmt.Fprintf(&b, "%s %d\ndirs %s\n", header, FormatVersion, strings.Join(l.Dirs, " "))
	for _, e := range l.Entries {
		p := manifest.EscapePath(e.Path)
		switch e.Kind {
		case manifest.KindFile:
			fmt.Fprintf(&b, "file %s %d %o %d %d %d %d %d %s\n", hex.EncodeToString(e.SHA256[:]), e.Size, e.Mode, e.UID, e.GID, e.Ino, e.Mtime, e.Ctime, p)
		case manifest.KindDir:
			fmt.Fprintf(&b, "dir %o %d %d %s\n", e.Mode, e.UID, e.GID, p)
		case manifest.KindLink:
			fmt.Fprintf(&b, "link %s %s\n", manifest.EscapePath(e.Target), p)
		case manifest.KindSpecial:
			fmt.Fprintf(&b, "special %o %d %d %s\n", e.Mode, e.UID, e.GID, p)
		}
	}
	return b.Bytes()
}

// Parse reads a list. Its bytes are verified as part of the signed /boot
// manifest before they get here, and the parser still assumes nothing.
func Parse(untrusted []byte) (*List, error) {
	if len(untrusted) > MaxListSize {
		return nil, perr(0, "size", "%d bytes: %w (max %d)", len(untrusted), ErrTooLarge, MaxListSize)
	}
	if len(untrusted) == 0 || untrusted[len(untrusted)-1] != '\n' {
		return nil, perr(0, "end", "empty, or the last line has no newline (truncated file?)")
	}
	l := &List{}
	rest := untrusted
	lineNo := 0
	var prev string
	dirSet := map[string]bool{}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := string(rest[:i])
		rest = rest[i+1:]
		lineNo++
		if len(line) > MaxLineLen {
			return nil, perr(lineNo, "line", "%d bytes: %w (max %d)", len(line), ErrTooLarge, MaxLineLen)
		}
		f := strings.Split(line, " ")
		switch lineNo {
		case 1:
			if line != fmt.Sprintf("%s %d", header, FormatVersion) {
				return nil, perr(1, "header", "not a glint rootfs list version %d", FormatVersion)
			}
			continue
		case 2:
			if f[0] != "dirs" || len(f) < 2 {
				return nil, perr(2, "dirs", "want \"dirs DIR...\"")
			}
			if len(f)-1 > MaxDirs {
				return nil, perr(2, "dirs", "%d directories: %w (max %d)", len(f)-1, ErrTooLarge, MaxDirs)
			}
			for _, d := range f[1:] {
				if err := checkTopDir(d); err != nil {
					return nil, perr(2, "dirs", "%v", err)
				}
				if len(l.Dirs) > 0 && d <= l.Dirs[len(l.Dirs)-1] {
					return nil, perr(2, "dirs", "%q is out of order or repeated", d)
				}
				l.Dirs = append(l.Dirs, d)
				dirSet[d] = true
			}
			continue
		}
		if len(l.Entries) >= MaxEntries {
			return nil, perr(lineNo, "entries", "%w: more than %d", ErrTooLarge, MaxEntries)
		}
		e, err := parseEntry(f)
		if err != nil {
			return nil, perr(lineNo, f[0], "%v", err)
		}
		if len(l.Entries) > 0 && e.Path <= prev {
			return nil, perr(lineNo, "path", "%q is out of order or repeated", e.Path)
		}
		top, _, _ := strings.Cut(e.Path, "/")
		if !dirSet[top] {
			return nil, perr(lineNo, "path", "%q is outside the listed directories", e.Path)
		}
		prev = e.Path
		l.Entries = append(l.Entries, e)
	}
	if lineNo < 2 {
		return nil, perr(lineNo, "header", "list ends before its header is complete")
	}
	if !bytes.Equal(l.Marshal(), untrusted) {
		return nil, perr(0, "encoding", "not in canonical form")
	}
	return l, nil
}

func parseEntry(f []string) (Entry, error) {
	var e Entry
	var err error
	switch f[0] {
	case "file":
		if len(f) != 10 {
			return e, errors.New("want \"file SHA256 SIZE MODE UID GID INO MTIME CTIME PATH\"")
		}
		if len(f[1]) != 64 || strings.ToLower(f[1]) != f[1] {
			return e, errors.New("want 64 lowercase hex digits")
		}
		if _, err := hex.Decode(e.SHA256[:], []byte(f[1])); err != nil {
			return e, err
		}
		if e.Size, err = parseNum(f[2], 63); err != nil {
			return e, err
		}
		if err := parseOwner(&e, f[3:6]); err != nil {
			return e, err
		}
		ino, nerr := parseNum(f[6], 64)
		if nerr != nil {
			return e, nerr
		}
		e.Ino = uint64(ino)
		for i, s := range f[7:9] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || strconv.FormatInt(v, 10) != s {
				return e, fmt.Errorf("%.24q is not a canonical number", s)
			}
			if i == 0 {
				e.Mtime = v
			} else {
				e.Ctime = v
			}
		}
		e.Kind = manifest.KindFile
		e.Path, err = parsePath(f[9])
	case "dir", "special":
		if len(f) != 5 {
			return e, fmt.Errorf("want \"%s MODE UID GID PATH\"", f[0])
		}
		e.Kind = manifest.KindDir
		if f[0] == "special" {
			e.Kind = manifest.KindSpecial
		}
		if err := parseOwner(&e, f[1:4]); err != nil {
			return e, err
		}
		e.Path, err = parsePath(f[4])
	case "link":
		if len(f) != 3 {
			return e, errors.New("want \"link TARGET PATH\"")
		}
		e.Kind = manifest.KindLink
		if e.Target, err = manifest.UnescapePath(f[1]); err != nil || e.Target == "" {
			return e, fmt.Errorf("bad target: %v", err)
		}
		e.Path, err = parsePath(f[2])
	default:
		return e, fmt.Errorf("unknown line type %.32q", f[0])
	}
	return e, err
}

// parseNum accepts canonical unsigned decimal of at most bits bits.
func parseNum(s string, bits int) (int64, error) {
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil || strconv.FormatUint(v, 10) != s {
		return 0, fmt.Errorf("%.24q is not a canonical number", s)
	}
	return int64(v), nil
}

// parseOwner reads "MODE UID GID" (MODE octal, at most st_mode's 16 bits).
func parseOwner(e *Entry, f []string) error {
	m, err := strconv.ParseUint(f[0], 8, 16)
	if err != nil || strconv.FormatUint(m, 8) != f[0] {
		return fmt.Errorf("mode %.12q is not canonical octal", f[0])
	}
	uid, err := parseNum(f[1], 32)
	if err != nil {
		return err
	}
	gid, err := parseNum(f[2], 32)
	if err != nil {
		return err
	}
	e.Mode, e.UID, e.GID = uint32(m), uint32(uid), uint32(gid)
	return nil
}

func parsePath(field string) (string, error) {
	p, err := manifest.UnescapePath(field)
	if err != nil {
		return "", err
	}
	return p, manifest.ValidPath(p)
}

// checkTopDir accepts one path element: the directories a list covers are
// top-level directories of the root ("usr", never "usr/lib" or "..").
func checkTopDir(d string) error {
	if err := manifest.ValidPath(d); err != nil {
		return err
	}
	if strings.Contains(d, "/") || strings.ContainsAny(d, " \\") || d != manifest.EscapePath(d) {
		return fmt.Errorf("%q is not a top-level directory name", d)
	}
	return nil
}
