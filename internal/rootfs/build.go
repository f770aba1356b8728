package rootfs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/glint-boot/glint/internal/manifest"
)

// DefaultDirs are the directories PureBoot's root hashing covers
// (CONFIG_ROOT_DIRLIST); "etc" is the usual addition, left out by default
// because it changes with every configuration edit.
var DefaultDirs = []string{"bin", "boot", "lib", "sbin", "usr"}

// Options tune Build and Check.
type Options struct {
	// Workers hashing in parallel; 0 means 2 x GOMAXPROCS (hashing small
	// files waits on open/read as much as on SHA-256; BenchmarkBuild).
	Workers int
	// Fast, with a previous list, skips hashing a file whose inode, size,
	// modification and change times equal the ones the list recorded, and
	// takes the list's digest for it. Weaker: someone who can write the
	// disk while it is not running can forge all four (an offline edit, or
	// a root process that writes in place and resets the times, which
	// still moves the change time only if the clock is not also moved).
	Fast bool
	// Progress is called from the hashing workers with running totals.
	Progress func(files, bytes int64)
}

// Stats say what a Build or Check did.
type Stats struct {
	Entries int
	Hashed  int   // files read and hashed
	Skipped int   // files the fast mode did not read
	Bytes   int64 // bytes hashed
}

// Build describes dirs under root as they are now. prev (may be nil) is
// only used by Options.Fast. Directories on other file systems below a
// listed directory (a separate /boot partition mounted on the running
// system) are listed as directories and not entered: at boot the root is
// mounted alone.
func Build(root string, dirs []string, prev *List, opts Options) (*List, Stats, error) {
	var st Stats
	dirs = append([]string(nil), dirs...)
	sort.Strings(dirs)
	for i, d := range dirs {
		if err := checkTopDir(d); err != nil {
			return nil, st, err
		}
		if i > 0 && dirs[i-1] == d {
			return nil, st, fmt.Errorf("directory %q given twice", d)
		}
	}
	if len(dirs) == 0 || len(dirs) > MaxDirs {
		return nil, st, fmt.Errorf("want 1 to %d directories, got %d", MaxDirs, len(dirs))
	}
	rootInfo, err := os.Stat(root)
	if err != nil {
		return nil, st, fmt.Errorf("root file system: %w", err)
	}
	if !rootInfo.IsDir() {
		return nil, st, fmt.Errorf("%s is not a directory", root)
	}
	rootDev := devOf(rootInfo)
	var entries []Entry
	for _, d := range dirs {
		if err := walk(root, d, rootDev, &entries); err != nil {
			return nil, st, err
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	st.Entries = len(entries)
	if err := hashAll(root, entries, prev, opts, &st); err != nil {
		return nil, st, err
	}
	return &List{Dirs: dirs, Entries: entries}, st, nil
}

func walk(root, top string, rootDev uint64, out *[]Entry) error {
	base := filepath.Join(root, top)
	if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
		return nil // absent: listed as absent, so its appearance is "added"
	}
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if len(*out) >= MaxEntries {
			return fmt.Errorf("more than %d entries under %s; list fewer directories", MaxEntries, root)
		}
		if err := manifest.ValidPath(rel); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		e := Entry{Entry: manifest.Entry{Path: rel}}
		s, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat %s: no Unix metadata", p)
		}
		switch {
		case info.Mode().IsRegular():
			e.Kind = manifest.KindFile
			e.Size = info.Size()
			e.Mode, e.UID, e.GID = s.Mode&0o7777, s.Uid, s.Gid
			e.Ino, e.Mtime, e.Ctime = uint64(s.Ino), s.Mtim.Nano(), s.Ctim.Nano()
		case info.IsDir():
			e.Mode, e.UID, e.GID = s.Mode&0o7777, s.Uid, s.Gid
			e.Kind = manifest.KindDir
			*out = append(*out, e)
			if devOf(info) != rootDev {
				return fs.SkipDir
			}
			return nil
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("read symlink %s: %w", p, err)
			}
			if len(target) > manifest.MaxPathLen || target == "" {
				return fmt.Errorf("symlink %s: target of %d bytes", rel, len(target))
			}
			e.Kind, e.Target = manifest.KindLink, target
		default:
			e.Kind = manifest.KindSpecial
			e.Mode, e.UID, e.GID = s.Mode&0o177777, s.Uid, s.Gid
		}
		*out = append(*out, e)
		return nil
	})
}

func devOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// maxHashAttempts is how often a file that changed while being hashed is
// tried again.
const maxHashAttempts = 3

// ChangedDuringHashError is a file that kept changing while it was hashed.
type ChangedDuringHashError struct {
	Path string
	What string
}

func (e *ChangedDuringHashError) Error() string {
	return fmt.Sprintf("%s changed while it was being hashed (%s); is a package manager still running? Try again when it is done", e.Path, e.What)
}

func hashAll(root string, entries []Entry, prev *List, opts Options, st *Stats) error {
	var prevFiles map[string]*Entry
	if opts.Fast && prev != nil {
		prevFiles = make(map[string]*Entry, len(prev.Entries))
		for i := range prev.Entries {
			if prev.Entries[i].Kind == manifest.KindFile {
				prevFiles[prev.Entries[i].Path] = &prev.Entries[i]
			}
		}
	}
	var todo []int // in path order, so one directory's files are together
	for i := range entries {
		e := &entries[i]
		if e.Kind != manifest.KindFile {
			continue
		}
		if p, ok := prevFiles[e.Path]; ok && p.Ino == e.Ino && p.Size == e.Size && p.Mtime == e.Mtime && p.Ctime == e.Ctime {
			e.SHA256 = p.SHA256
			st.Skipped++
			continue
		}
		todo = append(todo, i)
	}
	chunks := chunkByDir(entries, todo)
	workers := opts.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	workers = min(workers, max(len(chunks), 1))
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("open root file system: %w", err)
	}
	defer r.Close()

	var next, files, bytes atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				c := int(next.Add(1) - 1)
				if c >= len(chunks) || errs[w] != nil {
					return
				}
				ch := chunks[c]
				if err := hashChunk(r, entries, ch, buf, func(size int64) {
					f, b := files.Add(1), bytes.Add(size)
					if opts.Progress != nil && f%1024 == 0 {
						opts.Progress(f, b)
					}
				}); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	st.Hashed, st.Bytes = int(files.Load()), bytes.Load()
	return errors.Join(errs...)
}

// chunk is up to maxChunk files of one directory (indexes into entries).
type chunk struct {
	dir   string
	files []int
}

// maxChunk bounds a chunk so a directory of 10,000 small files is shared
// between the workers; big files get a chunk of their own for the same
// reason.
const maxChunk = 64

func chunkByDir(entries []Entry, todo []int) []chunk {
	var out []chunk
	for _, i := range todo {
		dir := path.Dir(entries[i].Path)
		n := len(out)
		if n == 0 || out[n-1].dir != dir || len(out[n-1].files) >= maxChunk || entries[i].Size >= 1<<20 {
			out = append(out, chunk{dir: dir})
			n++
		}
		out[n-1].files = append(out[n-1].files, i)
	}
	// Chunks with big files first, so they do not end up behind each
	// other on one worker at the end.
	sort.SliceStable(out, func(a, b int) bool { return entries[out[a].files[0]].Size > entries[out[b].files[0]].Size })
	return out
}

// hashChunk opens the chunk's directory once (through os.Root: no symlink
// on the way leaves the root) and each file in it with openat(2),
// O_NOFOLLOW and O_NONBLOCK (a file swapped for a symlink is not followed,
// for a FIFO does not block), using raw system calls: for a tree of small
// files the per-file calls are the cost, not SHA-256 (BenchmarkBuild).
func hashChunk(r *os.Root, entries []Entry, ch chunk, buf []byte, done func(size int64)) error {
	d, err := r.Open(filepath.FromSlash(ch.dir))
	if err != nil {
		return fmt.Errorf("open %s: %w", ch.dir, err)
	}
	defer d.Close()
	raw, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var herr error
	cerr := raw.Control(func(dfd uintptr) {
		for _, i := range ch.files {
			e := &entries[i]
			if herr = hashOne(int(dfd), e, buf); herr != nil {
				return
			}
			done(e.Size)
		}
	})
	if cerr != nil {
		return cerr
	}
	return herr
}

// hashOne hashes one file and checks it did not change between the walk
// and the end of its read (inode, size, times), trying again if it did.
func hashOne(dfd int, e *Entry, buf []byte) error {
	base := path.Base(e.Path)
	for attempt := 1; ; attempt++ {
		changed, err := hashAttempt(dfd, base, e, buf)
		if err != nil || changed == "" {
			return err
		}
		if attempt == maxHashAttempts {
			return &ChangedDuringHashError{Path: e.Path, What: changed}
		}
		var s unix.Stat_t
		if err := unix.Fstatat(dfd, base, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %s: %w", e.Path, err)
		}
		if s.Mode&unix.S_IFMT != unix.S_IFREG {
			return &ChangedDuringHashError{Path: e.Path, What: "no longer a regular file"}
		}
		setStat(e, &s)
	}
}

func setStat(e *Entry, s *unix.Stat_t) {
	e.Size, e.Ino = s.Size, s.Ino
	e.Mtime, e.Ctime = s.Mtim.Nano(), s.Ctim.Nano()
	e.Mode, e.UID, e.GID = s.Mode&0o7777, s.Uid, s.Gid
}

func hashAttempt(dfd int, base string, e *Entry, buf []byte) (string, error) {
	fd, err := openat(dfd, base)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return "", &ChangedDuringHashError{Path: e.Path, What: "replaced by a symlink"}
		}
		return "", fmt.Errorf("open %s: %w", e.Path, err)
	}
	defer unix.Close(fd)
	var before, after unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		return "", fmt.Errorf("stat %s: %w", e.Path, err)
	}
	if c := differs(e, &before); c != "" {
		return c, nil
	}
	h := sha256.New()
	var n int64
	for {
		k, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", e.Path, err)
		}
		if k == 0 {
			break
		}
		h.Write(buf[:k])
		n += int64(k)
	}
	if err := unix.Fstat(fd, &after); err != nil {
		return "", fmt.Errorf("stat %s: %w", e.Path, err)
	}
	if c := differs(e, &after); c != "" {
		return c, nil
	}
	if n != e.Size {
		return fmt.Sprintf("read %d bytes of a %d-byte file", n, e.Size), nil
	}
	h.Sum(e.SHA256[:0])
	return "", nil
}

func openat(dfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func differs(e *Entry, s *unix.Stat_t) string {
	switch {
	case s.Mode&unix.S_IFMT != unix.S_IFREG:
		return "no longer a regular file"
	case s.Size != e.Size:
		return fmt.Sprintf("size %d became %d", e.Size, s.Size)
	case s.Ino != e.Ino:
		return "replaced by another file"
	case s.Mtim.Nano() != e.Mtime || s.Ctim.Nano() != e.Ctime:
		return "modified"
	case s.Mode&0o7777 != e.Mode || s.Uid != e.UID || s.Gid != e.GID:
		return "mode or owner changed"
	}
	return ""
}
