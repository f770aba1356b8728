// Package physmem reads physical memory (/dev/mem) for the two things glint
// needs from it on a coreboot machine: the flash chip mapped below 4 GiB
// (owner files in CBFS) and coreboot's tables and cbmem (the measurement log).
//
// read(2) on /dev/mem only serves addresses inside the kernel's direct map of
// RAM (valid_phys_addr_range); the flash window is MMIO above it, and read
// fails there with EFAULT ("bad address"). mmap(2) serves both, within what
// STRICT_DEVMEM allows (the first MiB, and everything that is not System
// RAM), so Mem maps each requested window read-only, copies it and unmaps.
package physmem

import (
	"fmt"
	"io"
	"os"
)

// maxWindow caps one read: the largest flash chip glint reads is 32 MiB.
const maxWindow = 64 << 20

// Mem is an io.ReaderAt over physical memory.
type Mem struct {
	f *os.File
}

// Open opens /dev/mem (root only).
func Open() (*Mem, error) { return OpenPath("/dev/mem") }

// OpenPath opens a physical-memory device file.
func OpenPath(path string) (*Mem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("physical memory: %w (glint must run as root)", err)
	}
	return &Mem{f: f}, nil
}

// Close releases the device.
func (m *Mem) Close() error { return m.f.Close() }

// ReadAt copies len(p) bytes of physical memory starting at off.
func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || len(p) > maxWindow {
		return 0, fmt.Errorf("physical memory: window of %d bytes at %#x refused", len(p), off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := m.mmapRead(p, off)
	if err == nil {
		return n, nil
	}
	// Some kernels refuse mmap of low RAM but serve read: fall back.
	n2, err2 := m.f.ReadAt(p, off)
	if n2 == len(p) {
		return n2, nil
	}
	if err2 == nil {
		err2 = io.ErrUnexpectedEOF
	}
	return n2, fmt.Errorf("physical memory at %#x: mmap: %v; read: %w", off, err, err2)
}
