// Package kexec starts the operating system glint chose: it loads a kernel
// (Linux bzImage) or a Multiboot2 hypervisor with its modules (Xen, as Qubes
// OS boots) into memory with the kexec system calls, and jumps to it.
//
// Everything irreversible sits behind the Loader interface: Load stages an
// Image in the kernel, Exec reboots into it. The boot flow measures the
// "leaving glint" event before calling Exec; tests use DryRun, which records
// exactly what would have been loaded (paths, SHA-256 digests, lengths,
// command lines) so a whole boot can be checked without leaving the process.
//
// Linux images go through kexec_file_load(2): the running kernel parses the
// bzImage itself. The initrd handed to it lives in a memfd, never on a disk:
// it is the entry's initrds concatenated, each padded to 4 bytes (the cpio
// "newc" alignment grub uses too, grub-core/loader/linux.c), followed by
// Image.ExtraInitrd — the cpio archive carrying the unsealed disk key. Only
// its length and digest are ever reported.
//
// Multiboot2 images (Xen) go through kexec_load(2) with segments built here:
// the gzip'd hypervisor is inflated, its Multiboot2 header (Multiboot2
// specification 1.0, section 3.1) and ELF program headers are parsed with caps,
// the boot information structure (section 3.6: command line, loader name,
// modules, basic memory info, memory map, ACPI RSDP, framebuffer) is built, and
// a small trampoline enters the hypervisor in 32-bit protected mode with
// EAX=0x36d76289 and EBX=the information's address (section 3.3).
// Image.ExtraInitrd rides on the last module (the dom0 initrd).
//
// What Xen needs after kexec, beyond the specification (proved under QEMU
// with SeaBIOS, coreboot and OVMF by ./qemutest):
//   - "no-real-mode" on its command line (xenNoRealMode): there is no BIOS
//     left for its real-mode EDD/EDID/video calls;
//   - a BIOS data area in page 0 on UEFI machines (Platform.NoBDA,
//     biosDataPage): Xen's BIOS entry path sizes low memory from it;
//   - still open: Xen 4.17 ignores the ACPI tags 14/15 and looks for the
//     RSDP by scanning the EBDA and 0xE0000-0xFFFFF. Under OVMF the RSDP is
//     only in the EFI configuration table; under QEMU's coreboot build
//     glint finds a copy in 0xE0000-0xFFFFF but Xen reports "A valid RSDP
//     was not found" (cause not yet known). Xen then runs with ACPI off and
//     gives dom0 "acpi=off"; dom0 still boots. Under SeaBIOS ACPI works.
//
// Example:
//
//	img, err := kexec.FromEntry(entry, kexec.Dir("/boot"))
//	img.ExtraInitrd = keyCpio
//	var l kexec.Loader = kexec.NewSystemLoader()
//	if err := l.Load(img); err != nil { ... }
//	// measure "leaving glint" into PCR 4, then:
//	err = l.Exec()
package kexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/glint-boot/glint/internal/bootcfg"
)

// File is one file of an image: read from Path unless Data is set.
type File struct {
	Path string
	Data []byte
}

// Module is one Multiboot module with its command line.
type Module struct {
	File
	Cmdline string
	// NoUnzip passes a gzip'd file as it is (grub's module2 --nounzip);
	// otherwise a gzip'd module is inflated before loading, as grub does.
	NoUnzip bool
}

// Image is what Load stages.
type Image struct {
	Kind   bootcfg.Kind
	Kernel File
	// Initrds are concatenated (each padded to 4 bytes) into one initrd.
	Initrds []File
	// ExtraInitrd is appended after the initrds (newc cpio, e.g. the disk key).
	// For a Multiboot image it is appended to the last module, which is the
	// dom0 initrd in a Xen entry (Qubes: module2 /vmlinuz, module2 /initramfs).
	// It is secret: never logged, never written to disk.
	ExtraInitrd []byte
	Cmdline     string
	Modules     []Module
}

// Loader stages an image and starts it.
type Loader interface {
	Load(img Image) error
	// Exec jumps into the loaded image; on success it does not return.
	Exec() error
}

// Caps on what is loaded: far above real kernels (Debian's vmlinuz is ~8 MiB,
// an initrd ~60 MiB, xen.gz inflates to ~4 MiB).
const (
	MaxKernelSize   = 256 << 20
	MaxInitrdSize   = 1 << 30
	MaxModules      = 64
	MaxCmdlineSize  = 64 << 10
	MaxInflatedSize = 128 << 20 // a gzip'd hypervisor or module after inflating
)

var (
	ErrTooLarge    = errors.New("larger than the cap")
	ErrUnsupported = errors.New("not supported")
	ErrNotLoaded   = errors.New("nothing loaded")
)

// FromEntry turns a boot entry into an image with every file read into
// memory by read, which gets the entry's paths as the boot configuration
// names them (relative to /boot). The boot flow reads through the signed
// manifest, so what is loaded is byte for byte what was verified; Dir reads
// a directory as it is.
func FromEntry(e bootcfg.Entry, read func(rel string) ([]byte, error)) (Image, error) {
	if len(e.Missing) > 0 {
		return Image{}, fmt.Errorf("entry %q names files that are not there: %v", e.Title, e.Missing)
	}
	img := Image{Kind: e.Kind, Cmdline: e.Cmdline}
	file := func(rel string) (File, error) {
		b, err := read(rel)
		if b == nil {
			// An empty file is empty data: nil Data would make the
			// loader open Path, relative to glint's working directory.
			b = []byte{}
		}
		return File{Path: rel, Data: b}, err
	}
	var err error
	if img.Kernel, err = file(e.Kernel); err != nil {
		return img, err
	}
	for _, p := range e.Initrds {
		f, err := file(p)
		if err != nil {
			return img, err
		}
		img.Initrds = append(img.Initrds, f)
	}
	for _, m := range e.Modules {
		f, err := file(m.Path)
		if err != nil {
			return img, err
		}
		img.Modules = append(img.Modules, Module{File: f, Cmdline: m.Cmdline, NoUnzip: m.NoUnzip})
	}
	return img, img.check()
}

// Dir reads an entry's files from dir as they are, unverified (tests, and
// tools that load what a directory holds).
func Dir(dir string) func(rel string) ([]byte, error) {
	return func(rel string) ([]byte, error) {
		return readFile(File{Path: filepath.Join(dir, filepath.FromSlash(rel))}, MaxInitrdSize)
	}
}

func (img *Image) check() error {
	if img.Kernel.Path == "" && img.Kernel.Data == nil {
		return errors.New("image has no kernel")
	}
	if len(img.Cmdline) > MaxCmdlineSize {
		return fmt.Errorf("kernel command line: %d bytes: %w (%d)", len(img.Cmdline), ErrTooLarge, MaxCmdlineSize)
	}
	if len(img.Modules) > MaxModules {
		return fmt.Errorf("%d modules: %w (%d)", len(img.Modules), ErrTooLarge, MaxModules)
	}
	switch img.Kind {
	case bootcfg.Linux:
		if len(img.Modules) > 0 {
			return errors.New("a Linux image has no modules")
		}
	case bootcfg.Multiboot2, bootcfg.Multiboot:
		if len(img.Initrds) > 0 {
			return errors.New("a Multiboot image carries its initrd as a module, not as Initrds")
		}
		// Xen gives dom0 the first module as its kernel and the second as its
		// initrd (docs/misc/multiboot.txt in Xen's tree): the extra cpio can
		// only ride on a module after the first.
		if len(img.ExtraInitrd) > 0 && len(img.Modules) < 2 {
			return errors.New("the disk key goes into the dom0 initrd (the last module), and this Multiboot entry has no module after the dom0 kernel: add the initrd as module2")
		}
	default:
		return fmt.Errorf("image kind %v: %w", img.Kind, ErrUnsupported)
	}
	return nil
}

// readFile returns f's bytes, refusing more than limit.
func readFile(f File, limit int64) ([]byte, error) {
	if f.Data != nil {
		if int64(len(f.Data)) > limit {
			return nil, fmt.Errorf("%s: %d bytes: %w (%d)", f.name(), len(f.Data), ErrTooLarge, limit)
		}
		return f.Data, nil
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes: %w (%d)", f.Path, st.Size(), ErrTooLarge, limit)
	}
	buf := make([]byte, st.Size())
	if _, err := fh.ReadAt(buf, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return buf, nil
}

func (f File) name() string {
	if f.Path != "" {
		return f.Path
	}
	return "(in memory)"
}
