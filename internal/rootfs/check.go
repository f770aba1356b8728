package rootfs

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/glint-boot/glint/internal/manifest"
)

// Change is one path whose signed and current states differ.
type Change struct {
	Path      string
	Want, Got Entry // Want from the signed list, Got from the disk now
}

func (c Change) String() string {
	// %q: names are attacker-chosen and must not drive the console.
	return fmt.Sprintf("%q: signed %s, now %s", c.Path, describe(c.Want), describe(c.Got))
}

func describe(e Entry) string {
	switch e.Kind {
	case manifest.KindFile:
		return fmt.Sprintf("sha256 %s (%d bytes, mode %04o, owner %d:%d)", hex.EncodeToString(e.SHA256[:]), e.Size, e.Mode, e.UID, e.GID)
	case manifest.KindLink:
		return fmt.Sprintf("symlink to %q", e.Target)
	case manifest.KindDir:
		return fmt.Sprintf("directory (mode %04o, owner %d:%d)", e.Mode, e.UID, e.GID)
	}
	return fmt.Sprintf("%s (mode %o, owner %d:%d)", e.Kind, e.Mode, e.UID, e.GID)
}

// TamperError lists every path whose state differs from the signed list.
type TamperError struct {
	Changed []Change
	Added   []Entry // on disk, not in the list
	Removed []Entry // in the list, not on disk
}

// MaxReported bounds the paths Error names (the fields hold all of them).
const MaxReported = 20

func (e *TamperError) Error() string {
	var parts []string
	for _, c := range e.Changed {
		parts = append(parts, "changed "+c.String())
	}
	for _, a := range e.Added {
		parts = append(parts, fmt.Sprintf("added %q (%s)", a.Path, describe(a)))
	}
	for _, r := range e.Removed {
		parts = append(parts, fmt.Sprintf("removed %q (%s)", r.Path, describe(r)))
	}
	more := ""
	if len(parts) > MaxReported {
		more = fmt.Sprintf("; and %d more", len(parts)-MaxReported)
		parts = parts[:MaxReported]
	}
	return fmt.Sprintf("root file system does not match its signed list (%d changed, %d added, %d removed): %s%s",
		len(e.Changed), len(e.Added), len(e.Removed), strings.Join(parts, "; "), more)
}

// Check compares the directories of signed (a list whose signature was
// verified) under root with what is there now. It returns a *TamperError
// naming every changed, added and removed path, or an error for I/O
// problems; Stats say what it read.
func Check(root string, signed *List, opts Options) (Stats, error) {
	now, st, err := Build(root, signed.Dirs, signed, opts)
	if err != nil {
		return st, err
	}
	if te := Diff(signed.Entries, now.Entries); te != nil {
		return st, te
	}
	return st, nil
}

// Diff compares two sorted entry lists; nil when they agree. Inode and
// times are not compared: a file restored with the same bytes, mode and
// owner is not a change.
func Diff(want, got []Entry) *TamperError {
	te := &TamperError{}
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i].Path < got[j].Path:
			te.Removed = append(te.Removed, want[i])
			i++
		case i == len(want) || got[j].Path < want[i].Path:
			te.Added = append(te.Added, got[j])
			j++
		default:
			if !same(want[i], got[j]) {
				te.Changed = append(te.Changed, Change{Path: want[i].Path, Want: want[i], Got: got[j]})
			}
			i++
			j++
		}
	}
	if len(te.Changed)+len(te.Added)+len(te.Removed) == 0 {
		return nil
	}
	return te
}

func same(a, b Entry) bool {
	return a.Entry == b.Entry && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID
}
