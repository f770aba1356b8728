package flash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DiskChip is the emulated laptop's flash chip. QEMU's q35 machine has no
// SPI controller that flashrom could drive, so the bench (e2e/) gives the
// guest a virtio disk whose bytes are the chip, marked with the serial
// DiskChipSerial, and boots what glint wrote there as the next power-on's
// firmware (-bios). Everything above the chip runs as on a real machine
// (Update: two reads compared, the backup, the write, the read-back); only
// the chip is emulated, as flashrom's dummy programmer emulates one in the
// workstation tests. On real hardware no disk carries the serial and
// glint uses flashrom.
type DiskChip struct {
	// Path is the block device (/dev/vdc).
	Path string
}

// DiskChipSerial is the virtio serial of the emulated chip's disk.
const DiskChipSerial = "glint-flash"

// FindDiskChip returns the emulated chip's block device, looking at the
// serials under sysBlock (/sys/block).
func FindDiskChip(sysBlock string) (*DiskChip, bool) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, false
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysBlock, e.Name(), "serial"))
		if err == nil && strings.TrimSpace(string(b)) == DiskChipSerial {
			return &DiskChip{Path: filepath.Join("/dev", e.Name())}, true
		}
	}
	return nil, false
}

func (d *DiskChip) size() (int64, error) {
	f, err := os.Open(d.Path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if n <= 0 || n > MaxChipSize {
		return 0, fmt.Errorf("%s: %d bytes is no flash chip size", d.Path, n)
	}
	return n, nil
}

// Probe reports the emulated chip.
func (d *DiskChip) Probe(ctx context.Context) (*Chip, error) {
	n, err := d.size()
	if err != nil {
		return nil, err
	}
	return &Chip{Vendor: "QEMU", Name: "emulated flash (virtio disk)", Size: n, Bus: "virtio", On: d.Path}, nil
}

// Read copies the chip into path.
func (d *DiskChip) Read(ctx context.Context, path string) error {
	n, err := d.size()
	if err != nil {
		return err
	}
	f, err := os.Open(d.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	data := make([]byte, n)
	if _, err := io.ReadFull(f, data); err != nil {
		return fmt.Errorf("read %s: %w", d.Path, err)
	}
	return os.WriteFile(path, data, 0o600)
}

// Write writes the whole image to the chip and syncs it.
func (d *DiskChip) Write(ctx context.Context, image string, region Region) error {
	if region != WholeChip {
		return errors.New("the emulated chip is written whole")
	}
	data, err := os.ReadFile(image)
	if err != nil {
		return err
	}
	n, err := d.size()
	if err != nil {
		return err
	}
	if int64(len(data)) != n {
		return fmt.Errorf("%w: image %d bytes, chip %d", ErrWrongSize, len(data), n)
	}
	f, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", d.Path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Verify compares the chip with image.
func (d *DiskChip) Verify(ctx context.Context, image string, region Region) error {
	want, err := os.ReadFile(image)
	if err != nil {
		return err
	}
	f, err := os.Open(d.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(f, got); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return ErrVerify
	}
	return nil
}

// Internal: the emulated chip is written whole, as an external programmer
// writes a chip.
func (d *DiskChip) Internal() bool { return false }

// CommandLine describes a step for the owner's log.
func (d *DiskChip) CommandLine(op, file string, region Region) string {
	switch op {
	case "probe":
		return "the emulated flash chip " + d.Path
	case "read":
		return fmt.Sprintf("read the emulated flash chip %s into %s", d.Path, file)
	case "write":
		return fmt.Sprintf("write %s to the emulated flash chip %s", file, d.Path)
	}
	return fmt.Sprintf("%s %s %s", op, d.Path, file)
}
