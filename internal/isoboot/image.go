package isoboot

import (
	"fmt"
	"os"

	"github.com/glint-boot/glint/internal/isoverify"
)

// Image is an ISO image on a stick, open, with its boot menu read (still
// untrusted). This is what the boot flow holds between showing the menu
// and booting an entry.
type Image struct {
	Candidate
	Menu *Menu
	f    *os.File
}

// OpenCandidate opens an image Scan found and reads its boot menu.
func OpenCandidate(c Candidate) (*Image, error) {
	f, size, err := OpenImage(c.Path)
	if err != nil {
		return nil, err
	}
	m, err := Prepare(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	c.Size = size
	return &Image{Candidate: c, Menu: m, f: f}, nil
}

// Close closes the image file.
func (im *Image) Close() error { return im.f.Close() }

// Verify checks the image against the signatures beside it (kr: the keys
// the owner's policy trusts) in one read, and returns entry i built from
// the verified bytes, with the owner's command-line additions and removals.
// An error wrapping isoverify.ErrTampered, ErrUntrustedSigner or
// ErrNotSigned says why the image is not verified; ErrMenuChanged that the
// device changed its answers.
func (im *Image) Verify(i int, kr *isoverify.Keyring, add, remove []string, progress func(done, total int64)) (*Boot, *isoverify.Result, error) {
	keep, err := im.Menu.Keep(i)
	if err != nil {
		return nil, nil, err
	}
	res, err := isoverify.Verify(isoverify.Image{Name: im.Name, R: im.f, Size: im.Size}, os.DirFS(im.Dir), kr, isoverify.Options{Keep: keep, Progress: progress})
	if err != nil {
		return nil, nil, err
	}
	b, err := im.Menu.Load(i, keep, res.Kept, add, remove)
	if err != nil {
		return nil, nil, err
	}
	return b, res, nil
}

// LoadUnsigned returns entry i read once from the stick, with no signature
// check: only for an image the owner explicitly chose to boot unsigned
// (never in restricted mode; bootpolicy.Mode.AllowsUnsignedISO).
func (im *Image) LoadUnsigned(i int, add, remove []string) (*Boot, error) {
	keep, err := im.Menu.Keep(i)
	if err != nil {
		return nil, err
	}
	kept, err := ReadRanges(im.f, keep)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", im.Name, err)
	}
	return im.Menu.Load(i, keep, kept, add, remove)
}
