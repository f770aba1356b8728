package boot

import (
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
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
			if err := f.measure(pcr.Modules, "kernel module "+m.Name, m.Data); err != nil {
				f.Con.Printf("glint: %v\n", err)
			}
		}
		if err := f.MeasureOwnerFiles(); err != nil {
			f.Con.Printf("glint: %v\n", err)
		}
	}
	f.loadEntries()
	if !f.owned() && len(f.OwnerFiles[rom.OwnerKeyFile]) > 0 {
		if err := f.OwnerSetup(); err != nil {
			f.Con.Banner(red, "SET-UP FAILED")
			f.Con.Printf("set-up: %v\n", err)
		} else {
			f.Con.Printf("Set-up complete. Press Enter to reboot.\n")
			if _, err := f.Con.ReadLine(0); errors.Is(err, ErrNoInput) {
				return err
			}
			f.shutdownTPM()
			return f.M.Reboot()
		}
	}
	f.ShowTOTP()
	f.VerifyBoot()
	f.applySignedDefault()
	if f.verified && f.totpOK && len(f.entries) > 0 && f.defEntry >= 0 {
		e := f.entries[f.defEntry]
		if !f.Con.Countdown(fmt.Sprintf("Booting default entry %q", e.Title), f.Config.Countdown) {
			f.bootEntry(f.defEntry, false)
		}
	} else if len(f.problems) > 0 {
		f.Con.Banner(red, fmt.Sprintf("%d PROBLEM(S) FOUND: the default entry will not boot by itself", len(f.problems)))
	}
	return f.Menu()
}

// openTPM opens the TPM and records the PCRs as glint found them.
func (f *Flow) openTPM() {
	if f.OpenTPM == nil {
		return
	}
	t, err := f.OpenTPM()
	if err != nil {
		f.Con.Banner(yellow, "NO TPM")
		f.Con.Printf("glint: %v\n", err)
		return
	}
	f.tpm = t
	f.bank = tpm.ChooseBank(t)
	vals, err := t.ReadPCRs(f.bank, []int{pcr.BootMode})
	if err != nil {
		f.Con.Printf("glint: read PCRs: %v\n", err)
		return
	}
	f.startPCRs = vals
	f.J.Logf("%s, PCR bank %s", t.Version(), f.bank)
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
