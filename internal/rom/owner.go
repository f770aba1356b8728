package rom

import (
	"fmt"
	"strings"
)

// OwnerFilePrefix is where the owner's files sit in CBFS: glint/owner.asc
// (the owner's public keys), glint/config (the owner configuration).
const OwnerFilePrefix = "glint/"

// The owner files glint reads (named without OwnerFilePrefix).
const (
	OwnerKeyFile    = "owner.asc" // the owner's OpenPGP public keys (armored)
	OwnerConfigFile = "config"    // the owner configuration (package ownerconfig)
)

// OwnerArea is the FMAP area whose CBFS holds the owner files: the
// read-only COREBOOT region that coreboot boots from.
const OwnerArea = "COREBOOT"

// OwnerFiles returns the owner's files (CBFS glint/*) of img, named without
// the prefix ("owner.asc", "config"), with their contents decompressed. The
// boot flow measures them into PCR 7 (pcr.OwnerFiles) before using them.
func OwnerFiles(img *Image) (map[string][]byte, error) {
	files, err := img.CBFS(OwnerArea)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for i := range files {
		f := &files[i]
		if f.Empty() || !strings.HasPrefix(f.Name, OwnerFilePrefix) {
			continue
		}
		data, err := f.Contents()
		if err != nil {
			return nil, fmt.Errorf("CBFS %s: %w", f.Name, err)
		}
		out[strings.TrimPrefix(f.Name, OwnerFilePrefix)] = data
	}
	return out, nil
}
