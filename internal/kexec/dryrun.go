package kexec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/glint-boot/glint/internal/bootcfg"
)

// FileRecord identifies one loaded file without its bytes.
type FileRecord struct {
	Path   string
	SHA256 string
	Size   int64
}

// ModuleRecord is one Multiboot module as it would be loaded.
type ModuleRecord struct {
	FileRecord
	Cmdline string
	NoUnzip bool
}

// SegmentRecord is one kexec_load segment of a planned Multiboot2 load.
type SegmentRecord struct {
	Addr, MemSize uint64
	SHA256        string
}

// Record is exactly what a Load would have staged. It holds no secret:
// the extra initrd appears only as its length and digest.
type Record struct {
	Kind    string
	Kernel  FileRecord
	Initrds []FileRecord
	// Initrd is the combined initrd handed to the kernel (zero when none).
	Initrd      FileRecord
	ExtraLength int
	ExtraSHA256 string
	Cmdline     string
	Modules     []ModuleRecord
	// Segments and Entry are filled for Multiboot images when DryRun has a
	// Platform to plan against.
	Segments []SegmentRecord
	Entry    uint64
	Executed bool
}

func (r *Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s kernel %s (sha256 %s, %d bytes)\n", r.Kind, r.Kernel.Path, r.Kernel.SHA256, r.Kernel.Size)
	for _, i := range r.Initrds {
		fmt.Fprintf(&b, "initrd %s (sha256 %s, %d bytes)\n", i.Path, i.SHA256, i.Size)
	}
	if r.Initrd.Size > 0 {
		fmt.Fprintf(&b, "combined initrd sha256 %s, %d bytes", r.Initrd.SHA256, r.Initrd.Size)
		if r.ExtraLength > 0 {
			fmt.Fprintf(&b, " (with %d appended bytes, sha256 %s)", r.ExtraLength, r.ExtraSHA256)
		}
		b.WriteByte('\n')
	}
	for _, m := range r.Modules {
		fmt.Fprintf(&b, "module %s (sha256 %s, %d bytes) %q\n", m.Path, m.SHA256, m.Size, m.Cmdline)
	}
	fmt.Fprintf(&b, "cmdline %q\n", r.Cmdline)
	return b.String()
}

// DryRun is a Loader that records instead of loading.
type DryRun struct {
	// Platform, when set, makes Load plan Multiboot images for real (ELF,
	// header, boot information, trampoline) and record the segments.
	Platform *Platform
	Loaded   *Record
}

func hashFile(f File, limit int64) (FileRecord, error) {
	h := sha256.New()
	n, err := copyFile(h, f)
	if err != nil {
		return FileRecord{}, err
	}
	if n > limit {
		return FileRecord{}, fmt.Errorf("%s: %w", f.name(), ErrTooLarge)
	}
	return FileRecord{Path: f.name(), SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// Load implements Loader.
func (d *DryRun) Load(img Image) error {
	if err := img.check(); err != nil {
		return err
	}
	r := &Record{Kind: img.Kind.String(), Cmdline: img.Cmdline}
	var err error
	if r.Kernel, err = hashFile(img.Kernel, MaxKernelSize); err != nil {
		return err
	}
	for _, f := range img.Initrds {
		fr, err := hashFile(f, MaxInitrdSize)
		if err != nil {
			return err
		}
		r.Initrds = append(r.Initrds, fr)
	}
	if img.Kind == bootcfg.Linux && (len(img.Initrds) > 0 || len(img.ExtraInitrd) > 0) {
		h := sha256.New()
		n, err := WriteInitrd(h, img.Initrds, img.ExtraInitrd)
		if err != nil {
			return err
		}
		r.Initrd = FileRecord{Path: "(memfd)", SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}
	}
	if len(img.ExtraInitrd) > 0 {
		sum := sha256.Sum256(img.ExtraInitrd)
		r.ExtraLength, r.ExtraSHA256 = len(img.ExtraInitrd), hex.EncodeToString(sum[:])
	}
	for _, m := range img.Modules {
		fr, err := hashFile(m.File, MaxInitrdSize)
		if err != nil {
			return err
		}
		r.Modules = append(r.Modules, ModuleRecord{FileRecord: fr, Cmdline: m.Cmdline, NoUnzip: m.NoUnzip})
	}
	if d.Platform != nil && img.Kind != bootcfg.Linux {
		plan, err := PlanMultiboot2(img, *d.Platform)
		if err != nil {
			return err
		}
		r.Entry = plan.Entry
		for _, s := range plan.Segments {
			sum := sha256.Sum256(s.Data)
			r.Segments = append(r.Segments, SegmentRecord{Addr: s.Addr, MemSize: s.MemSize, SHA256: hex.EncodeToString(sum[:])})
		}
		plan.Wipe()
	}
	d.Loaded = r
	return nil
}

// Exec implements Loader: it marks the record executed.
func (d *DryRun) Exec() error {
	if d.Loaded == nil {
		return ErrNotLoaded
	}
	d.Loaded.Executed = true
	return nil
}
