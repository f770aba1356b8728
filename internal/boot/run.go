package boot

import (
	"errors"
	"fmt"
	"time"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
)

// Run is one power-on. It returns only when the machine is about to power
// off or reboot, or when the console has no more input (tests); errors are
// shown and lead to the menu, never out of PID 1.
func (f *Flow) Run() error {
	f.Con.Printf("glint: boot flow starting (%s profile)\n", f.Profile.Name)
	f.openTPM()
	if f.tpm != nil {
		for _, m := range f.Modules {
			if err := f.measure(pcr.Measurement{PCR: pcr.Modules, Description: "kernel module " + m.Name, Data: m.Data}); err != nil {
				f.Con.Printf("glint: %v\n", err)
			}
		}
		if err := f.measureOwnerFiles(); err != nil {
			f.Con.Printf("glint: %v\n", err)
		}
		// A requested or interrupted re-ownership runs now, while the
		// TPM's platform hierarchy is still open (reown.go).
		if done, err := f.pendingReown(); done {
			return err
		}
		f.lockPlatform()
		f.checkClock()
		f.checkInitrdCovered()
	}
	f.loadEntries()
	if !f.owned() && len(f.OwnerFiles[rom.OwnerKeyFile]) > 0 {
		if marks, removed := f.stateRemoved(); removed {
			// Not a new machine: someone deleted glint's state (and
			// perhaps changed the kernel) hoping for a fresh set-up that
			// the owner's passphrase would sign.
			f.Con.Banner(red, "GLINT STATE REMOVED: /boot has no signed manifest and no sealed secret, but this TPM was set up by glint")
			f.problem("glint's state on /boot was removed, but the TPM holds %s from an earlier set-up: treat this as tampering, not as a new machine. If you removed it yourself, re-sign /boot (s) and re-seal (r) after checking what is listed", marks)
			return f.Menu()
		}
		if err := f.OwnerSetup(); err != nil {
			f.Con.Banner(red, "SET-UP FAILED")
			f.Con.Printf("set-up: %v\n", err)
		} else {
			f.Con.Printf("Set-up complete. Press Enter to reboot.\n")
			if _, err := f.Con.ReadLine(0); errors.Is(err, ErrNoInput) {
				return err
			}
			f.shutdownTPM()
			return f.Machine.Reboot()
		}
	}
	if !f.Config.Boot.Mode.TamperChecks() {
		return f.basicBoot()
	}
	f.ShowTOTP()
	f.VerifyBoot()
	f.checkRootfs()
	f.applySignedDefault()
	if f.verified && f.totpOK && len(f.entries) > 0 && f.defEntry >= 0 {
		e := f.entries[f.defEntry]
		if !f.Con.Countdown(fmt.Sprintf("Booting default entry %q", e.Title), f.Config.Countdown) {
			f.bootEntry(f.defEntry, false)
		}
	} else if len(f.problems) > 0 {
		f.Con.Banner(red, fmt.Sprintf("%d PROBLEM(S) FOUND: the default entry will not boot by itself", len(f.problems)))
		// A machine that stops tells its attestation server (attest.*):
		// changed firmware shows on the dashboard, not only on this screen.
		f.reportOnce()
	}
	return f.Menu()
}

// openTPM opens the TPM and starts the measured state of this boot: the
// bank glint uses and PCR 4 as glint found it. Without a TPM the state
// still holds /boot for the no-TPM HOTP check.
func (f *Flow) openTPM() {
	f.state = &sealed.State{BootDir: f.BootDir, Profile: f.Profile, Writable: f.withWritableBoot, Logf: f.J.Debugf, Now: f.now}
	// The owner's approval key, if the owner files name one: secrets are
	// then sealed so that approved firmware updates keep them.
	if k, from, err := approval.KeyFromOwnerFiles(f.OwnerFiles); err == nil {
		f.state.ApprovalKey = k
		f.J.Logf("approval key from %s%s", rom.OwnerFilePrefix, from)
	} else if from != "" {
		f.Con.Printf("glint: approval key: %v\n", err)
	}
	if f.TPM == nil {
		return
	}
	t, err := f.TPM.OpenTPM()
	if err != nil {
		f.Con.Banner(yellow, "NO TPM")
		f.Con.Printf("glint: %v\n", err)
		return
	}
	f.tpm = t
	f.state.TPM, f.state.Bank, f.state.Start = t, tpm.ChooseBank(t), map[int][]byte{}
	if f.Firmware != nil {
		f.state.FirmwareEvents = f.Firmware.Events
	}
	if err := f.state.RecordStart(); err != nil {
		f.Con.Printf("glint: %v\n", err)
		return
	}
	f.J.Logf("%s, PCR bank %s", t.Version(), f.state.Bank)
}

// checkInitrdCovered warns loudly on a UEFI machine whose firmware log
// shows no measured initrd: there the firmware measures only the kernel
// image, and unless glint's initramfs is built into it, another initramfs
// (glint's plus an appended cpio) would get the genuine code.
func (f *Flow) checkInitrdCovered() {
	if f.Profile.Name != pcr.UEFI.Name || sealed.InitrdMeasured(f.state.Firmware()) {
		return
	}
	f.Con.Banner(red, "UNSUPPORTED UEFI SET-UP: glint's initramfs is not measured")
	f.Con.Printf("glint: the firmware log has no \"Linux initrd\" event in PCR 9, so the TOTP code does not cover glint's initramfs unless it is built into the kernel image. Supported: a kernel (Linux 5.17+) that loads its initrd through the EFI stub (LoadFile2), or an initramfs built into the kernel or a unified kernel image.\n")
	f.J.Logf("UEFI: no measured initrd in PCR 9")
}

// lockPlatform locks the TPM's platform hierarchy (2.0) or physical
// presence (1.2) now, before any secret is released: nothing after glint,
// the recovery shell included, can then clear the TPM through it. One the
// firmware locked already (OVMF does) is fine. One that can be neither
// locked nor found locked means no secret is released in this boot.
func (f *Flow) lockPlatform() {
	if err := f.tpm.LockPlatform(); err != nil {
		f.platformErr = err
		f.problem("TPM platform hierarchy: %v; glint could neither lock it nor find it locked by the firmware, so no secret is released in this boot", err)
		return
	}
	if st, err := f.tpm.Platform(); err == nil {
		f.J.Logf("TPM platform hierarchy %s", st)
	}
}

// measureOwnerFiles extends PCR 7 with the owner files, as pcr.OwnerFiles
// lists them.
func (f *Flow) measureOwnerFiles() error {
	for _, m := range pcr.OwnerFiles(f.OwnerFiles) {
		if err := f.measure(m); err != nil {
			return err
		}
	}
	return nil
}

// loadEntries parses the OS's boot configuration.
func (f *Flow) loadEntries() {
	f.entries, f.defEntry = nil, -1
	if f.BootDir == "" {
		return
	}
	entries, def, err := bootcfg.Discover(f.BootDir)
	if err != nil {
		f.J.Logf("boot configuration: %v", err)
	}
	f.entries, f.defEntry = entries, def
	if f.defEntry < 0 && len(entries) > 0 {
		f.defEntry = 0
	}
}

// shutdownTPM sends an orderly shutdown so the coming reset is not counted as
// a dictionary-attack event.
func (f *Flow) shutdownTPM() {
	if f.tpm != nil {
		if err := f.tpm.Shutdown(); err != nil {
			f.J.Debugf("TPM shutdown: %v", err)
		}
	}
}

// applySignedDefault makes the default entry the one the owner recorded in
// the signed manifest (glint boot default N), when it still exists.
func (f *Flow) applySignedDefault() {
	if f.manifest == nil || f.manifest.Default == "" {
		return
	}
	for i, e := range f.entries {
		if e.ID == f.manifest.Default {
			f.defEntry = i
			return
		}
	}
	f.Con.Printf("the signed default entry %q is no longer in the boot configuration; using %q\n", f.manifest.Default, f.entryTitle(f.defEntry))
}

func (f *Flow) entryTitle(i int) string {
	if i < 0 || i >= len(f.entries) {
		return "none"
	}
	return f.entries[i].Title
}

// reportTiming logs what this boot cost: glint's own work, the TPM, and the
// owner, so slow parts show up in the journal and the test bench.
func (f *Flow) reportTiming() {
	if f.Started.IsZero() {
		return
	}
	total := time.Since(f.Started)
	var n int
	var inTPM time.Duration
	if s, ok := f.TPM.(interface{ Stats() *tpm.Stats }); ok && s.Stats() != nil {
		n, inTPM = s.Stats().Snapshot()
	}
	own := total - inTPM - f.Con.waited
	f.Con.Printf("glint: boot timing: %d ms own work, %d TPM commands taking %d ms, %d ms waiting for the owner\n",
		own.Milliseconds(), n, inTPM.Milliseconds(), f.Con.waited.Milliseconds())
}
