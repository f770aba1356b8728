// Package boot is glint as PID 1: the flow a Heads-class laptop runs at every
// power-on, between the firmware and the operating system.
//
//	measure modules (PCR 5) and owner files (PCR 7) -> show TOTP (sealed to
//	PCRs 0-4,7) -> find /boot, verify the signed manifest and rollback
//	counter -> menu (countdown to the default entry) -> extend "leaving
//	glint" (PCR 4), lock the TPM platform hierarchy -> kexec the OS
//
// Nothing here ends the process: every failure is shown on the console and
// leads to the menu, from which the owner decides (reboot, power off,
// recovery shell after authenticating, or a loudly forced boot).
//
// This package is the order of those steps, the console, the menu and the
// recovery shell. The steps themselves live below it: sealed secrets in
// package sealed, the signed /boot in manifest, boot entries in bootcfg,
// loading the OS in kexec. A Flow depends on three small interfaces, as
// go-attestation injects an event-log source beside its TPM transport:
//
//	TPMSource  opens the TPM (a device at boot, swtpm in tests)
//	Firmware   the firmware's measurement log and image (cbmem/securityfs
//	           and /dev/mem at boot, a recorded log or nothing in tests)
//	Machine    side effects that cannot be undone in a test: kexec, reboot,
//	           power off, the clock, remounting /boot, key media, the dongle
//
// so tests run the whole flow on a host with swtpm, real keys and a
// temporary /boot, and check what would have been executed.
package boot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/netconf"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/usbboot"
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
	// Dongle opens the owner's USB security dongle for HOTP;
	// dongle.ErrNoDongle when none is plugged in.
	Dongle() (dongle.Device, error)
	// USBStorage finds and mounts USB sticks (read-only) for the
	// "boot from a USB stick" menu item.
	USBStorage() usbboot.Storage
	// MountRoot mounts the OS root file system (spec: rootfs.device, ""
	// for the default) read-only for the root file system check; release
	// unmounts it.
	MountRoot(spec string) (dir string, release func(), err error)
	// NetworkUp brings the network up as cfg says (owner configuration
	// attest.*: DHCP or a static address) to reach the attestation server,
	// and describes the lease.
	NetworkUp(ctx context.Context, cfg netconf.Config) (string, error)
}

// KeyFile is an armored OpenPGP secret key found on some medium.
type KeyFile struct {
	Where string
	Data  []byte
}

// TPMSource opens the machine's TPM, once per boot.
type TPMSource interface {
	OpenTPM() (tpm.TPM, error)
}

// Firmware is what glint reads of the firmware it runs on.
type Firmware interface {
	// Events returns the firmware's measurements in bank (nil: no log).
	Events(bank tpm.Alg) []eventlog.EventRecord
	// Image returns the running firmware image: without a TPM its hash is
	// the HOTP secret, as in Heads, so a dongle still shows a reflash.
	Image() ([]byte, error)
	// Log returns the measurement log as read, unparsed, for an
	// attestation report (the server parses it).
	Log() ([]byte, error)
}

// Flow is one power-on of the machine.
type Flow struct {
	Con *Console
	J   *Journal

	// The flow's dependencies (nil TPM or Firmware: the machine has none).
	Machine  Machine
	TPM      TPMSource
	Firmware Firmware

	// What the machine brought to this boot.
	//
	// BootDir is where the OS's /boot is mounted ("" if none was found).
	BootDir string
	// OwnerFiles are the owner's files from the firmware image (CBFS
	// glint/*): rom.OwnerKeyFile (public keys), rom.OwnerConfigFile.
	// Measured into PCR 7 before anything else uses them.
	OwnerFiles map[string][]byte
	Config     ownerconfig.Config
	Profile    pcr.Profile
	// Modules are the kernel modules loaded before the flow, measured into
	// PCR 5 in load order.
	Modules []Module
	// BuildTime is when this glint was built: a clock before it is wrong.
	BuildTime time.Time
	// Started is when /init started (zero: no timing report).
	Started time.Time
	// Now is the clock, corrected by the configured RTC offset (nil:
	// time.Now minus Config.RTCOffset).
	Now func() time.Time
	// RunCommand runs a glint CLI verb from the recovery shell (nil: the
	// shell offers only its own commands).
	RunCommand RunCommandFunc

	// This boot so far.
	tpm      tpm.TPM
	state    *sealed.State // measured state; TPM nil when there is none
	mode     string        // last boot-mode event extended into PCR 4, "" if none
	verified bool          // /boot manifest verified this boot
	problems []string      // tamper findings, shown on the menu
	totpOK   bool
	// platformErr: the platform hierarchy could be neither locked nor
	// found locked: no secret is released in this boot.
	platformErr error
	manifest    *manifest.Manifest // the verified manifest, nil if not verified
	kept        map[string][]byte  // verified bytes of the default entry's files
	entries     []bootcfg.Entry
	defEntry    int
	attest      *attestation // the attestation client, once set up (attest.go)
}

// Module is one kernel module file glint loaded, measured into PCR 5.
type Module struct {
	Name string
	Data []byte
}

// now is the flow's clock.
func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now().Add(-f.Config.RTCOffset)
}

// measure extends a measurement into its PCR and records it.
func (f *Flow) measure(m pcr.Measurement) error {
	return f.state.Measure(m)
}

// setMode extends a boot-mode event into PCR 4. After any of them the
// secrets sealed to the normal boot no longer unseal in this boot.
func (f *Flow) setMode(mode string) error {
	if f.tpm == nil {
		f.mode = mode
		return nil
	}
	if err := f.measure(pcr.Measurement{PCR: pcr.BootMode, Description: mode, Data: []byte(mode)}); err != nil {
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

// withWritableBoot runs fn while /boot is writable.
func (f *Flow) withWritableBoot(fn func() error) error {
	if f.Machine == nil {
		return fn()
	}
	if err := f.Machine.RemountBoot(true); err != nil {
		return fmt.Errorf("make /boot writable: %w", err)
	}
	ferr := fn()
	if err := f.Machine.RemountBoot(false); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}
