package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/secret"
)

// forcePhrase must be typed in full to boot content that failed verification.
const forcePhrase = "I understand the risk"

// Menu shows the boot menu until the owner boots, reboots or powers off.
func (f *Flow) Menu() error {
	for {
		f.printMenu()
		choice, err := f.Con.Prompt("glint> ")
		if err != nil {
			return err
		}
		choice = strings.TrimSpace(choice)
		switch choice {
		case "":
			continue
		case "d":
			if f.defEntry < 0 {
				f.Con.Printf("no default entry\n")
				continue
			}
			f.bootEntry(f.defEntry, false)
		case "s":
			f.resign()
		case "r":
			f.reseal()
		case "o":
			f.ShowTOTP()
		case "v":
			f.problems = nil
			f.VerifyBoot()
		case "e":
			f.showMeasurements()
		case "j":
			for _, l := range f.J.Lines() {
				f.Con.Printf("%s\n", l)
			}
		case "t":
			f.setClock()
		case "l":
			f.resetLockout()
		case "c":
			f.checkPhoneCode()
		case "x":
			if !f.Config.Boot.Mode.AllowsRecoveryShell() {
				f.Con.Printf("restricted boot: no recovery shell; rebooting\n")
				f.shutdownTPM()
				return f.Machine.Reboot()
			}
			f.recovery()
		case "f":
			f.forceBoot()
		case "u":
			f.usbBoot()
		case menuFirmwareUpdate:
			if rebooting, err := f.updateFirmware(); rebooting || err != nil {
				return err
			}
		case menuReown:
			if rebooting, err := f.requestReown(); rebooting || err != nil {
				return err
			}
		case "p":
			f.shutdownTPM()
			return f.Machine.PowerOff()
		case "b":
			f.shutdownTPM()
			return f.Machine.Reboot()
		default:
			n, err := strconv.Atoi(choice)
			if err != nil || n < 1 || n > len(f.entries) {
				f.Con.Printf("unknown choice %q\n", choice)
				continue
			}
			f.bootEntry(n-1, false)
		}
	}
}

func (f *Flow) printMenu() {
	f.Con.Printf("\n=== glint boot menu ===  %s UTC\n", f.now().UTC().Format("2006-01-02 15:04:05"))
	if b := f.Config.Boot.Mode.Banner(); b != "" {
		f.Con.Banner(red, b)
	}
	switch {
	case f.mode != "":
		f.Con.Banner(red, "secrets are locked for this boot: "+f.mode)
	case len(f.problems) > 0:
		f.Con.Banner(red, "TAMPERING OR ERRORS FOUND: see the lines above (v to check /boot again)")
	case f.verified && f.totpOK:
		f.Con.Banner(green, "/boot verified, TOTP shown: compare it with your phone")
	}
	for i, e := range f.entries {
		mark := " "
		if i == f.defEntry {
			mark = "*"
		}
		f.Con.Printf(" %s%2d) %s\n", mark, i+1, e.FullTitle())
	}
	f.Con.Printf("  d) boot the default entry        s) re-sign /boot (owner key)\n")
	f.Con.Printf("  r) re-seal TOTP (owner key)      o) show TOTP again    v) verify /boot again\n")
	f.Con.Printf("  e) event log and PCRs            j) glint's log        t) set the clock\n")
	f.Con.Printf("  c) my phone shows another code (clock check)   l) TPM PIN lockout: status, reset (owner key)\n")
	f.Con.Printf("  x) recovery shell (owner key)    f) force boot (ignore tampering)\n")
	f.Con.Printf("  u) boot from a USB stick (ISO image, signature checked)\n")
	f.Con.Printf("  %s) update firmware from a USB stick (signed update bundle, owner key)\n", menuFirmwareUpdate)
	f.Con.Printf("  %s) re-own this machine (reset the TPM, new owner keys: a new owner's first step)\n", menuReown)
	f.Con.Printf("  b) reboot                        p) power off\n")
}

// showMeasurements prints glint's own measurements and the PCRs.
func (f *Flow) showMeasurements() {
	for _, e := range f.state.Firmware() {
		f.Con.Printf("firmware PCR %2d %x %s\n", e.PCR, short8(e.Digest), e.Description)
	}
	for _, e := range f.state.Own {
		f.Con.Printf("glint    PCR %2d %x %s\n", e.PCR, short8(e.Digest), e.Description)
	}
	if f.tpm == nil {
		return
	}
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7}
	vals, err := f.tpm.ReadPCRs(f.state.Bank, idx)
	if err != nil {
		f.Con.Printf("read PCRs: %v\n", err)
		return
	}
	for _, i := range idx {
		f.Con.Printf("PCR[%2d] %s %x  %s\n", i, f.state.Bank, vals[i], f.Profile.Describe(i))
	}
}

func short8(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

func (f *Flow) resign() {
	if f.mode != "" {
		f.Con.Printf("not in this boot: %s was already entered; reboot first\n", f.mode)
		return
	}
	if len(f.problems) > 0 {
		f.Con.Printf("You are about to sign /boot as it is now, accepting these findings:\n")
		for _, p := range f.problems {
			f.Con.Printf("  - %s\n", p)
		}
	}
	signer, err := f.ownerSigner()
	if err != nil {
		f.Con.Printf("re-sign: %v\n", err)
		return
	}
	defer signer.Wipe()
	if f.tpm != nil {
		if err := f.adminTPM(signer); err != nil {
			f.Con.Printf("re-sign: %v\n", err)
			return
		}
	}
	if err := f.signBoot(signer); err != nil {
		f.Con.Printf("re-sign: %v\n", err)
		return
	}
	f.problems = nil
	f.VerifyBoot()
}

// reseal makes a new TOTP secret sealed to the current measurements, after
// the owner has authenticated and looked at what changed.
func (f *Flow) reseal() {
	if f.tpm == nil {
		f.Con.Printf("no TPM\n")
		return
	}
	if f.mode != "" {
		f.Con.Printf("not in this boot: %s was already entered; reboot first\n", f.mode)
		return
	}
	if !f.verified {
		f.Con.Printf("re-seal needs a verified /boot first (re-sign it with s, or find out what changed)\n")
		return
	}
	signer, err := f.ownerSigner()
	if err != nil {
		f.Con.Printf("re-seal: %v\n", err)
		return
	}
	signer.Wipe()
	totpSecret, err := f.state.SealNewTOTP()
	if err != nil {
		f.Con.Printf("re-seal: %v\n", err)
		return
	}
	defer secret.Wipe(totpSecret)
	f.Con.Printf("A NEW TOTP secret is sealed to this boot's measurements. Enroll it on your phone:\n")
	if err := f.showEnrollment(totpSecret); err != nil {
		f.Con.Printf("%v\n", err)
	}
	f.ShowTOTP()
}

// recovery opens the shell only for the owner, and only after locking the
// secrets for this boot by extending the boot-mode PCR.
func (f *Flow) recovery() {
	signer, err := f.ownerSigner()
	if err != nil {
		f.Con.Printf("recovery shell refused: %v\n", err)
		return
	}
	signer.Wipe()
	if err := f.setMode(pcr.ModeRecovery); err != nil {
		f.Con.Printf("recovery shell refused: could not lock the secrets first: %v\n", err)
		return
	}
	f.Con.Banner(red, "RECOVERY SHELL: PCR 4 extended; TOTP and disk key cannot unseal until reboot")
	f.J.Logf("recovery shell opened by the owner")
	f.recoveryShell()
}

// forceBoot boots the default entry although verification failed, after a
// loud confirmation. The boot is measured as forced (PCR 4) and the OS gets
// glint.forced=1 on its command line, so it can tell.
func (f *Flow) forceBoot() {
	if !f.Config.ForceAllowed || !f.Config.Boot.Mode.AllowsForcedBoot() {
		f.Con.Printf("forced boot is disabled by the owner's configuration (boot.policy = %s)\n", f.Config.Boot.Mode)
		return
	}
	f.Con.Banner(red, "FORCE BOOT: you are about to run code that did NOT verify")
	for _, p := range f.problems {
		f.Con.Printf("  - %s\n", p)
	}
	a, err := f.Con.Prompt(fmt.Sprintf("Type %q to continue: ", forcePhrase))
	if err != nil || strings.TrimSpace(a) != forcePhrase {
		f.Con.Printf("not forced\n")
		return
	}
	if err := f.setMode(pcr.ModeForced); err != nil {
		f.Con.Printf("cannot measure the forced boot, refusing: %v\n", err)
		return
	}
	if f.defEntry < 0 {
		f.Con.Printf("no boot entry\n")
		return
	}
	f.bootEntry(f.defEntry, true)
}

// resetLockout says the TPM's dictionary-attack state in words and, after
// the owner unlocks the key (which derives the lockout authorisation),
// resets it.
func (f *Flow) resetLockout() {
	if f.tpm == nil {
		f.Con.Printf("no TPM\n")
		return
	}
	st, err := f.tpm.LockoutStatus()
	if err != nil {
		f.Con.Printf("TPM lockout status: %v\n", err)
		return
	}
	f.Con.Printf("%s\n", st.Explain())
	if st.Failures == 0 && !st.InLockout {
		return
	}
	signer, err := f.ownerSigner()
	if err != nil {
		f.Con.Printf("lockout not reset: %v\n", err)
		return
	}
	defer signer.Wipe()
	if err := f.adminTPM(signer); err != nil {
		f.Con.Printf("lockout not reset: %v\n", err)
		return
	}
	if err := f.tpm.ResetLockout(); err != nil {
		f.Con.Printf("lockout not reset: %v\n", err)
		return
	}
	f.Con.Printf("TPM PIN lockout reset: every PIN try is available again\n")
}

// modeClockSet is the boot-mode event (PCR 4) for a clock set by hand.
const modeClockSet = "glint: clock set by hand"

// setClock sets the clock. Whoever sits at the keyboard can do that, so
// glint first extends PCR 4 with "clock set by hand": the TOTP secret no
// longer unseals in this boot, and nobody can collect the codes (or drive
// the HOTP dongle) for a time of their choosing to replay them later from
// tampered firmware. The next boot shows the code at the new time.
func (f *Flow) setClock() {
	if f.tpm != nil && f.mode != modeClockSet {
		f.Con.Printf("Setting the clock locks the TOTP secret for this boot (so nobody can collect codes for a chosen time); reboot afterwards to see the code.\n")
	}
	a, err := f.Con.Prompt("New UTC time (YYYY-MM-DD HH:MM:SS): ")
	if err != nil {
		return
	}
	t, err := time.Parse("2006-01-02 15:04:05", strings.TrimSpace(a))
	if err != nil {
		f.Con.Printf("not a time: %v\n", err)
		return
	}
	if f.tpm != nil && f.mode == "" {
		if err := f.setMode(modeClockSet); err != nil {
			f.Con.Printf("clock not set: the TOTP secret could not be locked first: %v\n", err)
			return
		}
	}
	if err := f.Machine.SetClock(t); err != nil {
		f.Con.Printf("set clock: %v\n", err)
		return
	}
	f.Con.Printf("clock set to %s UTC; the TOTP secret is locked until the next boot (b reboots)\n", t.Format(time.DateTime))
}

// bootEntry loads and starts entry i. Unless forced, only a verified /boot
// boots, and only files whose bytes match the manifest.
func (f *Flow) bootEntry(i int, forced bool) {
	e := f.entries[i]
	if !forced && !f.verified {
		f.Con.Printf("refusing to boot %q: /boot or the root file system is not verified (see TAMPER lines; f forces)\n", e.Title)
		return
	}
	img, err := f.loadImage(e, forced)
	if err != nil {
		f.Con.Printf("cannot boot %q: %v\n", e.Title, err)
		return
	}
	defer secret.Wipe(img.ExtraInitrd)
	f.handOver(e.Title, img)
}

// loadImage reads an entry's files into memory, each checked against the
// signed manifest (kexec.FromEntry through readVerified), and adds the disk
// key if one is sealed for this machine.
func (f *Flow) loadImage(e bootcfg.Entry, forced bool) (kexec.Image, error) {
	img, err := kexec.FromEntry(e, f.readVerified)
	if err != nil {
		return img, err
	}
	if forced {
		img.Cmdline = strings.TrimSpace(strings.NewReplacer(" quiet", "", " splash", "").Replace(" "+img.Cmdline)) + " glint.forced=1"
	}
	// The OS initrd the key goes with: Linux's initrds, or Xen's last
	// module (dom0's initrd).
	var parts []io.Reader
	for _, r := range img.Initrds {
		parts = append(parts, bytes.NewReader(r.Data))
	}
	if len(img.Modules) > 0 {
		parts = []io.Reader{bytes.NewReader(img.Modules[len(img.Modules)-1].Data)}
	}
	key, err := f.diskKeyCpio(forced, io.MultiReader(parts...))
	if err != nil {
		if errors.Is(err, seal.ErrNotSealed) {
			return img, nil
		}
		return img, err
	}
	img.ExtraInitrd = key
	return img, nil
}
