package rootfs

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/glint-boot/glint/internal/safefile"
)

// ListName is the list's file name in /boot, where the signed manifest
// covers it.
const ListName = "glint-rootfs.list"

// ErrNoList means /boot holds no root file system list.
var ErrNoList = errors.New("no " + ListName + " in /boot: the root file system was never hashed (glint rootfs sign)")

// Write stores l in bootDir atomically (old or new list after a power cut;
// either way the /boot manifest says whether it is the signed one).
func Write(bootDir string, l *List) error {
	return safefile.Write(filepath.Join(bootDir, ListName), l.Marshal(), 0o644)
}

// Read returns the list's bytes from bootDir, unverified: callers hash them
// through the /boot manifest (manifest.VerifyOptions Keep) and parse the
// kept bytes.
func Read(bootDir string) ([]byte, error) {
	b, err := safefile.ReadCapped(filepath.Join(bootDir, ListName), MaxListSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoList
	}
	return b, err
}
