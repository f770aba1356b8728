package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
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
	register(command{name: "flash approve", summary: "TPM 2.0: sign the PCR values an image will produce, so the TOTP secret unseals after flashing it",
		usage: "--approval-key FPR | --approval-key-file KEY.pem  IMAGE", run: runFlashApprove})
	register(command{name: "flash bundle create", summary: "publisher: sign a firmware image into an update bundle (gpg)",
		usage: "[--gpg-home H] [--key ID] [--release R] -o OUT IMAGE", run: runBundleCreate})
	register(command{name: "flash bundle verify", summary: "check an update bundle's checksum, signature and board without flashing",
		usage: "--publisher-key FILE.asc | --image CURRENT.rom  BUNDLE", run: runBundleVerify})
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
	var ak approvalFlags
	ak.add(fs)
	pubKey := fs.String("publisher-key", "", "verify an update bundle with this OpenPGP key (default: the publisher key in the current firmware, CBFS "+flash.PublisherKeyFile+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint flash [options] IMAGE|BUNDLE (see glint flash -h)")
	}
	path := fs.Arg(0)
	data, err := readImageFile(path)
	if err != nil {
		return err
	}
	u := &flash.Update{
		Device: f.device(), Source: path, BackupDir: f.backupDir,
		Clean: *clean, FirstInstall: *first, DryRun: f.dryRun, Log: e.stdout,
	}
	if flash.IsBundle(data) {
		if u.Bundle, err = flash.ParseBundle(data); err != nil {
			return fmt.Errorf("%w: %s: %w", flash.ErrNotWritten, path, err)
		}
		if *pubKey != "" {
			if u.PublisherKeys, err = readKeyFile(*pubKey); err != nil {
				return err
			}
		}
	} else {
		if *pubKey != "" {
			return usageErrorf("--publisher-key checks update bundles; %s is a plain image", path)
		}
		u.Image = data
	}
	if signer := ak.signer(); signer != nil {
		dir := ak.dir(e)
		u.BeforeWrite = func(_ context.Context, final []byte) error {
			return approveImage(e, final, signer, dir)
		}
	}
	ctx, stop := flashContext(e)
	defer stop()
	res, err := u.Run(ctx)
	if err != nil {
		return err
	}
	switch {
	case f.dryRun:
		fmt.Fprintln(e.stdout, "dry run finished: every check passed; nothing was written.")
	case !res.Wrote:
		fmt.Fprintln(e.stdout, "nothing to do: the chip already holds this image.")
	default:
		fmt.Fprintf(e.stdout, "done: the new firmware is on the chip. Keep the backup %s until the machine has booted it.\n", res.Backup.Path)
		fmt.Fprintf(e.stdout, "To check the chip later: glint flash verify --programmer %s %s\n", f.programmer, res.Written.Path)
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
	if board, err := flash.BoardOf(data); err == nil {
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
	if st.Size() > flash.MaxBundleSize {
		return nil, fmt.Errorf("%s: %d bytes is larger than any flash chip (%d): is this a firmware image?", path, st.Size(), flash.MaxBundleSize)
	}
	return os.ReadFile(path)
}

func readKeyFile(path string) (openpgp.EntityList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	el, err := manifest.ReadKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return el, nil
}

func runBundleCreate(e *env, args []string) error {
	fs := commandFlags(e, "flash bundle create")
	home := fs.String("gpg-home", "", "GNUPGHOME of the publisher's key (default: gpg's)")
	key := fs.String("key", "", "the publisher's key id (default: gpg's default key)")
	release := fs.String("release", "", "release label shown to the owner (at most 64 characters)")
	board := fs.String("board", "", "the board, as glint names it (default: read from the image)")
	out := fs.String("o", "", "the bundle file to write")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		return usageErrorf("usage: glint flash bundle create [--gpg-home H] [--key ID] [--release R] -o OUT IMAGE")
	}
	image, err := readImageFile(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := flash.BoardOf(image)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if *board == "" {
		*board = b.String()
	} else if *board != b.String() {
		return fmt.Errorf("--board %q, but %s is built for %q", *board, fs.Arg(0), b)
	}
	raw, err := flash.BuildBundle(image, *board, *release, &manifest.GPG{Home: *home, KeyID: *key})
	if err != nil {
		return err
	}
	if err := safefile.Write(*out, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: update bundle for %s, release %q, image sha256 %x, %d bytes\n", *out, *board, *release, sha256.Sum256(image), len(raw))
	return nil
}

func runBundleVerify(e *env, args []string) error {
	fs := commandFlags(e, "flash bundle verify")
	var ak approvalFlags
	ak.add(fs)
	pubKey := fs.String("publisher-key", "", "the publisher's OpenPGP public key")
	current := fs.String("image", "", "a firmware image holding the publisher key (CBFS glint/"+flash.PublisherKeyFile+"), e.g. a backup of this machine's chip")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (*pubKey == "") == (*current == "") {
		return usageErrorf("usage: glint flash bundle verify --publisher-key FILE.asc | --image CURRENT.rom  BUNDLE")
	}
	data, err := readImageFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var keys openpgp.EntityList
	var cur []byte
	if *pubKey != "" {
		if keys, err = readKeyFile(*pubKey); err != nil {
			return err
		}
	} else {
		if cur, err = readImageFile(*current); err != nil {
			return err
		}
		if keys, err = flash.PublisherKeys(cur); err != nil {
			return err
		}
	}
	b, err := flash.ParseBundle(data)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	signer, at, err := b.Verify(keys)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	board, err := flash.BoardOf(b.Image)
	if err != nil || board.String() != b.Board {
		return &exitError{code: 1, err: fmt.Errorf("%w: the bundle says %q, its image is for %q (%v)", flash.ErrWrongBoard, b.Board, board, err)}
	}
	if cur != nil {
		if cb, err := flash.BoardOf(cur); err == nil && !cb.Same(board) {
			return &exitError{code: 1, err: fmt.Errorf("%w: %s is for %q, the bundle for %q", flash.ErrWrongBoard, *current, cb, board)}
		}
	}
	fmt.Fprintf(e.stdout, "bundle OK: release %q for %s, image sha256 %x (%d bytes), signed %s by %X\n",
		b.Release, b.Board, b.SHA256, len(b.Image), at.UTC().Format(time.RFC3339), signer.PrimaryKey.Fingerprint)
	return nil
}

// approvalFlags choose the owner's approval key (docs/firmware-updates.md).
type approvalFlags struct {
	fpr, file, home, approvals string
}

func (a *approvalFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&a.fpr, "approval-key", "", "TPM 2.0: approve the new image's PCR values with this gpg key (fingerprint of an RSA-2048 or NIST P-256 signing key, in gpg or on a card)")
	fs.StringVar(&a.file, "approval-key-file", "", "TPM 2.0: approve with this PEM private key (P-256 or RSA) instead of gpg")
	fs.StringVar(&a.home, "gpg-home", "", "GNUPGHOME of the approval key (default: gpg's)")
	fs.StringVar(&a.approvals, "approvals", "", "where approvals are kept (default: BOOT/glint/approvals)")
}

func (a *approvalFlags) signer() approval.Signer {
	switch {
	case a.file != "":
		return &approval.KeyFile{Path: a.file}
	case a.fpr != "":
		return &approval.GPGAgent{Home: a.home, KeyID: a.fpr}
	}
	return nil
}

func (a *approvalFlags) dir(e *env) string {
	if a.approvals != "" {
		return a.approvals
	}
	return filepath.Join(e.bootDir, "glint", "approvals")
}

// approveImage signs the PCR values image will produce and keeps the
// approvals where the boot flow finds them (sealed.ApproveImage, which the
// boot menu's update item runs too). The TPM (for the approval epoch
// counter) is opened only when a secret is bound to it.
func approveImage(e *env, image []byte, s approval.Signer, dir string) error {
	open := func() (tpm.TPM, func(), error) {
		t, err := tpm.Open(e.tpmSpec)
		if err != nil {
			return nil, nil, fmt.Errorf("open TPM %s: %w", e.tpmSpec, err)
		}
		return t, func() { t.Close() }, nil
	}
	return sealed.ApproveImage(e.bootDir, dir, image, s, open, func(format string, a ...any) {
		fmt.Fprintf(e.stdout, format+"\n", a...)
	})
}

func runFlashApprove(e *env, args []string) error {
	fs := commandFlags(e, "flash approve")
	var ak approvalFlags
	ak.add(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s := ak.signer()
	if fs.NArg() != 1 || s == nil {
		return usageErrorf("usage: glint flash approve --approval-key FPR | --approval-key-file KEY.pem  IMAGE")
	}
	image, err := readImageFile(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "approve the PCR values %s will produce for the TOTP secret:\n", fs.Arg(0))
	return approveImage(e, image, s, ak.dir(e))
}
