package isoverify

import (
	"bytes"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Source says who vouches for a key.
type Source int

const (
	// Distribution keys sign their distribution's ISO images.
	Distribution Source = iota + 1
	// Owner keys are the machine owner's own (the keys that sign /boot);
	// an ISO the owner signed boots like a distribution's.
	Owner
)

func (s Source) String() string {
	switch s {
	case Distribution:
		return "distribution"
	case Owner:
		return "owner"
	}
	return "unknown"
}

// TrustedKey is one key glint accepts ISO signatures from.
type TrustedKey struct {
	Entity *openpgp.Entity
	Source Source
	// Label names the key for the owner: "Debian CD signing key", "Tails",
	// "owner key".
	Label string
	// Origin says where the key was read: "built in (debian-cd-2011.asc)",
	// "firmware image glint/iso-keys.asc".
	Origin string
}

// Fingerprint is the primary key's fingerprint in upper-case hex.
func (k *TrustedKey) Fingerprint() string {
	return strings.ToUpper(hex.EncodeToString(k.Entity.PrimaryKey.Fingerprint))
}

func (k *TrustedKey) String() string {
	return fmt.Sprintf("%s (%s key %s)", k.Label, k.Source, k.Fingerprint())
}

// Keyring is the set of keys an ISO may be signed by.
type Keyring struct {
	keys []TrustedKey
}

// NewKeyring joins owner keys and distribution keys.
func NewKeyring(owner openpgp.EntityList, distributions []TrustedKey) *Keyring {
	kr := &Keyring{}
	for _, e := range owner {
		kr.keys = append(kr.keys, TrustedKey{Entity: e, Source: Owner, Label: "owner key " + primaryName(e), Origin: "owner keys"})
	}
	kr.keys = append(kr.keys, distributions...)
	return kr
}

// Keys lists the trusted keys, owner keys first.
func (kr *Keyring) Keys() []TrustedKey { return kr.keys }

// entities is the keyring as go-crypto wants it.
func (kr *Keyring) entities() openpgp.EntityList {
	el := make(openpgp.EntityList, 0, len(kr.keys))
	for i := range kr.keys {
		el = append(el, kr.keys[i].Entity)
	}
	return el
}

// lookup finds the trusted key an entity came from.
func (kr *Keyring) lookup(e *openpgp.Entity) *TrustedKey {
	for i := range kr.keys {
		if bytes.Equal(kr.keys[i].Entity.PrimaryKey.Fingerprint, e.PrimaryKey.Fingerprint) {
			return &kr.keys[i]
		}
	}
	return nil
}

// knows reports whether a signing key with this key ID is in the keyring.
func (kr *Keyring) knows(keyID uint64) bool {
	return len(kr.entities().KeysByIdUsage(keyID, packet.KeyFlagSign)) > 0
}

func primaryName(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil && id.UserId != nil {
		if id.UserId.Name != "" {
			return id.UserId.Name
		}
		return id.Name
	}
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

//go:embed keys/*.asc
var builtinKeys embed.FS

// pinned are the built-in keys with the fingerprints their files must have
// (provenance: keys/README.md). A file whose key is not the pinned one
// makes DefaultKeys fail rather than trust it.
var pinned = []struct{ file, label, fingerprint string }{
	{"debian-cd-2011.asc", "Debian CD signing key", "DF9B9C49EAA9298432589D76DA87E80D6294BE9B"},
	{"fedora-42.asc", "Fedora 42", "B0F4950458F69E1150C6C5EDC8AC4916105EF944"},
	{"fedora-43.asc", "Fedora 43", "C6E7F081CF80E13146676E88829B606631645531"},
	{"fedora-44.asc", "Fedora 44", "36F612DCF27F7D1A48A835E4DBFCF71C6D9F90A6"},
	{"fedora-45.asc", "Fedora 45", "4F50A6114CD5C6976A7F1179655A4B02F577861E"},
	{"fedora-46.asc", "Fedora 46", "D924B10D3E810DABDD8B56B596E7E91491211FCE"},
	{"qubes-release-4.2.asc", "Qubes OS Release 4.2 Signing Key", "9C884DF3F81064A569A4A9FAE022E58F8E34D89F"},
	{"qubes-release-4.3.asc", "Qubes OS Release 4.3 Signing Key", "F3FA3F99D6281F7B3A3E5E871C3D9B627F3FADA4"},
	{"tails.asc", "Tails developers", "A490D0F4D311A4153E2BB7CADBB802B258ACD84F"},
	{"archlinux-pierre-schmitz.asc", "Arch Linux (Pierre Schmitz, release signing)", "3E80CA1A8B89F69CBA57D98A76A5EF9054449A5C"},
}

// DefaultDistributionKeys returns the distribution keys built into glint:
// Debian, Fedora 42-46, Qubes OS 4.2 and 4.3, Tails and Arch Linux.
func DefaultDistributionKeys() ([]TrustedKey, error) {
	var out []TrustedKey
	for _, p := range pinned {
		raw, err := builtinKeys.ReadFile("keys/" + p.file)
		if err != nil {
			return nil, fmt.Errorf("built-in key %s: %w", p.file, err)
		}
		el, err := readKeys(raw)
		if err != nil || len(el) != 1 {
			return nil, fmt.Errorf("built-in key %s: want one key: %v", p.file, err)
		}
		got := strings.ToUpper(hex.EncodeToString(el[0].PrimaryKey.Fingerprint))
		if got != p.fingerprint {
			return nil, fmt.Errorf("built-in key %s has fingerprint %s, pinned %s", p.file, got, p.fingerprint)
		}
		out = append(out, TrustedKey{Entity: el[0], Source: Distribution, Label: p.label, Origin: "built in (" + p.file + ")"})
	}
	return out, nil
}

// MaxKeyFileSize bounds a distribution keyring read from the firmware image.
const MaxKeyFileSize = 1 << 20

// ParseDistributionKeys reads armored or binary public keys that the owner
// keeps in the firmware image instead of the built-in set; origin says
// where they came from (for messages). Every key is labelled with its
// primary user ID.
func ParseDistributionKeys(untrusted []byte, origin string) ([]TrustedKey, error) {
	if len(untrusted) > MaxKeyFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", origin, len(untrusted), MaxKeyFileSize)
	}
	el, err := readKeys(untrusted)
	if err != nil {
		return nil, fmt.Errorf("%s: read OpenPGP keys: %w", origin, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("%s: no keys", origin)
	}
	out := make([]TrustedKey, 0, len(el))
	for _, e := range el {
		out = append(out, TrustedKey{Entity: e, Source: Distribution, Label: primaryName(e), Origin: origin})
	}
	return out, nil
}

const armorBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"

// readKeys reads binary keys, or any number of armored key blocks one after
// the other (what "cat *.asc > keys.asc" makes; go-crypto reads only the
// first block of such a file).
func readKeys(untrusted []byte) (openpgp.EntityList, error) {
	if !bytes.Contains(untrusted, []byte(armorBegin)) {
		return openpgp.ReadKeyRing(bytes.NewReader(untrusted))
	}
	var all openpgp.EntityList
	parts := bytes.Split(untrusted, []byte(armorBegin))
	for _, p := range parts[1:] {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(append([]byte(armorBegin), p...)))
		if err != nil {
			return nil, err
		}
		all = append(all, el...)
	}
	return all, nil
}
