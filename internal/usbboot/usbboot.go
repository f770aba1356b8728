// Package usbboot is the boot-menu step "boot from a USB stick": measure
// that the machine is leaving the normal boot path, find ISO images on USB
// storage, let the owner choose one and an entry of its boot menu, verify
// it under the owner's boot policy, and hand back a kexec image built from
// the verified bytes (internal/isoboot).
//
// Threat and rules (PureBoot's USB boot, Heads' usb-init/kexec-iso-init):
//
//   - PCR 4 is extended with "usb" before any byte of the stick is read, so
//     the TOTP secret and the disk key (sealed to PCR 4's normal-boot value)
//     stay sealed for the rest of this power-on, whatever the stick holds.
//   - An image a trusted key signed boots; a tampered one never does, and is
//     named; an unsigned one (or one signed by an unknown key) boots only
//     after the owner's explicit confirmation, and never in restricted mode
//     (bootpolicy.Mode.AllowsUnsignedISO). Basic mode checks nothing.
//
// The boot flow provides three small things: Storage (the USB file systems,
// mounted read-only), Measurer (PCR 4) and UI (choices, confirmation,
// progress). Run does the rest.
package usbboot

import (
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/bootpolicy"
	"github.com/glint-boot/glint/internal/isoboot"
	"github.com/glint-boot/glint/internal/isoverify"
)

// BootModeEvent is what PCR 4 is extended with before a USB boot (the
// event Heads' usb-init.sh measures).
const BootModeEvent = "usb"

// Mount is one mounted USB file system.
type Mount struct {
	Device string // /dev/sdb1
	Dir    string // where it is mounted, read-only
}

// Storage finds and mounts USB storage.
type Storage interface {
	// MountAll mounts every USB file system read-only.
	MountAll() ([]Mount, error)
	// UnmountAll undoes MountAll.
	UnmountAll() error
}

// Measurer extends a boot-mode event into PCR 4.
type Measurer interface {
	ExtendBootMode(event string) error
}

// UI is the owner at the keyboard.
type UI interface {
	// ChooseImage returns the index of the image to boot, or false to go
	// back.
	ChooseImage(images []isoboot.Candidate) (int, bool)
	// ChooseEntry returns the index of the entry of the image's menu.
	ChooseEntry(image isoboot.Candidate, menu *isoboot.Menu) (int, bool)
	// ConfirmUnsigned asks the owner to boot an image that is not verified
	// (why says what was found); true only on an explicit yes.
	ConfirmUnsigned(image isoboot.Candidate, why error) bool
	// Progress shows hashing progress.
	Progress(done, total int64)
	// Say shows one line.
	Say(format string, a ...any)
}

// Policy is what the owner configured.
type Policy struct {
	Settings bootpolicy.Settings
	Keys     *isoverify.Keyring
}

// Errors Run returns, for the boot menu to show.
var (
	ErrNoImages  = errors.New("no ISO images found on USB storage (put the .iso and its signature files on a FAT32, exFAT or ext4 stick)")
	ErrCancelled = errors.New("USB boot cancelled")
	ErrRefused   = errors.New("refused")
)

// Result is a USB boot ready for kexec.
type Result struct {
	Boot     *isoboot.Boot
	Image    isoboot.Candidate
	Verified *isoverify.Result // nil when booted unverified (confirmed, or basic mode)
}

// Run performs the USB boot step. On success the flow kexecs
// Result.Boot.Image() (after its own "leaving glint" measurement). The
// stick stays mounted only while Run reads it.
func Run(st Storage, m Measurer, ui UI, pol Policy) (*Result, error) {
	if err := m.ExtendBootMode(BootModeEvent); err != nil {
		return nil, fmt.Errorf("measure the USB boot into PCR 4 (nothing was read from the stick): %w", err)
	}
	mounts, err := st.MountAll()
	if err != nil {
		return nil, fmt.Errorf("USB storage: %w", err)
	}
	defer st.UnmountAll()
	var images []isoboot.Candidate
	for _, mt := range mounts {
		found, err := isoboot.Scan(mt.Dir)
		if err != nil {
			ui.Say("%s: %v", mt.Device, err)
		}
		images = append(images, found...)
	}
	if len(images) == 0 {
		return nil, ErrNoImages
	}
	i, ok := ui.ChooseImage(images)
	if !ok {
		return nil, ErrCancelled
	}
	if i < 0 || i >= len(images) {
		return nil, fmt.Errorf("no image %d", i+1)
	}
	im, err := isoboot.OpenCandidate(images[i])
	if err != nil {
		return nil, err
	}
	defer im.Close()
	e, ok := ui.ChooseEntry(im.Candidate, im.Menu)
	if !ok {
		return nil, ErrCancelled
	}
	s := pol.Settings
	if !s.Mode.TamperChecks() {
		ui.Say("%s", s.Mode.Banner())
		b, err := im.LoadUnsigned(e, s.ISOAdd, s.ISORemove)
		if err != nil {
			return nil, err
		}
		return &Result{Boot: b, Image: im.Candidate}, nil
	}
	ui.Say("verifying %s (%d MB)...", im.Name, im.Size>>20)
	b, res, err := im.Verify(e, pol.Keys, s.ISOAdd, s.ISORemove, ui.Progress)
	switch {
	case err == nil:
		ui.Say("%s: verified: %s", im.Name, res.Evidence[0])
		return &Result{Boot: b, Image: im.Candidate, Verified: res}, nil
	case errors.Is(err, isoverify.ErrTampered), errors.Is(err, isoboot.ErrMenuChanged):
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	case errors.Is(err, isoverify.ErrNotSigned), errors.Is(err, isoverify.ErrUntrustedSigner):
		if !s.Mode.AllowsUnsignedISO() {
			return nil, fmt.Errorf("%w in %s mode: %v", ErrRefused, s.Mode, err)
		}
		if !ui.ConfirmUnsigned(im.Candidate, err) {
			return nil, ErrCancelled
		}
		b, err := im.LoadUnsigned(e, s.ISOAdd, s.ISORemove)
		if err != nil {
			return nil, err
		}
		return &Result{Boot: b, Image: im.Candidate}, nil
	default:
		return nil, err
	}
}

// Keyring builds the keys an ISO may be signed by under the owner's
// iso.keys setting: the owner's keys always; the firmware's
// glint/iso-keys.asc (firmwareKeys, may be nil) unless "owner"; the
// built-in distribution keys only with "builtin".
func Keyring(owner openpgp.EntityList, firmwareKeys []byte, which bootpolicy.ISOKeys) (*isoverify.Keyring, error) {
	var dk []isoverify.TrustedKey
	if which == bootpolicy.BuiltinKeys {
		b, err := isoverify.DefaultDistributionKeys()
		if err != nil {
			return nil, err
		}
		dk = append(dk, b...)
	}
	if which != bootpolicy.OwnerKeys && len(firmwareKeys) > 0 {
		k, err := isoverify.ParseDistributionKeys(firmwareKeys, "firmware image glint/"+FirmwareKeysFile)
		if err != nil {
			return nil, err
		}
		dk = append(dk, k...)
	}
	return isoverify.NewKeyring(owner, dk), nil
}

// FirmwareKeysFile is the owner file (CBFS glint/iso-keys.asc) with extra
// distribution keys, measured into PCR 7 with the other owner files.
const FirmwareKeysFile = "iso-keys.asc"
