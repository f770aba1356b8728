package manifest

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// FS is /boot as the signed manifest m describes it: a directory lists the
// manifest's entries, and a file or link opens with the bytes read returns
// for it (the caller's verified read: read, hashed, compared with the
// manifest). Whatever parses /boot through FS after verification (the boot
// entries, what the menu offers and kexec loads) sees what was signed,
// never a file swapped between verifying and parsing, nor one the manifest
// does not list.
func FS(m *Manifest, read func(name string) ([]byte, error)) fs.FS {
	v := &verifiedFS{read: read, entries: map[string]Entry{}}
	for _, e := range m.Entries {
		v.entries[e.Path] = e
	}
	return v
}

type verifiedFS struct {
	read    func(name string) ([]byte, error)
	entries map[string]Entry
}

func (v *verifiedFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return v.dir(name), nil
	}
	e, ok := v.entries[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	switch e.Kind {
	case KindDir:
		return v.dir(name), nil
	case KindFile, KindLink:
		data, err := v.read(name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &memFile{name: path.Base(name), r: bytes.NewReader(data), size: int64(len(data))}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (v *verifiedFS) dir(name string) *memDir {
	prefix := name + "/"
	if name == "." {
		prefix = ""
	}
	d := &memDir{name: path.Base(name)}
	for p, e := range v.entries {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || rest == "" || strings.Contains(rest, "/") {
			continue
		}
		d.list = append(d.list, dirEntry{name: rest, dir: e.Kind == KindDir, size: e.Size})
	}
	sort.Slice(d.list, func(i, j int) bool { return d.list[i].name < d.list[j].name })
	return d
}

type memFile struct {
	name string
	r    *bytes.Reader
	size int64
}

func (m *memFile) Stat() (fs.FileInfo, error) { return dirEntry{name: m.name, size: m.size}, nil }
func (m *memFile) Read(p []byte) (int, error) { return m.r.Read(p) }
func (m *memFile) Close() error               { return nil }

type memDir struct {
	name string
	list []dirEntry
	off  int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return dirEntry{name: d.name, dir: true}, nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: fs.ErrInvalid}
}
func (d *memDir) Close() error { return nil }
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.list[d.off:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	d.off += len(rest)
	out := make([]fs.DirEntry, len(rest))
	for i := range rest {
		out[i] = rest[i]
	}
	return out, nil
}

// dirEntry is both fs.DirEntry and fs.FileInfo for FS.
type dirEntry struct {
	name string
	dir  bool
	size int64
}

func (e dirEntry) Name() string               { return e.name }
func (e dirEntry) IsDir() bool                { return e.dir }
func (e dirEntry) Type() fs.FileMode          { return e.Mode().Type() }
func (e dirEntry) Info() (fs.FileInfo, error) { return e, nil }
func (e dirEntry) Size() int64                { return e.size }
func (e dirEntry) ModTime() time.Time         { return time.Time{} }
func (e dirEntry) Sys() any                   { return nil }
func (e dirEntry) Mode() fs.FileMode {
	if e.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
