package boot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/reown"
	"github.com/glint-boot/glint/internal/sealed"
)

// Re-owning the machine from the boot menu (package reown has the wizard).
//
// The menu item only asks for a re-ownership and reboots: by the time the
// menu shows, glint has locked the TPM's platform hierarchy (TPM 2.0) or
// physical presence (TPM 1.2), and a TPM someone else owns can only be
// cleared through them. At the next power-on glint finds the request (the
// wizard's journal on /boot) right after measuring, before it locks the
// TPM or unseals anything, and runs the wizard there. The same happens
// after a power cut in the middle of the wizard: glint says that the
// re-ownership is unfinished and offers to continue or restart; whoever
// declines gets a boot in which nothing starts by itself.
//
// No password is asked: the wizard authenticates by destroying. Whoever
// runs it gets a machine that holds nothing of the previous owner's: their
// TOTP secret, disk key and TPM authorisations are gone with the TPM
// reset, their key leaves the firmware, and their phone's code no longer
// matches at the next boot, which is how they learn of it.

// OwnershipMachine is what the wizard needs of the machine beyond Machine:
// the flash chip, a USB drive to keep the key backup and the firmware
// backup on, and the owner's OpenPGP card. A Machine without it cannot
// re-own (the menu item says so).
type OwnershipMachine interface {
	FlashChip() (flash.Device, error)
	// USBDrive mounts a writable USB drive; release unmounts it.
	USBDrive() (dir string, release func(), err error)
	OpenCard() (*card.Card, string, error)
}

// menuReown is the menu item's key.
const menuReown = "R"

// confirmReownRequest is what the owner types to ask for a re-ownership.
const confirmReownRequest = "yes"

// requestReown is the menu item: it explains, asks, records the request
// and reboots into the wizard (rebooting is then true).
func (f *Flow) requestReown() (rebooting bool, err error) {
	if f.BootDir == "" {
		f.Con.Printf("no /boot found: the wizard keeps its journal there\n")
		return false, nil
	}
	if _, ok := f.Machine.(OwnershipMachine); !ok {
		f.Con.Printf("this machine cannot be re-owned from glint's menu\n")
		return false, nil
	}
	f.Con.Printf(`Re-own this machine: reset the TPM (every sealed secret, the rollback counter and
the TPM's owner authorisations are lost), make new owner keys (on your security key,
or a key file on a USB drive), put your key into the firmware, sign /boot and seal a
new TOTP secret. The machine reboots first: the wizard runs at the next power-on,
before glint locks the TPM.
`)
	a, err := f.Con.Prompt(fmt.Sprintf("Reboot into the re-ownership wizard? Type %q: ", confirmReownRequest))
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(a) != confirmReownRequest {
		f.Con.Printf("nothing changed\n")
		return false, nil
	}
	if err := reown.Request(f.BootDir, f.withWritableBoot, f.now()); err != nil {
		f.Con.Printf("could not record the request on /boot: %v\n", err)
		return false, nil
	}
	f.Con.Printf("Rebooting into the re-ownership wizard.\n")
	f.shutdownTPM()
	return true, f.Machine.Reboot()
}

// pendingReown runs the wizard when a re-ownership was requested or
// interrupted. It is called before the TPM is locked. done means the
// machine is about to reboot (the wizard finished).
func (f *Flow) pendingReown() (done bool, err error) {
	if f.BootDir == "" || f.tpm == nil {
		return false, nil
	}
	j, pending := reown.Pending(f.BootDir)
	if !pending {
		if j != nil && j.Complete() {
			f.J.Logf("re-owned %s, owner key %s", j.Updated.Format("2006-01-02"), j.Fingerprint)
		}
		return false, nil
	}
	f.Con.Banner(yellow, "RE-OWNERSHIP: the wizard runs before anything else")
	res, werr := f.runReown()
	if werr == nil {
		f.Con.Printf("Re-ownership complete (owner key %X). Press Enter to power off and on into your firmware.\n", res.Fingerprint)
		if _, err := f.Con.ReadLine(0); errors.Is(err, ErrNoInput) {
			return true, err
		}
		f.shutdownTPM()
		return true, f.Machine.Reboot()
	}
	f.Con.Printf("re-ownership: %v\n", werr)
	if errors.Is(werr, ErrNoInput) {
		return true, werr
	}
	if err := reown.Cancel(f.BootDir, f.withWritableBoot); err != nil {
		f.J.Logf("re-ownership journal: %v", err)
	}
	if _, still := reown.Pending(f.BootDir); still {
		f.Con.Banner(red, "RE-OWNERSHIP UNFINISHED")
		f.problem("the re-ownership of this machine stopped half-way: the TPM, the keys or the firmware are partly reset. Nothing boots by itself; choose %s in the menu (or power off and on) to continue or restart it", menuReown)
	} else {
		f.Con.Printf("re-ownership cancelled: nothing was changed\n")
	}
	return false, nil
}

// runReown runs the wizard on this machine.
func (f *Flow) runReown() (*reown.Result, error) {
	om, ok := f.Machine.(OwnershipMachine)
	if !ok {
		return nil, errors.New("this machine cannot be re-owned from glint's menu")
	}
	w := &reown.Wizard{
		UI: &reown.ConsoleUI{Con: f.Con}, TPM: f.tpm, BootDir: f.BootDir, Writable: f.withWritableBoot,
		OpenCard: om.OpenCard, OpenDongle: f.Machine.Dongle, Where: reown.InFirmware, Now: f.now, Logf: f.J.Logf,
		Sealing: func() (*sealed.State, error) { return f.state, nil },
	}
	if dir, release, err := om.USBDrive(); err == nil {
		defer release()
		w.DefaultBackupDir = dir
	} else {
		f.J.Logf("re-ownership: no writable USB drive: %v", err)
	}
	if dev, err := om.FlashChip(); err == nil {
		// Without a USB drive the backup lives in memory only: it still
		// lets the update compare and restore within this boot.
		backups := "/tmp/glint-firmware-backups"
		if w.DefaultBackupDir != "" {
			backups = filepath.Join(w.DefaultBackupDir, "glint-firmware-backups")
		}
		w.Firmware = &reown.Flashrom{Device: dev, BackupDir: backups, WorkDir: "/tmp"}
	} else {
		f.J.Logf("re-ownership: flash chip: %v", err)
	}
	return w.Run(context.Background())
}
