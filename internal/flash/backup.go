package flash

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/glint-boot/glint/internal/safefile"
)

// A backup is the chip's contents as read (twice, identical) before glint
// wrote anything: the way back if a new image does not boot. It is kept as
//
//	DIR/glint-backup-20261204T164000Z-W25Q128.V.rom
//	DIR/glint-backup-20261204T164000Z-W25Q128.V.rom.sha256   ("<hex>  <name>", sha256sum -c reads it)
//
// and is never overwritten: both files are created with link(2), which
// fails if the name exists (a second backup in the same second gets "-2").
// Each file is fsync'd before it is linked and the directory after, and the
// image is read back from the directory and hashed before the backup
// counts as kept: USB sticks that lose writes are caught here, not after
// the chip was erased.

// Backup is one kept chip image.
type Backup struct {
	Path   string
	SHA256 [32]byte
	Size   int64
}

func (b *Backup) String() string {
	return fmt.Sprintf("%s (%d bytes, sha256 %x)", b.Path, b.Size, b.SHA256)
}

// ErrBackup wraps every failure to keep or find a trustworthy backup.
var ErrBackup = errors.New("backup")

// KeepBackup stores data in dir under a new name and returns it once it
// reads back with the right hash.
func KeepBackup(dir, chipName string, data []byte, now time.Time) (*Backup, error) {
	return keepImage(dir, "glint-backup-", chipName, data, now)
}

// KeepWritten keeps the exact image an update writes (the new firmware
// with the owner's files carried into it), the same way as a backup, so
// that `glint flash verify` can compare the chip with it later.
func KeepWritten(dir, chipName string, data []byte, now time.Time) (*Backup, error) {
	return keepImage(dir, "glint-written-", chipName, data, now)
}

func keepImage(dir, prefix, chipName string, data []byte, now time.Time) (*Backup, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: refusing to keep an empty image", ErrBackup)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	sum := sha256.Sum256(data)
	stem := prefix + now.UTC().Format("20060102T150405Z")
	if c := safeName(chipName); c != "" {
		stem += "-" + c
	}
	for n := 1; n < 1000; n++ {
		name := stem
		if n > 1 {
			name = fmt.Sprintf("%s-%d", stem, n)
		}
		path := filepath.Join(dir, name+".rom")
		err := createNew(path, data, 0o400)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBackup, err)
		}
		line := fmt.Sprintf("%x  %s\n", sum, filepath.Base(path))
		if err := createNew(path+".sha256", []byte(line), 0o400); err != nil {
			return nil, fmt.Errorf("%w: %s was kept but its checksum file was not: %v", ErrBackup, path, err)
		}
		if err := safefile.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBackup, err)
		}
		b, err := CheckBackup(path)
		if err != nil {
			return nil, fmt.Errorf("%w: the backup just written does not read back (is the disk failing?): %v", ErrBackup, err)
		}
		if b.SHA256 != sum {
			return nil, fmt.Errorf("%w: %s reads back with sha256 %x, %x was written", ErrBackup, path, b.SHA256, sum)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: too many backups named %s* in %s", ErrBackup, stem, dir)
}

// createNew writes a file that must not exist yet: a temporary file is
// written and fsync'd, then hard-linked to the name (which fails if the
// name exists, so nothing is ever overwritten). File systems without hard
// links (vfat: the owner's USB stick) get O_EXCL creation of the name
// itself, written and fsync'd; a power cut then can leave a partial image,
// but its .sha256 file is written only after it, so CheckBackup refuses it.
func createNew(path string, data []byte, perm os.FileMode) error {
	if _, err := os.Lstat(path); err == nil {
		return os.ErrExist
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeSync(tmp, data, perm); err != nil {
		return err
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrExist):
		return os.ErrExist
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		return writeSync(f, data, perm)
	}
	return err
}

// writeSync writes data to f, sets perm, fsyncs and closes it.
func writeSync(f *os.File, data []byte, perm os.FileMode) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	// vfat has no modes: a failed chmod is not a failed backup.
	_ = f.Chmod(perm)
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return f.Close()
}

// maxSumFile bounds a .sha256 file: one line of a hex digest and a name.
const maxSumFile = 4096

// parseSumLine reads one sha256sum line: 64 lowercase hex digits, two
// spaces (or space and '*', binary mode), a file name.
func parseSumLine(line string) (sum, name string, ok bool) {
	if len(line) < 67 || strings.Trim(line[:64], "0123456789abcdef") != "" || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') {
		return "", "", false
	}
	name = line[66:]
	if name == "" || len(name) > 255 || name[0] == ' ' {
		return "", "", false
	}
	return line[:64], name, true
}

// CheckBackup reads a backup and its .sha256 file and fails unless they
// agree. It is what restore runs before anything is written.
func CheckBackup(path string) (*Backup, error) {
	sumFile, err := os.Open(path + ".sha256")
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no checksum file beside it (%v): glint only restores images it kept", ErrBackup, path, err)
	}
	defer sumFile.Close()
	raw, err := io.ReadAll(io.LimitReader(sumFile, maxSumFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	if len(raw) > maxSumFile {
		return nil, fmt.Errorf("%w: %s.sha256 is longer than a checksum line", ErrBackup, path)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	sumHex, name, ok := parseSumLine(line)
	if !ok {
		return nil, fmt.Errorf("%w: %s.sha256 is not a sha256sum line", ErrBackup, path)
	}
	if name != filepath.Base(path) {
		return nil, fmt.Errorf("%w: %s.sha256 is the checksum of %q, not of %s", ErrBackup, path, name, filepath.Base(path))
	}
	var want [32]byte
	hex.Decode(want[:], []byte(sumHex))
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReader(io.LimitReader(f, MaxChipSize+1)))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrBackup, path, err)
	}
	if n > MaxChipSize {
		return nil, fmt.Errorf("%w: %s is larger than any flash chip (%d bytes)", ErrBackup, path, MaxChipSize)
	}
	var got [32]byte
	copy(got[:], h.Sum(nil))
	if got != want {
		return nil, fmt.Errorf("%w: %s is damaged: sha256 %x, its checksum file says %x; do not write it to the chip", ErrBackup, path, got, want)
	}
	return &Backup{Path: path, SHA256: got, Size: n}, nil
}

// ListBackups returns the backups in dir, oldest first (their names sort
// by time). Files that fail their checksum are listed with the error.
func ListBackups(dir string) ([]*Backup, []error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, []error{err}
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "glint-backup-") && strings.HasSuffix(n, ".rom") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []*Backup
	var errs []error
	for _, n := range names {
		b, err := CheckBackup(filepath.Join(dir, n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, b)
	}
	return out, errs
}

// safeName keeps a chip name usable in a file name.
func safeName(s string) string {
	var b bytes.Buffer
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}
