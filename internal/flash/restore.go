package flash

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// DryRun wraps a Device: probes and reads run (they change nothing), writes
// are only shown.
type DryRun struct {
	Device
	Log io.Writer
}

func (d *DryRun) Write(ctx context.Context, image string, region Region) error {
	if d.Log != nil {
		fmt.Fprintf(d.Log, "   [dry run: not run]\n")
	}
	return nil
}

// Restore writes a kept backup back to the chip: the backup's checksum is
// checked first, then its size against the chip, then it is written (the
// whole chip externally; the BIOS region internally) and read back.
func Restore(ctx context.Context, dev Device, backupPath, workDir string, dryRun bool, log io.Writer) error {
	logf := func(format string, a ...any) {
		if log != nil {
			fmt.Fprintf(log, format+"\n", a...)
		}
	}
	if dryRun {
		dev = &DryRun{Device: dev, Log: log}
		logf("DRY RUN: nothing is written to the chip.")
	}
	b, err := CheckBackup(backupPath)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	logf("1. backup checked: %s", b)
	data, err := readCapped(b.Path, b.Size)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	if sha256.Sum256(data) != b.SHA256 {
		return fmt.Errorf("%w: %s changed while it was read", ErrNotWritten, b.Path)
	}
	logf("2. find the chip: %s", dev.CommandLine("probe", "", WholeChip))
	chip, err := dev.Probe(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	logf("   found %s", chip)
	if b.Size != chip.Size {
		return fmt.Errorf("%w: %w: the backup is %d bytes, the %s holds %d: it was read from another chip", ErrNotWritten, ErrWrongSize, b.Size, chip.Name, chip.Size)
	}
	work, err := os.MkdirTemp(workDir, "glint-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Internally only the BIOS region can be written; the backup's own
	// descriptor says where it is. The chip's descriptor is not read: a
	// failed write may have damaged what the chip says.
	region, span := WholeChip, Span{Offset: 0, Size: b.Size}
	if dev.Internal() {
		if s, ok, err := BIOSRegionOf(data); err != nil {
			return fmt.Errorf("%w: the backup's %v", ErrNotWritten, err)
		} else if ok {
			region, span = BIOSRegion, s
		}
	}
	logf("3. write the backup: %s", dev.CommandLine("-w", b.Path, region))
	if err := dev.Write(ctx, b.Path, region); err != nil {
		return fmt.Errorf("restoring %s failed: %w; try again (flashrom writes only the blocks that still differ); if it keeps failing, flash externally with a CH341A (docs/flashing.md)", b.Path, err)
	}
	if dryRun {
		return nil
	}
	logf("4. read back and compare")
	if err := CompareChip(ctx, dev, work, data, span); err != nil {
		return fmt.Errorf("after restoring %s: %w", b.Path, err)
	}
	logf("   the chip holds the backup again (sha256 %x)", b.SHA256)
	return nil
}

// VerifyChip reads the chip and compares it with image: the check to run
// after an interrupted write (a *MismatchError says where it differs).
func VerifyChip(ctx context.Context, dev Device, image []byte, workDir string) error {
	chip, err := dev.Probe(ctx)
	if err != nil {
		return err
	}
	if int64(len(image)) != chip.Size {
		return fmt.Errorf("%w: the image is %d bytes, the %s holds %d", ErrWrongSize, len(image), chip.Name, chip.Size)
	}
	span := Span{Offset: 0, Size: chip.Size}
	if dev.Internal() {
		if s, ok, err := BIOSRegionOf(image); err != nil {
			return err
		} else if ok {
			span = s
		}
	}
	work, err := os.MkdirTemp(workDir, "glint-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	return CompareChip(ctx, dev, work, image, span)
}

// IsNotWritten reports whether err is a refusal before the chip was touched.
func IsNotWritten(err error) bool { return errors.Is(err, ErrNotWritten) }

func sortedNames(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
