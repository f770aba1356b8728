package flash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/rom"
)

// Device is what the flashing steps need from the chip. *Flashrom is the
// real one; DryRun wraps one so that nothing is written.
type Device interface {
	Probe(ctx context.Context) (*Chip, error)
	Read(ctx context.Context, path string) error
	Write(ctx context.Context, image string, region Region) error
	Verify(ctx context.Context, image string, region Region) error
	// Internal reports whether this is the machine's own SPI controller
	// (descriptor and ME locked: only the BIOS region is written).
	Internal() bool
	// CommandLine shows a step's command for the owner's log.
	CommandLine(op, file string, region Region) string
}

// Internal reports whether the programmer is the machine's own controller.
func (f *Flashrom) Internal() bool { return f.Programmer.Internal() }

// MaxChipSize bounds a chip image: the largest SPI flash parts on laptops
// and servers glint targets are 64 MiB.
const MaxChipSize = rom.MaxImageSize

var (
	// ErrWrongSize: the image is not the size of the chip.
	ErrWrongSize = errors.New("the image is not the size of the flash chip")
	// ErrWrongBoard: the image was built for another board.
	ErrWrongBoard = errors.New("the image was built for another board")
	// ErrUnstableRead: two reads of the chip differ (loose clip, bad wire).
	ErrUnstableRead = errors.New("two reads of the chip differ")
	// ErrLayout: the image's flash descriptor does not match the chip's.
	ErrLayout = errors.New("the image's flash layout does not match the chip")
	// ErrOwnerFiles: the owner's files cannot be carried into the image.
	ErrOwnerFiles = errors.New("owner files")
	// ErrNotWritten marks an update refused before the chip was touched.
	ErrNotWritten = errors.New("refused, nothing was written to the chip")
)

// Update is one firmware update: every check first, the backup kept, then
// the write and its verification. The zero value is not usable: Device,
// Image and BackupDir are required.
type Update struct {
	Device Device
	// Image is the new firmware image (from a verified bundle, or a file
	// the owner chose).
	Image  []byte
	Source string // where Image came from, for the log
	// Bundle, if set, is a parsed update bundle: its image is written, and
	// only after its signature verifies with PublisherKeys (or, if none,
	// with the publisher key in the chip's current firmware, CBFS
	// glint/publisher.asc) and its board is the chip's.
	Bundle        *Bundle
	PublisherKeys openpgp.EntityList
	// BackupDir keeps the chip's previous contents (never overwritten).
	BackupDir string
	// Clean writes Image as it is; otherwise the owner's CBFS files
	// (glint/*) are carried from the chip's current image into it.
	Clean bool
	// FirstInstall allows replacing firmware glint cannot identify (the
	// vendor's BIOS, first external flash); board checks need both sides.
	FirstInstall bool
	// DryRun runs every read-only step and shows the writes without
	// running them; nothing is kept or written.
	DryRun bool
	// Carry puts the owner files of current into next (both whole chip
	// images) and returns the result and the names carried. nil means
	// CarryOwnerFiles (internal/rom's CBFS writing).
	Carry func(current, next []byte) ([]byte, []string, error)
	// BeforeWrite runs after every check passed and before the chip is
	// touched, with the final image: re-seal or approve the secrets for
	// the PCR values it will produce. An error stops the update.
	BeforeWrite func(ctx context.Context, final []byte) error
	// Log receives one line per step. nil discards.
	Log io.Writer
	// WorkDir holds the temporary read-back files (default os.TempDir()).
	WorkDir string
	Now     func() time.Time
}

// Result says what an update did.
type Result struct {
	Chip    *Chip
	Backup  *Backup // nil in a dry run
	Written *Backup // the image written, kept beside the backup (nil in a dry run)
	Board   rom.Board
	Region  Region
	Span    Span // the bytes written (the BIOS region or the whole chip)
	Carried []string
	Final   []byte // the image as written (owner files carried)
	Current []byte // the chip's contents before the update (both reads agreed)
	Wrote   bool
}

func (u *Update) logf(format string, a ...any) {
	if u.Log != nil {
		fmt.Fprintf(u.Log, format+"\n", a...)
	}
}

// Run performs the update.
func (u *Update) Run(ctx context.Context) (*Result, error) {
	if u.Bundle != nil {
		u.Image = u.Bundle.Image
	}
	if u.Device == nil || len(u.Image) == 0 || u.BackupDir == "" && !u.DryRun {
		return nil, errors.New("flash: update needs a device, an image and a backup directory")
	}
	now := time.Now
	if u.Now != nil {
		now = u.Now
	}
	dev := u.Device
	if u.DryRun {
		dev = &DryRun{Device: u.Device, Log: u.Log}
		u.logf("DRY RUN: every read-only step runs; nothing is written to the chip, the TPM or the backup directory.")
	}
	res := &Result{}
	work, err := os.MkdirTemp(u.WorkDir, "glint-flash-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	// 1. The new image must be a coreboot image glint can read.
	u.logf("1. check the new image %s (%d bytes, sha256 %x)", u.Source, len(u.Image), sha256.Sum256(u.Image))
	newBoard, err := BoardOf(u.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a coreboot image glint can identify: %v", ErrNotWritten, u.Source, err)
	}
	u.logf("   built for: %s", newBoard)
	res.Board = newBoard
	if u.Bundle != nil {
		u.logf("   from an update bundle: release %q, for %q, image sha256 matches the bundle's", u.Bundle.Release, u.Bundle.Board)
		if u.Bundle.Board != newBoard.String() {
			return nil, fmt.Errorf("%w: %w: the bundle says it is for %q but its image is built for %q", ErrNotWritten, ErrWrongBoard, u.Bundle.Board, newBoard)
		}
	}

	// 2. Probe.
	u.logf("2. find the chip: %s", dev.CommandLine("probe", "", WholeChip))
	chip, err := dev.Probe(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	res.Chip = chip
	u.logf("   found %s", chip)
	if int64(len(u.Image)) != chip.Size {
		return nil, fmt.Errorf("%w: %w: the image is %d bytes, the %s holds %d; is this image for this machine?", ErrNotWritten, ErrWrongSize, len(u.Image), chip.Name, chip.Size)
	}

	// 3. Read twice and compare.
	u.logf("3. read the chip twice and compare the reads")
	current, err := ReadTwice(ctx, dev, work, chip.Size, u.logf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	res.Current = current

	// 4. The publisher's signature, with the key the current firmware
	// carries; then the board.
	if u.Bundle != nil {
		u.logf("4. check the bundle's signature and the board")
	} else {
		u.logf("4. check the board")
	}
	if u.Bundle != nil {
		keys, from := u.PublisherKeys, "the key given"
		if len(keys) == 0 {
			if keys, err = PublisherKeys(current); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
			}
			from = "the current firmware's " + rom.OwnerFilePrefix + PublisherKeyFile
		}
		signer, at, err := u.Bundle.Verify(keys)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
		}
		u.logf("   bundle signature verified: key %X (%s), signed %s, with %s", signer.PrimaryKey.Fingerprint, primaryName(signer), at.UTC().Format(time.RFC3339), from)
	}
	curBoard, berr := BoardOf(current)
	switch {
	case berr == nil && !curBoard.Same(newBoard):
		return nil, fmt.Errorf("%w: %w: the chip holds firmware for %q, the image is for %q", ErrNotWritten, ErrWrongBoard, curBoard, newBoard)
	case berr == nil:
		u.logf("   same board: the chip holds firmware for %s", curBoard)
	case !u.FirstInstall:
		return nil, fmt.Errorf("%w: the chip holds firmware glint cannot identify (%v); if this is the first installation over the vendor's firmware, pass --first-install", ErrNotWritten, berr)
	default:
		u.logf("   first installation: the chip's firmware is not coreboot (%v); the board cannot be compared", berr)
	}

	// 5. Region: internal flashing writes only the BIOS region.
	region, span, err := chooseRegion(dev.Internal(), current, u.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	res.Region, res.Span = region, span
	if region == BIOSRegion {
		u.logf("5. internal flashing: only the BIOS region 0x%x-0x%x is written (the descriptor and ME are locked)", span.Offset, span.Offset+span.Size-1)
	} else {
		u.logf("5. the whole chip is written (0x0-0x%x)", span.Size-1)
	}

	// 6. Owner files.
	final, carried, err := u.ownerFiles(current)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	res.Carried, res.Final = carried, final

	// 7. Backup.
	if u.DryRun {
		u.logf("7. keep the backup in %s (sha256 %x) [dry run: not kept]", u.BackupDir, sha256.Sum256(current))
	} else {
		b, err := KeepBackup(u.BackupDir, chip.Name, current, now())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
		}
		res.Backup = b
		u.logf("7. backup kept: %s", b)
	}
	if bytes.Equal(current[span.Offset:span.Offset+span.Size], final[span.Offset:span.Offset+span.Size]) {
		u.logf("   the chip already holds this image; nothing to write")
		return res, nil
	}
	if !u.DryRun {
		w, err := KeepWritten(u.BackupDir, chip.Name, final, now())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
		}
		res.Written = w
		u.logf("   the image to be written is kept too: %s", w.Path)
	}

	// 8. Secrets for the new PCR values, before the chip changes.
	if u.BeforeWrite == nil {
		u.logf("8. no approval key given: secrets sealed to the current PCR values will not unseal after this update (docs/firmware-updates.md)")
	} else {
		if u.DryRun {
			u.logf("8. re-seal or approve the secrets for the new image's PCR values [dry run: skipped]")
		} else {
			u.logf("8. prepare the secrets for the new image's PCR values")
			if err := u.BeforeWrite(ctx, final); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNotWritten, err)
			}
		}
	}

	// 9. Write (flashrom verifies what it wrote), then read back.
	finalPath := filepath.Join(work, "new.rom")
	if err := os.WriteFile(finalPath, final, 0o600); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotWritten, err)
	}
	u.logf("9. write: %s", dev.CommandLine("-w", finalPath, region))
	if err := dev.Write(ctx, finalPath, region); err != nil {
		return res, u.failed(err, res)
	}
	if u.DryRun {
		u.logf("10. read the chip back and compare with the image [dry run: skipped]")
		return res, nil
	}
	res.Wrote = true
	u.logf("10. read back and compare")
	if err := CompareChip(ctx, dev, work, final, span); err != nil {
		return res, u.failed(err, res)
	}
	u.logf("    the chip holds the new image (sha256 %x)", sha256.Sum256(final))
	return res, nil
}

// failed is the message when the chip may be half written.
func (u *Update) failed(err error, res *Result) error {
	msg := "do not power off or reboot"
	if res.Backup != nil {
		msg += fmt.Sprintf("; the previous firmware is kept in %s: run 'glint flash restore %s' (with the same --programmer) to put it back", res.Backup.Path, res.Backup.Path)
	}
	return fmt.Errorf("writing the chip failed and it may hold a partial image: %w\n%s", err, msg)
}

// ReadTwice reads the whole chip twice and returns the contents if both
// reads agree and have the chip's size.
func ReadTwice(ctx context.Context, dev Device, work string, size int64, logf func(string, ...any)) ([]byte, error) {
	var reads [2][]byte
	for i := range reads {
		p := filepath.Join(work, fmt.Sprintf("read%d.rom", i+1))
		logf("   read %d of 2: %s", i+1, dev.CommandLine("-r", p, WholeChip))
		if err := dev.Read(ctx, p); err != nil {
			return nil, err
		}
		b, err := readCapped(p, size)
		if err != nil {
			return nil, err
		}
		reads[i] = b
	}
	if !bytes.Equal(reads[0], reads[1]) {
		off, n := firstDiff(reads[0], reads[1])
		return nil, fmt.Errorf("%w: %d bytes differ, the first at 0x%x; check the clip (pin 1, firm grip) and the wires, then try again", ErrUnstableRead, n, off)
	}
	logf("   both reads agree (sha256 %x)", sha256.Sum256(reads[0]))
	return reads[0], nil
}

func readCapped(path string, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, min(size, MaxChipSize)+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != size {
		return nil, fmt.Errorf("flashrom read %d bytes from a %d-byte chip", len(b), size)
	}
	return b, nil
}

// CompareChip reads the chip once and compares the span with want; a
// mismatch is a *MismatchError (the partial image a power cut leaves).
func CompareChip(ctx context.Context, dev Device, work string, want []byte, span Span) error {
	p := filepath.Join(work, "readback.rom")
	defer os.Remove(p)
	if err := dev.Read(ctx, p); err != nil {
		return err
	}
	got, err := readCapped(p, int64(len(want)))
	if err != nil {
		return err
	}
	a, b := got[span.Offset:span.Offset+span.Size], want[span.Offset:span.Offset+span.Size]
	if !bytes.Equal(a, b) {
		off, n := firstDiff(a, b)
		return &MismatchError{First: span.Offset + off, Count: n, Span: span}
	}
	return nil
}

// MismatchError: the chip does not hold the expected image.
type MismatchError struct {
	First int64 // first differing byte (chip offset)
	Count int64 // number of differing bytes
	Span  Span
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%v: %d bytes differ in 0x%x-0x%x, the first at 0x%x", ErrVerify, e.Count, e.Span.Offset, e.Span.Offset+e.Span.Size-1, e.First)
}

func (e *MismatchError) Unwrap() error { return ErrVerify }

func firstDiff(a, b []byte) (first, count int64) {
	first = -1
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			if first < 0 {
				first = int64(i)
			}
			count++
		}
	}
	if len(a) != len(b) {
		if first < 0 {
			first = int64(n)
		}
		count += int64(max(len(a), len(b)) - n)
	}
	return first, count
}

// chooseRegion decides what is written: internal flashing of a chip with
// a descriptor writes only its BIOS region, which must sit where the
// image's own descriptor puts it.
func chooseRegion(internal bool, current, next []byte) (Region, Span, error) {
	whole := Span{Offset: 0, Size: int64(len(next))}
	curSpan, curIFD, err := BIOSRegionOf(current)
	if err != nil {
		return "", Span{}, fmt.Errorf("%w: the chip's %v", ErrLayout, err)
	}
	newSpan, newIFD, err := BIOSRegionOf(next)
	if err != nil {
		return "", Span{}, fmt.Errorf("%w: the image's %v", ErrLayout, err)
	}
	if !internal {
		return WholeChip, whole, nil
	}
	switch {
	case !curIFD && !newIFD:
		return WholeChip, whole, nil
	case curIFD && !newIFD:
		return "", Span{}, fmt.Errorf("%w: the chip has a flash descriptor and the image has none; internal flashing can only write the BIOS region of a full image built for this board", ErrLayout)
	case !curIFD && newIFD:
		return "", Span{}, fmt.Errorf("%w: the image has a flash descriptor and the chip has none; flash it externally", ErrLayout)
	case curSpan != newSpan:
		return "", Span{}, fmt.Errorf("%w: the chip's BIOS region is 0x%x+0x%x, the image's 0x%x+0x%x; flash the whole chip externally", ErrLayout, curSpan.Offset, curSpan.Size, newSpan.Offset, newSpan.Size)
	}
	return BIOSRegion, curSpan, nil
}

// ownerFiles carries the owner's files from the current image into the new
// one (unless Clean).
func (u *Update) ownerFiles(current []byte) ([]byte, []string, error) {
	if u.Clean {
		u.logf("6. --clean: the new image is written as it is; the owner files (%s*) of the current firmware are not carried", rom.OwnerFilePrefix)
		return u.Image, nil, nil
	}
	cur := OwnerFiles(current)
	if len(cur) == 0 {
		u.logf("6. the current firmware holds no owner files (%s*); nothing to carry", rom.OwnerFilePrefix)
		return u.Image, nil, nil
	}
	next := OwnerFiles(u.Image)
	if sameFiles(cur, next) {
		u.logf("6. the new image already holds the owner files of the current firmware: %s", strings.Join(sortedNames(cur), ", "))
		return u.Image, nil, nil
	}
	carry := u.Carry
	if carry == nil {
		carry = CarryOwnerFiles
	}
	final, carried, err := carry(current, u.Image)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the new image cannot take the owner files of the current firmware (%s): %v; personalize the image yourself (glint rom personalize) or pass --clean to drop them",
			ErrOwnerFiles, strings.Join(sortedNames(cur), ", "), err)
	}
	if len(final) != len(u.Image) {
		return nil, nil, fmt.Errorf("%w: carrying changed the image size from %d to %d", ErrOwnerFiles, len(u.Image), len(final))
	}
	if !sameFiles(cur, OwnerFiles(final)) {
		return nil, nil, fmt.Errorf("%w: after carrying, the image's owner files differ from the current firmware's", ErrOwnerFiles)
	}
	u.logf("6. owner files carried from the current firmware: %s", strings.Join(carried, ", "))
	return final, carried, nil
}

// OwnerFiles returns the owner's files (CBFS glint/*, named without the
// prefix) of an image, or none if the image does not parse.
func OwnerFiles(image []byte) map[string][]byte {
	img, err := rom.FromBytes(image)
	if err != nil {
		return nil
	}
	files, err := rom.OwnerFiles(img)
	if err != nil {
		return nil
	}
	return files
}

// CarryOwnerFiles replaces the owner files of next with those of current
// (the owner's keys and configuration, which the publisher's image does
// not know), with internal/rom's CBFS writing, which keeps cbfstool's
// layout and re-reads the result. Files keep their compression.
func CarryOwnerFiles(current, next []byte) ([]byte, []string, error) {
	cur, err := rom.FromBytes(current)
	if err != nil {
		return nil, nil, err
	}
	img, err := rom.FromBytes(next)
	if err != nil {
		return nil, nil, err
	}
	files, err := cur.CBFS(rom.OwnerArea)
	if err != nil {
		return nil, nil, err
	}
	nextFiles, err := img.CBFS(rom.OwnerArea)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range nextFiles {
		if !f.Empty() && strings.HasPrefix(f.Name, rom.OwnerFilePrefix) {
			if img, err = img.RemoveFile(rom.OwnerArea, f.Name); err != nil {
				return nil, nil, err
			}
		}
	}
	var carried []string
	for i := range files {
		f := &files[i]
		if f.Empty() || !strings.HasPrefix(f.Name, rom.OwnerFilePrefix) {
			continue
		}
		data, err := f.Contents()
		if err != nil {
			return nil, nil, fmt.Errorf("CBFS %s: %w", f.Name, err)
		}
		if img, err = img.AddFile(rom.OwnerArea, f.Name, data, rom.AddOptions{Type: f.Type, Compression: f.Compression}); err != nil {
			return nil, nil, fmt.Errorf("add %s: %w", f.Name, err)
		}
		carried = append(carried, f.Name)
	}
	return img.Data, carried, nil
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func primaryName(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return printable(id.Name)
	}
	return "no user id"
}
