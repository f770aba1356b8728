package seal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/glint-boot/glint/internal/safefile"
)

// Dir is where sealed records live, relative to the boot directory. It is
// outside the signed manifest's file list (records change at every reseal).
const Dir = "glint/sealed"

// ErrNotSealed says no record exists yet: the owner has not set this up.
var ErrNotSealed = errors.New("nothing sealed yet")

// Path returns the record file for a purpose under bootDir.
func Path(bootDir, purpose string) string {
	return filepath.Join(bootDir, Dir, purpose+".json")
}

// Save writes a record atomically.
func Save(bootDir string, r *Record) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(bootDir, Dir), 0o755); err != nil {
		return err
	}
	return safefile.Write(Path(bootDir, r.Purpose), b, 0o644)
}

// Load reads and parses a record; ErrNotSealed if there is none.
func Load(bootDir, purpose string) (*Record, error) {
	f, err := os.Open(Path(bootDir, purpose))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", purpose, ErrNotSealed)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	return Parse(b)
}
