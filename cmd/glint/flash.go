package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/rom"
)

func init() {
	register(command{name: "flash", summary: "write a firmware image (or update bundle) to the flash chip: checks, backup, write, verify",
		usage: "[--programmer P] [--backup-dir D] [--clean] [--dry-run] IMAGE", run: runFlash})
	register(command{name: "flash backup", summary: "read the flash chip twice, compare, and keep the image with its sha256",
		usage: "[--programmer P] [--backup-dir D]", run: runFlashBackup})
	register(command{name: "flash restore", summary: "write a kept backup back to the flash chip (its sha256 is checked first)",
		usage: "[--programmer P] [--dry-run] BACKUP", run: runFlashRestore})
	register(command{name: "flash verify", summary: "compare the flash chip with an image (finds a partial write)",
		usage: "[--programmer P] IMAGE", run: runFlashVerify})
}

// flashFlags are the options every flash verb takes.
type flashFlags struct {
	programmer string
	chip       string
	backupDir  string
	flashrom   string
	dryRun     bool
}

func addFlashFlags(fs *flag.FlagSet, f *flashFlags) {
	fs.StringVar(&f.programmer, "programmer", "internal",
		"flashrom programmer: internal (this machine's own flash), ch341a_spi (a CH341A with a SOIC-8 clip), or any flashrom -p value")
	fs.StringVar(&f.chip, "chip", "", "flash chip name (flashrom -c), when the probe finds several definitions")
	fs.StringVar(&f.backupDir, "backup-dir", "glint-backups", "directory for backups of the chip (created; backups are never overwritten)")
	fs.StringVar(&f.flashrom, "flashrom", "", "path of the flashrom binary (default: from $PATH)")
}

func (f *flashFlags) device() *flash.Flashrom {
	return &flash.Flashrom{Programmer: flash.Programmer(f.programmer), Chip: f.chip, Run: flash.Exec{Path: f.flashrom}}
}

// flashContext is cancelled by SIGINT/SIGTERM only between steps that
// have not touched the chip: flashrom itself ignores nothing, so the
// signal is caught here and the owner told to wait.
func flashContext(e *env) (context.Context, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for range ch {
			fmt.Fprintln(e.stderr, "glint flash: interrupt ignored while the flash chip is in use; wait for the step to finish")
		}
	}()
	return context.Background(), func() { signal.Stop(ch); close(ch) }
}

func runFlash(e *env, args []string) error {
	fs := commandFlags(e, "flash")
	var f flashFlags
	addFlashFlags(fs, &f)
	fs.BoolVar(&f.dryRun, "dry-run", false, "run every read-only step and show the write without running it")
	clean := fs.Bool("clean", false, "write the image as it is: do not carry the owner's files (glint/*) from the current firmware")
	first := fs.Bool("first-install", false, "allow replacing firmware glint cannot identify (the vendor's BIOS, first installation)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint flash [options] IMAGE (see glint flash -h)")
	}
	path := fs.Arg(0)
	image, err := readImageFile(path)
	if err != nil {
		return err
	}
	ctx, stop := flashContext(e)
	defer stop()
	u := &flash.Update{
		Device: f.device(), Image: image, Source: path, BackupDir: f.backupDir,
		Clean: *clean, FirstInstall: *first, DryRun: f.dryRun, Log: e.stdout,
	}
	res, err := u.Run(ctx)
	if err != nil {
		if flash.IsNotWritten(err) {
			return fmt.Errorf("flash refused, the chip was not touched: %w", err)
		}
		return err
	}
	switch {
	case f.dryRun:
		fmt.Fprintln(e.stdout, "dry run finished: every check passed; nothing was written.")
	case !res.Written:
		fmt.Fprintln(e.stdout, "nothing to do: the chip already holds this image.")
	default:
		fmt.Fprintf(e.stdout, "done: the new firmware is on the chip. Keep the backup %s until the machine has booted it.\n", res.Backup.Path)
	}
	return nil
}

func runFlashBackup(e *env, args []string) error {
	fs := commandFlags(e, "flash backup")
	var f flashFlags
	addFlashFlags(fs, &f)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("usage: glint flash backup [--programmer P] [--backup-dir D]")
	}
	ctx, stop := flashContext(e)
	defer stop()
	dev := f.device()
	logf := func(format string, a ...any) { fmt.Fprintf(e.stdout, format+"\n", a...) }
	logf("find the chip: %s", dev.CommandLine("probe", "", flash.WholeChip))
	chip, err := dev.Probe(ctx)
	if err != nil {
		return err
	}
	logf("   found %s", chip)
	work, err := os.MkdirTemp("", "glint-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	data, err := flash.ReadTwice(ctx, dev, work, chip.Size, logf)
	if err != nil {
		return err
	}
	b, err := flash.KeepBackup(f.backupDir, chip.Name, data, time.Now())
	if err != nil {
		return err
	}
	logf("backup kept: %s", b)
	if board, err := flash.BoardOfBytes(data); err == nil {
		logf("it holds coreboot firmware for %s", board)
	} else {
		logf("it holds firmware glint cannot identify as coreboot (the vendor's, or another)")
	}
	return nil
}

func runFlashRestore(e *env, args []string) error {
	fs := commandFlags(e, "flash restore")
	var f flashFlags
	addFlashFlags(fs, &f)
	fs.BoolVar(&f.dryRun, "dry-run", false, "check the backup and the chip, show the write without running it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint flash restore [--programmer P] BACKUP")
	}
	ctx, stop := flashContext(e)
	defer stop()
	if err := flash.Restore(ctx, f.device(), fs.Arg(0), "", f.dryRun, e.stdout); err != nil {
		return err
	}
	if !f.dryRun {
		fmt.Fprintln(e.stdout, "done: the chip holds the backup again.")
	}
	return nil
}

func runFlashVerify(e *env, args []string) error {
	fs := commandFlags(e, "flash verify")
	var f flashFlags
	addFlashFlags(fs, &f)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint flash verify [--programmer P] IMAGE")
	}
	image, err := readImageFile(fs.Arg(0))
	if err != nil {
		return err
	}
	ctx, stop := flashContext(e)
	defer stop()
	err = flash.VerifyChip(ctx, f.device(), image, "")
	var mm *flash.MismatchError
	if errors.As(err, &mm) {
		return &exitError{code: 1, err: fmt.Errorf("the chip does NOT hold %s: %w; if a write was interrupted, restore the backup (glint flash restore)", fs.Arg(0), err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "the chip holds %s\n", fs.Arg(0))
	return nil
}

// readImageFile reads a firmware image, refusing anything larger than a
// flash chip before reading it.
func readImageFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > rom.MaxImageSize {
		return nil, fmt.Errorf("%s: %d bytes is larger than any flash chip (%d): is this a firmware image?", path, st.Size(), rom.MaxImageSize)
	}
	return os.ReadFile(path)
}
