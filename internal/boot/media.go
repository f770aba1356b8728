package boot

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/isoboot"
	"github.com/glint-boot/glint/internal/isoverify"
	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rootfs"
	"github.com/glint-boot/glint/internal/usbboot"
)

// The boot policy's parts of the flow (package bootpolicy decides what each
// mode allows; docs/boot-modes.md): the USB/ISO boot menu item, the root
// file system check after /boot verified, and the refusals of restricted
// mode.

// unsignedPhrase must be typed to boot an ISO no trusted key signed.
const unsignedPhrase = "boot it unsigned"

// usbBoot is the menu item "boot from a USB stick" (package usbboot).
func (f *Flow) usbBoot() {
	kr, err := f.isoKeyring()
	if err != nil {
		f.Con.Printf("USB boot: trusted keys: %v\n", err)
		return
	}
	res, err := usbboot.Run(f.Machine.USBStorage(), modeMeasurer{f}, consoleUI{f}, usbboot.Policy{Settings: f.Config.Boot, Keys: kr})
	switch {
	case errors.Is(err, usbboot.ErrRefused):
		f.Con.Banner(red, "USB BOOT REFUSED")
		f.Con.Printf("%v\n", err)
		return
	case err != nil:
		f.Con.Printf("USB boot: %v\n", err)
		return
	}
	how := "UNVERIFIED"
	if res.Verified != nil {
		how = "verified: " + res.Verified.Evidence[0].String()
	}
	f.Con.Printf("booting %s from %s (%s)\n", res.Boot.Entry.Title, res.Image.Name, how)
	f.handOver(res.Image.Name+": "+res.Boot.Entry.Title, res.Boot.Image())
}

// isoKeyring is the keys an ISO may be signed by under iso.keys: the
// owner's, the firmware's glint/iso-keys.asc, the built-in distribution
// keys.
func (f *Flow) isoKeyring() (*isoverify.Keyring, error) {
	owner, err := f.keyring()
	if err != nil {
		owner = nil // no owner yet: distribution keys only
	}
	return usbboot.Keyring(owner, f.OwnerFiles[usbboot.FirmwareKeysFile], f.Config.Boot.ISOKeys)
}

// modeMeasurer extends the USB boot mode into PCR 4 through the flow.
type modeMeasurer struct{ f *Flow }

func (m modeMeasurer) ExtendBootMode(ev string) error { return m.f.setMode(ev) }

// consoleUI asks the owner at the console.
type consoleUI struct{ f *Flow }

func (u consoleUI) ChooseImage(images []isoboot.Candidate) (int, bool) {
	for i, c := range images {
		u.f.Con.Printf(" %2d) %s (%d MB)\n", i+1, filepath.Base(c.Path), c.Size>>20)
	}
	return u.pick("image", len(images), 0)
}

func (u consoleUI) ChooseEntry(c isoboot.Candidate, m *isoboot.Menu) (int, bool) {
	u.f.Con.Printf("%s: volume %q\n", c.Name, m.VolumeID)
	for i, e := range m.Entries {
		mark := " "
		if i == m.Default {
			mark = "*"
		}
		u.f.Con.Printf(" %s%2d) %s\n", mark, i+1, e.FullTitle())
	}
	return u.pick("entry", len(m.Entries), m.Default)
}

// pick reads a number (Enter: def); anything else goes back.
func (u consoleUI) pick(what string, n, def int) (int, bool) {
	a, err := u.f.Con.Prompt(fmt.Sprintf("%s [%d]: ", what, def+1))
	if err != nil {
		return 0, false
	}
	a = strings.TrimSpace(a)
	if a == "" {
		return def, n > 0
	}
	i, err := strconv.Atoi(a)
	if err != nil || i < 1 || i > n {
		return 0, false
	}
	return i - 1, true
}

func (u consoleUI) ConfirmUnsigned(c isoboot.Candidate, why error) bool {
	u.f.Con.Banner(red, "NOT VERIFIED: "+c.Name)
	u.f.Con.Printf("%v\n", why)
	a, err := u.f.Con.Prompt(fmt.Sprintf("Type %q to boot it anyway: ", unsignedPhrase))
	return err == nil && strings.TrimSpace(a) == unsignedPhrase
}

func (u consoleUI) Progress(done, total int64) {
	if total > 0 && done == total {
		u.f.Con.Printf("hashed %d MB\n", total>>20)
	}
}

func (u consoleUI) Say(format string, a ...any) { u.f.Con.Printf(format+"\n", a...) }

// handOver is the last step of every boot: measure "leaving glint" into
// PCR 4, lock the flash and check the platform (platformlock.go), lock the
// TPM's platform hierarchy, kexec. It returns only if the kexec failed.
func (f *Flow) handOver(title string, img kexec.Image) {
	// Report while the PCRs still hold this boot's state (before "leaving
	// glint" moves PCR 4 on).
	f.reportOnce()
	if err := f.setMode(pcr.ModeLeaving); err != nil {
		f.Con.Printf("cannot lock the secrets before hand-over, refusing: %v\n", err)
		return
	}
	f.lockPlatformBeforeKexec()
	if f.tpm != nil {
		if err := f.tpm.LockPlatform(); err != nil {
			f.J.Logf("TPM platform hierarchy not locked: %v", err)
		}
		f.shutdownTPM()
	}
	f.reportTiming()
	f.Con.Printf("glint: kexec %s\n", title)
	syncDisks()
	err := f.Machine.Kexec(img)
	f.Con.Printf("kexec %q failed: %v\n", title, err)
}

// checkRootfs compares the root file system with the owner-signed list in
// /boot (rootfs.check = boot): after /boot verified, from the list's bytes
// as they were verified, with the root mounted read-only.
func (f *Flow) checkRootfs() {
	if !f.Config.Boot.RootfsCheck || !f.verified {
		return
	}
	raw, ok := f.kept[rootfs.ListName]
	if !ok {
		f.problem("rootfs.check is on, but /boot holds no signed %s: hash the root file system (glint rootfs sign)", rootfs.ListName)
		return
	}
	l, err := rootfs.Parse(raw)
	if err != nil {
		f.problem("the owner-signed %s cannot be read: %v", rootfs.ListName, err)
		return
	}
	spec := f.Config.Boot.RootfsDevice
	if spec == "" && f.defEntry >= 0 && f.defEntry < len(f.entries) {
		for _, w := range strings.Fields(f.entries[f.defEntry].Cmdline) {
			if v, ok := strings.CutPrefix(w, "root="); ok {
				spec = v
			}
		}
	}
	if spec == "" {
		f.problem("root file system check: set rootfs.device (UUID=...) in the owner configuration: the default entry names no root=")
		return
	}
	dir, release, err := f.Machine.MountRoot(spec)
	if err != nil {
		f.problem("root file system check: %v", err)
		return
	}
	defer release()
	f.Con.Printf("checking the root file system (%s)...\n", strings.Join(l.Dirs, " "))
	st, err := rootfs.Check(dir, l, rootfs.Options{Fast: f.Config.Boot.RootfsFast})
	var te *rootfs.TamperError
	switch {
	case errors.As(err, &te):
		// Like a tampered /boot: nothing boots by itself; the owner may
		// force a boot where the policy allows it.
		f.verified = false
		f.Con.Banner(red, "THE ROOT FILE SYSTEM WAS MODIFIED since you signed it")
		for _, c := range te.Changed {
			f.problem("root file system: changed %s", c)
		}
		for _, a := range te.Added {
			f.problem("root file system: added %q", a.Path)
		}
		for _, r := range te.Removed {
			f.problem("root file system: removed %q", r.Path)
		}
	case err != nil:
		f.problem("root file system check: %v", err)
	default:
		f.Con.Printf("root file system: verified (%d entries, %d files read)\n", st.Entries, st.Hashed)
	}
}

// basicBoot is basic mode: no TOTP, no signature, no rollback check; the
// menu boots what /boot holds, under a permanent UNPROTECTED banner
// (printMenu). The owner chose it in the measured configuration.
func (f *Flow) basicBoot() error {
	f.Con.Banner(red, f.Config.Boot.Mode.Banner())
	f.verified = true // nothing is verified in basic mode: every entry may boot
	if len(f.entries) > 0 && f.defEntry >= 0 {
		e := f.entries[f.defEntry]
		if !f.Con.Countdown(fmt.Sprintf("Booting default entry %q (UNPROTECTED)", e.Title), f.Config.Countdown) {
			f.bootEntry(f.defEntry, false)
		}
	}
	return f.Menu()
}
