package manifest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StateDir is glint's own directory under /boot. It is not listed in the
// manifest: it holds the manifest and signature themselves, and state that
// changes without the owner's key (HOTP counter, notes from OS hooks, sealed-to
// PCR values), each protected on its own terms. See docs/manifest.md.
const StateDir = "glint"

// BuildOptions tune Build. The zero value is what the boot flow wants.
type BuildOptions struct {
	// Workers hashing in parallel; 0 means GOMAXPROCS.
	Workers int
	// BufferSize is each worker's read buffer; 0 means 256 KiB (fits in L2
	// beside the SHA-256 state: measured faster than 1 MiB, BenchmarkBuild).
	BufferSize int

	// Keep names files whose bytes Build should keep in memory while it
	// hashes them (Manifest.Kept): the boot flow keeps the default entry's
	// kernel and initrd, so what it kexecs is byte for byte what was
	// verified, without reading and hashing them a second time.
	Keep func(rel string) bool
	// MaxKeep caps the bytes kept in all (0: 512 MiB).
	MaxKeep int64

	// report makes Build describe what signing refuses (symlinks out of
	// /boot, device nodes, FIFOs) instead of failing, so Verify can name
	// them as added or changed: an attacker's escaping link is tampering,
	// not an I/O error.
	report bool

	// afterOpen runs once a file is open, before it is hashed. Tests use it
	// to change a file mid-hash, a fault a real /boot cannot be made to
	// produce on demand.
	afterOpen func(rel string)
}

// maxHashAttempts is how often a file that changed while being hashed is
// tried again before Build gives up.
const maxHashAttempts = 3

// ChangedDuringHashError is a file that kept changing while it was hashed.
type ChangedDuringHashError struct {
	Path string
	What string
}

func (e *ChangedDuringHashError) Error() string {
	return fmt.Sprintf("%s changed while it was being hashed (%s); is a package manager still writing /boot? Wait for it to finish and try again", e.Path, e.What)
}

// LinkEscapeError is a symlink whose target leaves /boot (absolute, or
// ".." past the top, possibly through other links). glint refuses to sign
// such a tree: whatever the link points to would be used at boot unhashed.
type LinkEscapeError struct {
	Path, Target string
}

func (e *LinkEscapeError) Error() string {
	return fmt.Sprintf("symlink %s -> %s points outside /boot; glint cannot vouch for what it reaches. Replace it with a copy of the file or a link inside /boot", e.Path, e.Target)
}

// UnsupportedFileError is a device node, FIFO or socket under /boot.
type UnsupportedFileError struct {
	Path string
	Mode fs.FileMode
}

func (e *UnsupportedFileError) Error() string {
	return fmt.Sprintf("%s is a %v, not a file, directory or symlink; remove it from /boot", e.Path, e.Mode.Type())
}

// Build describes bootDir as it is now: every regular file's SHA-256 and
// size, every directory, every symlink's target. Files are hashed in parallel
// (one file per worker; SHA-256 itself is sequential) and streamed through a
// reused buffer, so memory does not grow with file size.
//
// Build does not descend into other file systems mounted below bootDir (an
// ESP at /boot/efi is listed as a directory only): at boot glint mounts /boot
// alone, so their contents could never verify. The CounterIndex, Counter,
// Default and Created fields are left for the caller.
func Build(bootDir string, opts BuildOptions) (*Manifest, error) {
	entries, err := walk(bootDir, opts.report)
	if err != nil {
		return nil, err
	}
	if err := hashFiles(bootDir, entries, opts); err != nil {
		return nil, err
	}
	m := &Manifest{Entries: make([]Entry, len(entries))}
	for i, w := range entries {
		m.Entries[i] = w.Entry
		if w.kept != nil {
			if m.Kept == nil {
				m.Kept = map[string][]byte{}
			}
			m.Kept[w.Path] = w.kept
		}
	}
	return m, nil
}

type walked struct {
	Entry
	info os.FileInfo // from lstat during the walk
	kept []byte      // the hashed bytes, when BuildOptions.Keep asked
}

func walk(bootDir string, report bool) ([]*walked, error) {
	rootInfo, err := os.Stat(bootDir)
	if err != nil {
		return nil, fmt.Errorf("read boot directory: %w", err)
	}
	if !rootInfo.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", bootDir)
	}
	rootDev := devOf(rootInfo)
	var out []*walked
	err = filepath.WalkDir(bootDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		rel, err := filepath.Rel(bootDir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel == StateDir {
			return fs.SkipDir
		}
		if len(out) >= MaxEntries {
			return fmt.Errorf("/boot holds more than %d entries, more than a manifest may list", MaxEntries)
		}
		if err := ValidPath(rel); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		w := &walked{Entry: Entry{Path: rel}, info: info}
		switch {
		case info.Mode().IsRegular():
			w.Kind = KindFile
		case info.IsDir():
			w.Kind = KindDir
			out = append(out, w)
			if devOf(info) != rootDev {
				return fs.SkipDir // a mount point: see Build
			}
			return nil
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("read symlink %s: %w", p, err)
			}
			if len(target) > MaxPathLen {
				return fmt.Errorf("symlink %s: target of %d bytes is too long", rel, len(target))
			}
			if err := resolveWithin(bootDir, rel, target); err != nil && !report {
				return err
			}
			w.Kind, w.Target = KindLink, target
		default:
			if !report {
				return &UnsupportedFileError{Path: rel, Mode: info.Mode()}
			}
			w.Kind = KindSpecial
		}
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// WalkDir visits in lexical order per directory, which is not byte order
	// of whole paths ("a/b" vs "a-c"); the manifest wants the latter.
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// resolveWithin follows the symlink at rel (whose content is target) the way
// the kernel would, component by component, and fails if any step leaves
// bootDir. A purely lexical check is not enough: "a -> ." then
// "b -> a/../x" looks harmless but reaches bootDir's parent.
func resolveWithin(bootDir, rel, target string) error {
	escape := &LinkEscapeError{Path: rel, Target: target}
	if strings.HasPrefix(target, "/") {
		return escape
	}
	var stack []string // resolved components so far, relative to bootDir
	if d := path.Dir(rel); d != "." {
		stack = strings.Split(d, "/")
	}
	todo := strings.Split(target, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return escape
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		fi, err := os.Lstat(filepath.Join(bootDir, filepath.FromSlash(strings.Join(stack, "/"))))
		if err != nil {
			// Dangling from here on: nothing to follow, but ".." may
			// still climb out lexically.
			continue
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		hops++
		if hops > 40 { // Linux's MAXSYMLINKS
			return fmt.Errorf("symlink %s: too many levels of links", rel)
		}
		next, err := os.Readlink(filepath.Join(bootDir, filepath.FromSlash(strings.Join(stack, "/"))))
		if err != nil {
			return fmt.Errorf("symlink %s: %w", rel, err)
		}
		if strings.HasPrefix(next, "/") {
			return escape
		}
		stack = stack[:len(stack)-1]
		todo = append(strings.Split(next, "/"), todo...)
	}
	return nil
}

func devOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

func hashFiles(bootDir string, entries []*walked, opts BuildOptions) error {
	var files []*walked
	for _, w := range entries {
		if w.Kind == KindFile {
			files = append(files, w)
		}
	}
	// Largest first, so two big initrds do not end up queued behind each
	// other on one worker while the others idle.
	sort.SliceStable(files, func(i, j int) bool { return files[i].info.Size() > files[j].info.Size() })

	keepBudget := opts.MaxKeep
	if keepBudget <= 0 {
		keepBudget = 512 << 20
	}
	for _, w := range files {
		if opts.Keep != nil && opts.Keep(w.Path) && w.info.Size() <= keepBudget {
			keepBudget -= w.info.Size()
			w.kept = []byte{} // marks "keep"; filled by hashAttempt
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, max(len(files), 1))
	bufSize := opts.BufferSize
	if bufSize <= 0 {
		bufSize = 256 << 10
	}
	root, err := os.OpenRoot(bootDir)
	if err != nil {
		return fmt.Errorf("open boot directory: %w", err)
	}
	defer root.Close()

	jobs := make(chan *walked)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for w := range jobs {
				if errs[i] != nil {
					continue // drain
				}
				errs[i] = hashOne(root, w, buf, opts)
			}
		}()
	}
	for _, w := range files {
		jobs <- w
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

// hashOne hashes one file, trying again if it changed underneath.
func hashOne(root *os.Root, w *walked, buf []byte, opts BuildOptions) error {
	var err error
	for range maxHashAttempts {
		var changed string
		changed, err = hashAttempt(root, w, buf, opts)
		if err != nil {
			return err
		}
		if changed == "" {
			return nil
		}
		err = &ChangedDuringHashError{Path: w.Path, What: changed}
		// The walk's stat is stale now; start from the file as it is.
		fi, lerr := root.Lstat(filepath.FromSlash(w.Path))
		if lerr != nil {
			return fmt.Errorf("stat %s: %w", w.Path, lerr)
		}
		if !fi.Mode().IsRegular() {
			return err
		}
		w.info = fi
	}
	return err
}

// hashAttempt returns a non-empty description if the file changed between
// the walk and the end of hashing: a different inode (replaced, or swapped
// for a symlink), a different size, modification or change time, or a byte
// count that disagrees with the size.
func hashAttempt(root *os.Root, w *walked, buf []byte, opts BuildOptions) (changed string, err error) {
	// os.Root refuses to follow a symlink out of bootDir even if a
	// directory on the way was swapped for one after the walk.
	f, err := root.OpenFile(filepath.FromSlash(w.Path), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", w.Path, err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", w.Path, err)
	}
	if c := compareStat(w.info, before); c != "" {
		return c, nil
	}
	if opts.afterOpen != nil {
		opts.afterOpen(w.Path)
	}
	h := sha256.New()
	var n int64
	var kept []byte
	if w.kept != nil {
		kept = make([]byte, 0, before.Size())
	}
	for {
		k, rerr := f.Read(buf)
		h.Write(buf[:k])
		if w.kept != nil {
			kept = append(kept, buf[:k]...)
		}
		n += int64(k)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("read %s: %w", w.Path, rerr)
		}
	}
	after, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", w.Path, err)
	}
	if c := compareStat(before, after); c != "" {
		return c, nil
	}
	if n != after.Size() {
		return fmt.Sprintf("read %d bytes of a %d-byte file", n, after.Size()), nil
	}
	w.Size = n
	copy(w.SHA256[:], h.Sum(nil))
	if w.kept != nil {
		w.kept = kept
	}
	return "", nil
}

func compareStat(a, b os.FileInfo) string {
	sa, oka := a.Sys().(*syscall.Stat_t)
	sb, okb := b.Sys().(*syscall.Stat_t)
	if oka && okb {
		if sa.Dev != sb.Dev || sa.Ino != sb.Ino {
			return "replaced by another file"
		}
		if sa.Ctim != sb.Ctim {
			return "inode change time moved"
		}
	}
	if !b.Mode().IsRegular() {
		return "no longer a regular file"
	}
	if a.Size() != b.Size() {
		return fmt.Sprintf("size %d became %d", a.Size(), b.Size())
	}
	if !a.ModTime().Equal(b.ModTime()) {
		return "modification time moved from " + a.ModTime().Format(time.RFC3339Nano) + " to " + b.ModTime().Format(time.RFC3339Nano)
	}
	return ""
}
