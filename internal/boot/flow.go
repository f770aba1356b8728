// Package boot is glint as PID 1: the flow a Heads-class laptop runs at every
// power-on, between the firmware and the operating system.
//
//	measure owner files (PCR 7) -> show TOTP (sealed to PCRs 0-4,7) ->
//	find /boot, verify the signed manifest and rollback counter ->
//	menu (countdown to the default entry) -> extend "leaving glint" (PCR 4),
//	lock the TPM platform hierarchy -> kexec the OS
//
// Nothing here ends the process: every failure is shown on the console and
// leads to the menu, from which the owner decides (reboot, power off,
// recovery shell after authenticating, or a loudly forced boot). Side effects
// that cannot be undone in a test (kexec, reboot, power off, the shell) go
// through the Machine interface, so tests run the whole flow on a host with
// swtpm and a temporary /boot.
package boot

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// Machine performs the side effects of the boot flow.
type Machine interface {
	PowerOff() error
	Reboot() error
	// Kexec loads img and jumps into it; it returns only on failure. img
	// holds every file already read into memory and checked against the
	// signed manifest, so nothing on disk can change in between.
	Kexec(img kexec.Image) error
	// SetClock sets the system clock and the RTC.
	SetClock(t time.Time) error
	// OwnerKeyMedia returns the armored owner secret keys found on removable
	// media (the owner's key backup stick), with where each was found.
	OwnerKeyMedia() ([]KeyFile, error)
	// RemountBoot makes /boot writable (true) or read-only again (false).
	RemountBoot(writable bool) error
}

// KeyFile is an armored OpenPGP secret key found on some medium.
type KeyFile struct {
	Where string
	Data  []byte
}

// Flow is one power-on of the machine.
type Flow struct {
	Con     *Console
	J       *Journal
	M       Machine
	OpenTPM func() (tpm.TPM, error)
	// BootDir is where the OS's /boot is mounted ("" if none was found).
	BootDir string
	// OwnerFiles are the owner's files from the firmware image (glint/*):
	// "owner.asc" (public keys), "config". Measured into PCR 7 by Measure.
	OwnerFiles map[string][]byte
	Config     ownerconfig.Config
	Profile    pcr.Profile
	// Now is the clock (already corrected by the configured RTC offset).
	Now func() time.Time
	// BuildTime is when this glint was built: a clock before it is wrong.
	BuildTime time.Time
	// FirmwareEvents are the firmware's event-log entries (may be nil).
	FirmwareEvents func() []eventlog.EventRecord
	// ROMImage reads the running firmware image (may be nil): without a TPM
	// its hash is the HOTP secret, as in Heads, so a dongle still shows
	// whether the firmware changed.
	ROMImage func() ([]byte, error)
	// RunCommand runs a glint CLI verb from the recovery shell (may be nil).
	RunCommand RunCommandFunc
	// TPMStats counts TPM commands and time (may be nil).
	TPMStats *tpm.Stats
	// Started is when /init started (zero: when the flow was made).
	Started time.Time
	// OpenDongle opens the owner's USB security dongle for HOTP (nil: none;
	// dongle.ErrNoDongle when none is plugged in).
	OpenDongle func() (dongle.Device, error)
	// Modules are the kernel modules loaded before the flow, measured into
	// PCR 5 in load order.
	Modules []loadedModule

	tpm      tpm.TPM
	bank     tpm.Alg
	events   []eventlog.EventRecord // glint's own measurements this boot
	mode     string                 // last boot-mode event extended into PCR 4, "" if none
	verified bool                   // /boot manifest verified this boot
	problems []string               // tamper findings, shown on the menu
	totpOK   bool
	manifest *manifest.Manifest // the verified manifest, nil if not verified
	kept     map[string][]byte  // verified bytes of the default entry's files
	// startPCRs are the PCRs as glint found them, before any boot-mode
	// event: PCR 4's value here is its value in every normal boot.
	startPCRs map[int][]byte
	entries   []bootcfg.Entry
	defEntry  int
	// fwEvents caches FirmwareEvents: the firmware's log does not change
	// after the firmware handed over, and reading it means mapping cbmem
	// and parsing it again.
	fwEvents     []eventlog.EventRecord
	fwEventsRead bool
}

// firmwareEvents returns the firmware's measurement log, read once per boot.
func (f *Flow) firmwareEvents() []eventlog.EventRecord {
	if !f.fwEventsRead && f.FirmwareEvents != nil {
		f.fwEvents, f.fwEventsRead = f.FirmwareEvents(), true
	}
	return f.fwEvents
}

// measure extends PCR index with a measurement of data and records it.
func (f *Flow) measure(index int, description string, data []byte) error {
	if f.tpm == nil {
		return errors.New("no TPM")
	}
	if err := f.tpm.Extend(index, data); err != nil {
		return fmt.Errorf("measure %s into PCR %d: %w", description, index, err)
	}
	// glint's own measurements are logged like a boot loader's (PFP 1.05,
	// 10.4.1: EV_IPL).
	f.events = append(f.events, eventlog.EventRecord{PCR: index, Type: eventlog.EvIPL, Description: description, Alg: f.bank, Digest: pcr.Measure(f.bank, data)})
	f.J.Debugf("measured %s into PCR %d", description, index)
	return nil
}

// MeasureOwnerFiles extends PCR 7 with the owner files, as pcr.OwnerFiles
// lists them.
func (f *Flow) MeasureOwnerFiles() error {
	for _, m := range pcr.OwnerFiles(f.OwnerFiles) {
		if err := f.measure(m.PCR, m.Description, m.Data); err != nil {
			return err
		}
	}
	return nil
}

// setMode extends a boot-mode event into PCR 4. After any of them the
// secrets sealed to the normal boot no longer unseal in this boot.
func (f *Flow) setMode(mode string) error {
	if f.tpm == nil {
		f.mode = mode
		return nil
	}
	if err := f.measure(pcr.BootMode, mode, []byte(mode)); err != nil {
		return err
	}
	f.mode = mode
	return nil
}

func (f *Flow) problem(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	f.problems = append(f.problems, msg)
	for _, l := range strings.Split(msg, "\n") {
		f.Con.Printf("TAMPER: %s\n", l)
	}
	f.J.Debugf("TAMPER: %s", msg)
}
