package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/safefile"
)

// ExpectedNoteName is the note OS package hooks (dist/hooks) leave in
// /boot/glint when /boot changed and the owner's key was not at hand.
const ExpectedNoteName = "expected-update"

// Note limits: it is a hint on an unencrypted disk, read at every boot.
const (
	MaxNoteSize    = 64 << 10
	MaxNoteUpdates = 32
	MaxNoteFiles   = 256 // per update
	maxNoteField   = 256
)

// ExpectedNote says which changes to /boot an OS hook saw being made. It is
// NOT signed: anyone who can write /boot can write it. The boot menu shows
// it beside the changed files so the owner knows why they changed; it never
// makes a change acceptable. Only the owner's signature does that.
type ExpectedNote struct {
	Updates []ExpectedUpdate
}

// ExpectedUpdate is one package operation.
type ExpectedUpdate struct {
	Time   time.Time
	Source string   // which hook: debian-kernel, kernel-install, apt, dnf ...
	What   string   // package or kernel version, as the hook knew it
	Files  []string // paths under /boot that the hook saw changed
}

// NoteParseError is a malformed note.
type NoteParseError struct {
	Line int
	Err  error
}

func (e *NoteParseError) Error() string {
	return fmt.Sprintf("%s line %d: %v", ExpectedNoteName, e.Line, e.Err)
}

func (e *NoteParseError) Unwrap() error { return e.Err }

// ReadExpectedNote reads /boot/glint/expected-update; (nil, nil) if there
// is none.
func ReadExpectedNote(bootDir string) (*ExpectedNote, error) {
	b, err := readCapped(filepath.Join(bootDir, StateDir, ExpectedNoteName), MaxNoteSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseExpectedNote(b)
}

// ParseExpectedNote parses the note (format in docs/manifest.md):
//
//	glint-expected-update 1
//	update 2026-03-01T10:00:00Z debian-kernel 6.1.0-18-amd64
//	file vmlinuz-6.1.0-18-amd64
//	file initrd.img-6.1.0-18-amd64
//
// Fields use the manifest's \xHH escaping.
func ParseExpectedNote(untrusted []byte) (*ExpectedNote, error) {
	if len(untrusted) > MaxNoteSize {
		return nil, &NoteParseError{Err: fmt.Errorf("%d bytes: %w", len(untrusted), ErrTooLarge)}
	}
	lines := strings.Split(string(untrusted), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 || lines[0] != "glint-expected-update 1" {
		return nil, &NoteParseError{Line: 1, Err: errors.New("not a glint-expected-update 1 note")}
	}
	n := &ExpectedNote{}
	for i, line := range lines[1:] {
		ln := i + 2
		f := strings.Split(line, " ")
		switch f[0] {
		case "update":
			if len(f) != 4 {
				return nil, &NoteParseError{ln, errors.New(`want "update TIME SOURCE WHAT"`)}
			}
			if len(n.Updates) >= MaxNoteUpdates {
				return nil, &NoteParseError{ln, fmt.Errorf("%w: more than %d updates", ErrTooLarge, MaxNoteUpdates)}
			}
			t, err := time.Parse(time.RFC3339, f[1])
			if err != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != f[1] {
				return nil, &NoteParseError{ln, errors.New("bad time: want UTC like 2026-01-02T15:04:05Z")}
			}
			src, err := unescape(f[2], maxNoteField)
			if err != nil {
				return nil, &NoteParseError{ln, fmt.Errorf("source: %w", err)}
			}
			what, err := unescape(f[3], maxNoteField)
			if err != nil {
				return nil, &NoteParseError{ln, fmt.Errorf("what: %w", err)}
			}
			n.Updates = append(n.Updates, ExpectedUpdate{Time: t.UTC(), Source: src, What: what})
		case "file":
			if len(f) != 2 {
				return nil, &NoteParseError{ln, errors.New(`want "file PATH"`)}
			}
			if len(n.Updates) == 0 {
				return nil, &NoteParseError{ln, errors.New("file before any update line")}
			}
			u := &n.Updates[len(n.Updates)-1]
			if len(u.Files) >= MaxNoteFiles {
				return nil, &NoteParseError{ln, fmt.Errorf("%w: more than %d files", ErrTooLarge, MaxNoteFiles)}
			}
			p, err := parsePath(f[1])
			if err != nil {
				return nil, &NoteParseError{ln, err}
			}
			u.Files = append(u.Files, p)
		default:
			return nil, &NoteParseError{ln, fmt.Errorf("unknown line type %.32q", f[0])}
		}
	}
	return n, nil
}

// Marshal writes the note in the form ParseExpectedNote reads.
func (n *ExpectedNote) Marshal() []byte {
	var b strings.Builder
	b.WriteString("glint-expected-update 1\n")
	for _, u := range n.Updates {
		fmt.Fprintf(&b, "update %s %s %s\n", u.Time.UTC().Format(time.RFC3339), escape(u.Source), escape(u.What))
		for _, f := range u.Files {
			fmt.Fprintf(&b, "file %s\n", escape(f))
		}
	}
	return []byte(b.String())
}

// Explain returns the latest update that names path, or nil: what the boot
// menu prints beside a changed file ("expected: debian-kernel 6.1.0-18 on
// 2026-03-01, unsigned note").
func (n *ExpectedNote) Explain(path string) *ExpectedUpdate {
	if n == nil {
		return nil
	}
	for i := len(n.Updates) - 1; i >= 0; i-- {
		for _, f := range n.Updates[i].Files {
			if f == path {
				return &n.Updates[i]
			}
		}
	}
	return nil
}

// RecordExpected appends an update to /boot/glint/expected-update naming
// every path that differs from the stored manifest now (the manifest is read
// without checking its signature: this is a hint for the owner, nothing
// more). The oldest updates are dropped past MaxNoteUpdates. The write is
// atomic. It returns the recorded update; with no differences it records
// nothing and returns nil.
func RecordExpected(bootDir, source, what string, now time.Time) (*ExpectedUpdate, error) {
	changed, added, removed, err := DiffStored(bootDir)
	if err != nil {
		return nil, err
	}
	u := ExpectedUpdate{Time: now.UTC().Truncate(time.Second), Source: clip(source), What: clip(what)}
	for _, c := range changed {
		u.Files = append(u.Files, c.Path)
	}
	for _, e := range append(added, removed...) {
		u.Files = append(u.Files, e.Path)
	}
	if len(u.Files) == 0 {
		return nil, nil
	}
	if len(u.Files) > MaxNoteFiles {
		u.Files = u.Files[:MaxNoteFiles]
	}
	n, err := ReadExpectedNote(bootDir)
	if err != nil || n == nil {
		n = &ExpectedNote{} // a broken note is replaced, not kept
	}
	n.Updates = append(n.Updates, u)
	if len(n.Updates) > MaxNoteUpdates {
		n.Updates = n.Updates[len(n.Updates)-MaxNoteUpdates:]
	}
	if err := os.MkdirAll(filepath.Join(bootDir, StateDir), 0o755); err != nil {
		return nil, err
	}
	if err := safefile.Write(filepath.Join(bootDir, StateDir, ExpectedNoteName), n.Marshal(), 0o644); err != nil {
		return nil, err
	}
	return &u, nil
}

func clip(s string) string {
	if s == "" {
		return "-"
	}
	if len(s) > maxNoteField {
		return s[:maxNoteField]
	}
	return s
}

// removeExpected deletes the note once the owner has signed: whatever it
// explained is now covered by the signature.
func removeExpected(bootDir string) error {
	err := os.Remove(filepath.Join(bootDir, StateDir, ExpectedNoteName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// DiffStored compares /boot with the stored manifest WITHOUT checking the
// signature or the counter: for OS hooks deciding whether to act, and for
// the note. Never a basis for trusting anything.
func DiffStored(bootDir string) (changed []FileChange, added, removed []Entry, err error) {
	text, _, err := ReadPair(bootDir)
	if err != nil {
		return nil, nil, nil, err
	}
	old, err := Parse(text)
	if err != nil {
		return nil, nil, nil, err
	}
	cur, err := Build(bootDir, BuildOptions{report: true})
	if err != nil {
		return nil, nil, nil, err
	}
	changed, added, removed = Diff(old.Entries, cur.Entries)
	return changed, added, removed, nil
}
