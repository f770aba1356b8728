package rom

import (
	"errors"
	"fmt"
	"time"

	"github.com/glint-boot/glint/internal/ownerconfig"
)

// Personalising an image: the owner's public keys and configuration go into
// CBFS as glint/owner.asc and glint/config, the files glint reads (and
// measures into PCR 7) at boot. They are stored uncompressed, as Heads and
// `cbfstool add -t raw` store them, so anyone can check them with
// `cbfstool IMAGE extract`.

// Owner file names in CBFS.
const (
	OwnerKeyCBFSName    = OwnerFilePrefix + OwnerKeyFile
	OwnerConfigCBFSName = OwnerFilePrefix + OwnerConfigFile
)

// Personalization is what goes into an image.
type Personalization struct {
	// Keys is the owner key file (required).
	Keys []byte
	// Config is the owner configuration; nil keeps the image's current
	// glint/config (or none).
	Config []byte
	// Now is when the keys must be valid (default time.Now()).
	Now time.Time
}

// Personalize returns a copy of img with the owner's keys and
// configuration in its CBFS, replacing earlier ones. Keys glint could not
// verify with and configurations it would not accept are refused, and the
// image is then left as it was.
func Personalize(img *Image, p Personalization) (*Image, []OwnerKey, error) {
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	keys, err := CheckOwnerKeys(p.Keys, now)
	if err != nil {
		return nil, keys, err
	}
	if p.Config != nil {
		if _, err := ownerconfig.Parse(p.Config); err != nil {
			return nil, keys, fmt.Errorf("the owner configuration would not be accepted at boot: %w", err)
		}
	}
	if img.FMAP == nil {
		return nil, keys, errors.New("rom: the image has no coreboot flash map: personalize a coreboot image (the BIOS region of a full-chip image is fine)")
	}
	out := img
	replace := func(name string, data []byte) error {
		if _, err := out.File("COREBOOT", name); err == nil {
			if out, err = out.RemoveFile("COREBOOT", name); err != nil {
				return err
			}
		}
		out, err = out.AddFile("COREBOOT", name, data, AddOptions{})
		return err
	}
	if err := replace(OwnerKeyCBFSName, p.Keys); err != nil {
		return nil, keys, fmt.Errorf("add %s: %w", OwnerKeyCBFSName, err)
	}
	if p.Config != nil {
		if err := replace(OwnerConfigCBFSName, p.Config); err != nil {
			return nil, keys, fmt.Errorf("add %s: %w", OwnerConfigCBFSName, err)
		}
	}
	return out, keys, nil
}
