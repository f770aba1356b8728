// Package isoboot boots a kernel from inside an ISO image on a USB stick:
// it finds the images, reads the distribution's boot menu inside one
// (isolinux/grub, through internal/iso9660 and internal/bootcfg), and hands
// back the chosen entry's kernel, initrds and command line as a kexec image
// built only from bytes that were verified.
//
// Threat: the stick is untrusted, and a malicious USB device can answer the
// same read differently the second time (after the signature check). So the
// menu is read once from the device while every byte read is recorded
// (Prepare); the verification pass (internal/isoverify) keeps exactly those
// bytes plus the entry's files (Keep); and Load rebuilds the menu from the
// kept bytes alone and refuses if the entry is not the one the owner was
// shown (kernel, initrds, modules, command line). The command line is the
// distribution's, plus the owner's additions and minus their removals
// (Heads' kexec_iso_add.txt / kexec_iso_remove.txt, here in the owner
// configuration).
//
// Example, in the boot flow:
//
//	menu, err := isoboot.Prepare(dev, size)
//	keep, _ := menu.Keep(i)
//	res, err := isoverify.Verify(img, dir, keys, isoverify.Options{Keep: keep})
//	boot, err := menu.Load(i, keep, res.Kept, cfg.ISOAdd, cfg.ISORemove)
//	loader.Load(boot.Image())
package isoboot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/iso9660"
	"github.com/glint-boot/glint/internal/isoverify"
	"github.com/glint-boot/glint/internal/kexec"
)

// Caps on what a stick may make glint do.
const (
	// MaxImages bounds the ISO images one scan returns.
	MaxImages = 64
	// MaxScanDepth bounds how deep below the stick's root images are
	// looked for (Heads: anywhere; people keep them at the top or in a
	// folder).
	MaxScanDepth = 3
	// MaxScanEntries bounds the directory entries a scan looks at.
	MaxScanEntries = 20000
	// MaxMetadata bounds the bytes the menu was read from (directories,
	// boot configurations).
	MaxMetadata = 64 << 20
)

// Candidate is an ISO image found on a stick.
type Candidate struct {
	Path string // full path on the mounted stick
	Dir  string // its directory (where signatures are looked for)
	Name string // base name
	Size int64
}

// Scan lists the *.iso files under mountDir (a mounted USB file system),
// sorted by path.
func Scan(mountDir string) ([]Candidate, error) {
	var out []Candidate
	seen := 0
	err := filepath.WalkDir(mountDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable folder hides its images, nothing more
		}
		if seen++; seen > MaxScanEntries {
			return fs.SkipAll
		}
		rel, _ := filepath.Rel(mountDir, p)
		if d.IsDir() {
			if rel != "." && (strings.Count(rel, string(filepath.Separator)) >= MaxScanDepth-1 || strings.HasPrefix(d.Name(), ".")) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.EqualFold(filepath.Ext(d.Name()), ".iso") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if len(out) >= MaxImages {
			return fs.SkipAll
		}
		out = append(out, Candidate{Path: p, Dir: filepath.Dir(p), Name: d.Name(), Size: info.Size()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// Menu is the boot menu read from an ISO, untrusted until Load.
type Menu struct {
	VolumeID string
	Names    string // iso9660 name set: rockridge, joliet, iso9660
	Entries  []bootcfg.Entry
	Default  int
	Configs  []string // the boot configurations read, inside the ISO

	size     int64
	metadata []isoverify.Range   // every byte range read to build the menu
	files    [][]isoverify.Range // per entry: where its files are, as read
}

// Prepare reads the boot menu of the image r (size bytes), recording every
// range it reads.
func Prepare(r io.ReaderAt, size int64) (*Menu, error) {
	rec := &recorder{r: r}
	d, fsys, err := discover(rec, size)
	if err != nil {
		return nil, err
	}
	m := &Menu{VolumeID: fsys.VolumeID, Names: fsys.Names, Entries: d.Entries, Default: d.Default, Configs: d.Configs, size: size}
	for _, e := range d.Entries {
		var rs []isoverify.Range
		for _, f := range e.Files() {
			ext, err := fsys.Extents(f)
			if err != nil {
				rs = nil // a missing file: the entry cannot boot (Load says which)
				break
			}
			for _, x := range ext {
				rs = append(rs, isoverify.Range{Offset: x.Offset, Length: x.Length})
			}
		}
		m.files = append(m.files, rs)
	}
	m.metadata = merge(rec.ranges)
	return m, nil
}

func discover(r io.ReaderAt, size int64) (*bootcfg.Discovery, *iso9660.FS, error) {
	fsys, err := iso9660.Open(r, size)
	if err != nil {
		return nil, nil, err
	}
	d, err := bootcfg.DiscoverFS(fsys)
	if err != nil {
		return nil, nil, fmt.Errorf("boot menu inside the image: %w", err)
	}
	return d, fsys, nil
}

// Keep returns the image ranges to keep while verifying entry i: the
// menu's metadata and the entry's files.
func (m *Menu) Keep(i int) ([]isoverify.Range, error) {
	if i < 0 || i >= len(m.Entries) {
		return nil, fmt.Errorf("no boot entry %d", i+1)
	}
	var total int64
	for _, r := range m.metadata {
		total += r.Length
	}
	if total > MaxMetadata {
		return nil, fmt.Errorf("the boot menu was read from %d bytes of the image, more than %d", total, MaxMetadata)
	}
	return merge(append(append([]isoverify.Range{}, m.metadata...), m.files[i]...)), nil
}

// Boot is a verified entry, ready for kexec.
type Boot struct {
	Entry   bootcfg.Entry
	Cmdline string // with the owner's additions and removals
	image   kexec.Image
}

// Image is the kexec image of b: every file read from the verified bytes
// (kexec.FromEntry, as the boot flow turns a /boot entry into an image).
func (b *Boot) Image() kexec.Image { return b.image }

// ErrMenuChanged means the image, read again from the verified bytes, does
// not offer the entry the owner chose: the device answered differently.
var ErrMenuChanged = errors.New("the boot menu read from the verified image differs from the one shown (the USB device changed its answers?)")

// Load rebuilds the menu from kept (the bytes of keep, as verified) and
// returns entry i with its files read from the verified bytes too. If the
// verified menu differs from the one read before, or names files outside
// the kept ranges, the device changed its answers: ErrMenuChanged.
func (m *Menu) Load(i int, keep []isoverify.Range, kept [][]byte, add, remove []string) (*Boot, error) {
	if len(keep) != len(kept) {
		return nil, errors.New("kept bytes do not match the ranges")
	}
	if i < 0 || i >= len(m.Entries) {
		return nil, fmt.Errorf("no boot entry %d", i+1)
	}
	view := &keptView{ranges: keep, data: kept}
	d, fsys, err := discover(view, m.size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMenuChanged, err)
	}
	want := m.Entries[i]
	var got *bootcfg.Entry
	for j := range d.Entries {
		if d.Entries[j].ID == want.ID {
			got = &d.Entries[j]
			break
		}
	}
	if got == nil || !sameEntry(want, *got) {
		return nil, ErrMenuChanged
	}
	read := func(name string) ([]byte, error) {
		ext, err := fsys.Extents(name)
		if err != nil {
			return nil, fmt.Errorf("%s in the image: %w", name, err)
		}
		out := []byte{}
		for _, x := range ext {
			data, ok := view.lookup(isoverify.Range{Offset: x.Offset, Length: x.Length})
			if !ok {
				return nil, fmt.Errorf("%w: %s lies outside the verified ranges", ErrMenuChanged, name)
			}
			out = append(out, data...)
		}
		return out, nil
	}
	b := &Boot{Entry: *got, Cmdline: AdjustCmdline(got.Cmdline, add, remove)}
	e := *got
	e.Cmdline = b.Cmdline
	if b.image, err = kexec.FromEntry(e, read); err != nil {
		return nil, err
	}
	return b, nil
}

func sameEntry(a, b bootcfg.Entry) bool {
	if a.Kind != b.Kind || a.Kernel != b.Kernel || a.Cmdline != b.Cmdline || a.Title != b.Title ||
		strings.Join(a.Initrds, "\x00") != strings.Join(b.Initrds, "\x00") || len(a.Modules) != len(b.Modules) {
		return false
	}
	for i := range a.Modules {
		if a.Modules[i] != b.Modules[i] {
			return false
		}
	}
	return true
}

// AdjustCmdline removes every word of cmdline that equals one in remove
// or starts with one ending in '=' ("quiet", "splash", "vga="), then appends
// add. Heads' kexec-iso-init.sh applies kexec_iso_remove.txt and
// kexec_iso_add.txt the same way.
func AdjustCmdline(cmdline string, add, remove []string) string {
	var out []string
	for _, w := range strings.Fields(cmdline) {
		drop := false
		for _, r := range remove {
			if w == r || strings.HasSuffix(r, "=") && strings.HasPrefix(w, r) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, w)
		}
	}
	return strings.Join(append(out, add...), " ")
}

// recorder remembers every range read through it.
type recorder struct {
	r      io.ReaderAt
	ranges []isoverify.Range
}

func (rc *recorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := rc.r.ReadAt(p, off)
	if n > 0 {
		rc.ranges = append(rc.ranges, isoverify.Range{Offset: off, Length: int64(n)})
	}
	return n, err
}

// merge sorts ranges and joins overlapping or touching ones.
func merge(rs []isoverify.Range) []isoverify.Range {
	rs = append([]isoverify.Range(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	var out []isoverify.Range
	for _, r := range rs {
		if n := len(out); n > 0 && r.Offset <= out[n-1].Offset+out[n-1].Length {
			end := max(out[n-1].Offset+out[n-1].Length, r.Offset+r.Length)
			out[n-1].Length = end - out[n-1].Offset
			continue
		}
		out = append(out, r)
	}
	return out
}

// keptView serves reads from kept ranges only; anything else is an error,
// so a menu rebuilt through it used verified bytes alone.
type keptView struct {
	ranges []isoverify.Range
	data   [][]byte
}

var errNotKept = errors.New("read outside the verified ranges")

func (v *keptView) ReadAt(p []byte, off int64) (int, error) {
	for i, r := range v.ranges {
		if off >= r.Offset && off+int64(len(p)) <= r.Offset+r.Length {
			return copy(p, v.data[i][off-r.Offset:]), nil
		}
	}
	return 0, errNotKept
}

func (v *keptView) lookup(want isoverify.Range) ([]byte, bool) {
	for i, r := range v.ranges {
		if want.Offset >= r.Offset && want.Offset+want.Length <= r.Offset+r.Length {
			return v.data[i][want.Offset-r.Offset : want.Offset-r.Offset+want.Length], true
		}
	}
	return nil, false
}

// ReadRanges reads ranges from r directly, for an image the owner chose to
// boot unsigned (explicit confirmation; refused in restricted mode): there
// is nothing to verify, but the menu is still rebuilt from one read.
func ReadRanges(r io.ReaderAt, ranges []isoverify.Range) ([][]byte, error) {
	out := make([][]byte, len(ranges))
	for i, rg := range ranges {
		out[i] = make([]byte, rg.Length)
		if n, err := r.ReadAt(out[i], rg.Offset); n < len(out[i]) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read %d bytes at %d: %w", rg.Length, rg.Offset, err)
		}
	}
	return out, nil
}

// OpenImage opens an image file for Prepare and isoverify.Verify.
func OpenImage(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}
