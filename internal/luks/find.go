package luks

import (
	"errors"
	"fmt"
	"strings"
)

// The LUKS header glint measures must be the one the OS opens. The OS
// finds its volume by UUID (crypttab's UUID=..., udev's
// /dev/disk/by-uuid), not by a device path glint recorded beside the sealed
// key, which is unsigned and which anyone with the disk can point at a copy
// of the good header on another disk. So glint looks the UUID up the way
// the OS will, on every block device, and refuses when more than one
// carries it: which one the OS would open is then up to enumeration order,
// and an attacker decides that.

// ErrNoVolume: no device carries the LUKS UUID.
var ErrNoVolume = errors.New("no block device carries this LUKS UUID")

// AmbiguousUUIDError: more than one device carries the UUID.
type AmbiguousUUIDError struct {
	UUID    string
	Devices []string
}

func (e *AmbiguousUUIDError) Error() string {
	return fmt.Sprintf("LUKS UUID %s is on %d devices (%s): the OS could open either, so glint releases no disk key; remove the disk that should not be there (a copied header is a known attack), or give it a new UUID (cryptsetup luksUUID --uuid)",
		e.UUID, len(e.Devices), strings.Join(e.Devices, ", "))
}

// Volume is a device that carries the UUID, with its header as read.
type Volume struct {
	Device string
	Header *Header
}

// FindByUUID reads the LUKS header of every candidate device (all block
// devices of the machine: the caller lists them) and returns the one whose
// UUID is uuid (compared as the OS does, case-insensitively). Devices that
// are not LUKS, or cannot be read, are skipped. More than one match is an
// *AmbiguousUUIDError naming them all; none is ErrNoVolume.
func FindByUUID(candidates []string, uuid string) (*Volume, error) {
	want := strings.ToLower(strings.TrimSpace(uuid))
	if want == "" {
		return nil, errors.New("find LUKS volume: no UUID given")
	}
	var found []Volume
	for _, dev := range candidates {
		h, err := ReadHeader(dev)
		if err != nil {
			// Not LUKS, damaged (cryptsetup would refuse it too) or
			// unreadable: not a volume the OS can open.
			continue
		}
		if strings.ToLower(h.UUID) == want {
			found = append(found, Volume{Device: dev, Header: h})
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: UUID %s (is the disk attached?)", ErrNoVolume, uuid)
	case 1:
		return &found[0], nil
	}
	e := &AmbiguousUUIDError{UUID: uuid}
	for _, v := range found {
		e.Devices = append(e.Devices, v.Device)
	}
	return nil, e
}
