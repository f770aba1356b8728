package iso9660

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Extent is a run of bytes of the image that holds (part of) a file.
type Extent struct {
	Offset int64 // byte offset in the image
	Length int64
}

var (
	_ fs.FS        = (*FS)(nil)
	_ fs.ReadDirFS = (*FS)(nil)
	_ fs.StatFS    = (*FS)(nil)
)

// lookup resolves name (an fs.ValidPath) to its entry. follow says whether
// a symlink as the last element is followed; symlinks inside the path always
// are, within the image only.
func (f *FS) lookup(op, name string, follow bool) (entry, error) {
	if !fs.ValidPath(name) {
		return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	rootEntry := entry{name: ".", mode: fs.ModeDir | 0o555, extents: []extent{{f.root.lba, f.root.size}}, mtime: f.root.mtime, size: int64(f.root.size)}
	hops := 0
	var walk func(name string, follow bool) (entry, error)
	walk = func(name string, follow bool) (entry, error) {
		if name == "." {
			return rootEntry, nil
		}
		parts := strings.Split(name, "/")
		if len(parts) > MaxDepth {
			return entry{}, &fs.PathError{Op: op, Path: name, Err: errorf(0, "path", ErrTooLarge, "deeper than %d", MaxDepth)}
		}
		cur := rootEntry
		curPath := "."
		for i, p := range parts {
			if !cur.mode.IsDir() {
				return entry{}, &fs.PathError{Op: op, Path: name, Err: errors.New("not a directory: " + curPath)}
			}
			ents, err := f.readDir(cur.extents[0], curPath)
			if err != nil {
				return entry{}, &fs.PathError{Op: op, Path: name, Err: err}
			}
			found := -1
			for j := range ents {
				if ents[j].name == p {
					found = j
					break
				}
			}
			if found < 0 {
				return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
			}
			next := ents[found]
			last := i == len(parts)-1
			if next.mode&fs.ModeSymlink != 0 && (!last || follow) {
				hops++
				if hops > MaxSymlinkHops {
					return entry{}, &fs.PathError{Op: op, Path: name, Err: errorf(next.off, "symlink", ErrTooLarge, "more than %d links followed", MaxSymlinkHops)}
				}
				target := next.target
				if !strings.HasPrefix(target, "/") {
					target = path.Join(curPath, target)
				}
				target = path.Clean(strings.TrimPrefix(target, "/"))
				if target == ".." || strings.HasPrefix(target, "../") || target == "" {
					return entry{}, &fs.PathError{Op: op, Path: name, Err: errors.New("symlink " + next.name + " -> " + next.target + " leaves the image")}
				}
				resolved, err := walk(target, true)
				if err != nil {
					return entry{}, err
				}
				resolved.name = next.name
				next = resolved
			}
			cur = next
			curPath = path.Join(curPath, p)
		}
		return cur, nil
	}
	return walk(name, follow)
}

// Open opens the named file or directory, following symlinks inside the
// image.
func (f *FS) Open(name string) (fs.File, error) {
	e, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	if e.mode.IsDir() {
		return &dirFile{fsys: f, e: e, path: name}, nil
	}
	if e.unsupported != "" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errorf(e.off, "file", ErrUnsupported, "%s", e.unsupported)}
	}
	readers := make([]io.Reader, 0, len(e.extents))
	for _, x := range e.extents {
		off, err := f.extentRange(x.lba, x.size, "file extent", name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		readers = append(readers, io.NewSectionReader(f.r, off, int64(x.size)))
	}
	return &file{e: e, r: io.MultiReader(readers...)}, nil
}

// Stat describes the named file, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return info{e}, nil
}

// Lstat describes the named file without following a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return info{e}, nil
}

// ReadLink returns a Rock Ridge symlink's target as stored.
func (f *FS) ReadLink(name string) (string, error) {
	e, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if e.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return e.target, nil
}

// ReadDir lists a directory sorted by name, as fs.ReadDirFS asks.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !e.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	ents, err := f.readDir(e.extents[0], name)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(ents))
	for i := range ents {
		out[i] = fs.FileInfoToDirEntry(info{ents[i]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Extents returns where the named regular file's bytes are in the image, in
// file order. A caller that verified the image as a whole can keep exactly
// these bytes while hashing, instead of trusting a second read.
func (f *FS) Extents(name string) ([]Extent, error) {
	e, err := f.lookup("extents", name, true)
	if err != nil {
		return nil, err
	}
	if !e.mode.IsRegular() {
		return nil, &fs.PathError{Op: "extents", Path: name, Err: errors.New("not a regular file")}
	}
	if e.unsupported != "" {
		return nil, &fs.PathError{Op: "extents", Path: name, Err: errorf(e.off, "file", ErrUnsupported, "%s", e.unsupported)}
	}
	out := make([]Extent, 0, len(e.extents))
	for _, x := range e.extents {
		off, err := f.extentRange(x.lba, x.size, "file extent", name)
		if err != nil {
			return nil, err
		}
		out = append(out, Extent{Offset: off, Length: int64(x.size)})
	}
	return out, nil
}

type info struct{ e entry }

func (i info) Name() string       { return i.e.name }
func (i info) Size() int64        { return i.e.size }
func (i info) Mode() fs.FileMode  { return i.e.mode }
func (i info) ModTime() time.Time { return i.e.mtime }
func (i info) IsDir() bool        { return i.e.mode.IsDir() }
func (i info) Sys() any           { return nil }

type file struct {
	e entry
	r io.Reader
}

func (f *file) Stat() (fs.FileInfo, error) { return info{f.e}, nil }
func (f *file) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *file) Close() error               { return nil }

type dirFile struct {
	fsys *FS
	e    entry
	path string
	ents []fs.DirEntry
	read bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return info{d.e}, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		ents, err := d.fsys.ReadDir(d.path)
		if err != nil {
			return nil, err
		}
		d.ents, d.read = ents, true
	}
	if n <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.ents))
	out := d.ents[:n]
	d.ents = d.ents[n:]
	return out, nil
}
