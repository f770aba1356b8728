package reown

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/safefile"
)

// Firmware is the machine's flash chip as the wizard needs it: read the
// image that is there, write the personalised one.
type Firmware interface {
	// String names the chip or file for the owner.
	String() string
	// Read returns the whole image.
	Read(ctx context.Context) ([]byte, error)
	// Write replaces the image, keeping what was there and verifying what
	// was written. logf gets one line per step.
	Write(ctx context.Context, image []byte, logf func(format string, a ...any)) error
}

// Flashrom is the chip behind flashrom (internal/flash): the machine's own
// SPI controller ("internal"), an external programmer, or flashrom's dummy
// programmer in tests. Every write goes through flash.Update: the chip is
// read twice and compared, the old contents kept in BackupDir, only the
// BIOS region written when flashing internally, the result read back.
type Flashrom struct {
	Device    flash.Device
	BackupDir string
	// WorkDir holds the temporary read-back files (default os.TempDir()).
	WorkDir string
}

func (f *Flashrom) String() string {
	return "flash chip via " + f.Device.CommandLine("probe", "", flash.WholeChip)
}

// Read probes the chip and reads it twice (flash.ReadTwice).
func (f *Flashrom) Read(ctx context.Context) ([]byte, error) {
	chip, err := f.Device.Probe(ctx)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(f.WorkDir, "glint-own-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	return flash.ReadTwice(ctx, f.Device, work, chip.Size, func(string, ...any) {})
}

// Write writes image with flash.Update (Clean: the image already carries
// the new owner's files, nothing is carried from the old one).
func (f *Flashrom) Write(ctx context.Context, image []byte, logf func(format string, a ...any)) error {
	if f.BackupDir == "" {
		return errors.New("no directory for the backup of the chip's current contents (a USB drive, or /boot)")
	}
	u := &flash.Update{Device: f.Device, Image: image, Source: "the re-ownership wizard", BackupDir: f.BackupDir,
		Clean: true, Log: lineWriter(logf), WorkDir: f.WorkDir}
	res, err := u.Run(ctx)
	if err != nil {
		return err
	}
	if res.Backup != nil {
		logf("the chip's previous contents are kept in %s", res.Backup.Path)
	}
	return nil
}

// ImageFile is a firmware image file instead of a chip: a provisioning
// station personalises the image it will flash, or a test. Written
// atomically.
type ImageFile struct {
	Path string
}

func (f *ImageFile) String() string { return "image file " + f.Path }

// maxImageFile bounds the image read: the largest flash chips glint targets.
const maxImageFile = flash.MaxChipSize

// Read reads the file.
func (f *ImageFile) Read(ctx context.Context) ([]byte, error) {
	return safefile.ReadCapped(f.Path, maxImageFile)
}

// Write replaces the file atomically.
func (f *ImageFile) Write(ctx context.Context, image []byte, logf func(format string, a ...any)) error {
	if err := safefile.Write(f.Path, image, 0o644); err != nil {
		return err
	}
	logf("wrote %s (%d bytes)", f.Path, len(image))
	return nil
}

// lineWriter turns flash's log lines into logf calls.
func lineWriter(logf func(format string, a ...any)) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		s := string(p)
		for len(s) > 0 {
			line := s
			if i := indexNL(s); i >= 0 {
				line, s = s[:i], s[i+1:]
			} else {
				s = ""
			}
			if line != "" {
				logf("%s", line)
			}
		}
		return len(p), nil
	})
}

type writerFunc func(p []byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

func indexNL(s string) int {
	for i := range s {
		if s[i] == '\n' {
			return i
		}
	}
	return -1
}

// describeFlashError adds the owner's next step to a failed write.
func describeFlashError(err error) string {
	switch {
	case errors.Is(err, flash.ErrWriteProtected):
		return fmt.Sprintf("%v\n  The flash is locked. In glint's boot menu the wizard runs before glint locks it; from the OS, or when the firmware itself locks it, flash with an external programmer (docs/flashing.md) and run the wizard again: it continues where it stopped.", err)
	case flash.IsNotWritten(err):
		return fmt.Sprintf("%v\n  Nothing was written; the machine still runs its old firmware.", err)
	}
	return err.Error()
}
