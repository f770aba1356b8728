package reown

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

// check is step 1: everything the later steps need is there, before
// anything is changed. A missing TPM, /boot or firmware access stops the
// wizard here, with what to do; a missing card or dongle only narrows the
// choices.
func (s *session) check(ctx context.Context) error {
	w := s.w
	var problems []string
	line := func(ok bool, format string, a ...any) {
		mark := "ok  "
		if !ok {
			mark = "NO  "
		}
		w.say("  %s %s\n", mark, fmt.Sprintf(format, a...))
	}

	// The TPM, and whether it can be cleared from here.
	v := w.TPM.Version()
	line(true, "TPM: %s", v)
	s.j.TPMFamily = int(v)
	if s.j.Has(MarkTPM) {
		line(true, "TPM reset: done by the interrupted run")
	} else if err := s.checkClearable(); err != nil {
		line(false, "TPM reset: %v", err)
		problems = append(problems, err.Error())
	} else {
		line(true, "TPM reset: possible here")
	}

	// /boot, and that glint can write there.
	if err := w.writable(func() error { return probeWrite(w.BootDir) }); err != nil {
		line(false, "/boot (%s): %v", w.BootDir, err)
		problems = append(problems, fmt.Sprintf("/boot at %s cannot be written: %v", w.BootDir, err))
	} else {
		what := "no signed /boot yet"
		if _, _, err := manifest.ReadPair(w.BootDir); err == nil {
			what = "a signed manifest is there (step 5 signs /boot with your key)"
		}
		line(true, "/boot: %s, %s", w.BootDir, what)
	}

	// The firmware: readable, a coreboot image with a flash map (where the
	// owner files go); writability shows when it is written (step 4), but
	// a lock glint knows of is reported now.
	if w.Firmware == nil {
		line(false, "firmware: glint cannot reach the flash chip here")
		problems = append(problems, "no way to write the firmware from here: run the wizard from glint's boot menu, or give a programmer (glint own --programmer ...) or an image file (--rom FILE) to flash yourself")
	} else if img, err := w.Firmware.Read(ctx); err != nil {
		line(false, "firmware (%s): %v", w.Firmware, err)
		problems = append(problems, fmt.Sprintf("the firmware could not be read: %s", describeFlashError(err)))
	} else if parsed, err := rom.FromBytes(img); err != nil || parsed.FMAP == nil {
		if err == nil {
			err = errors.New("no coreboot flash map")
		}
		line(false, "firmware (%s): not a coreboot image glint can personalise: %v", w.Firmware, err)
		problems = append(problems, "the firmware is not a coreboot image with glint: install glint's firmware first (docs/flashing.md)")
	} else {
		prev := "no owner key"
		if files, err := rom.OwnerFiles(parsed); err == nil {
			if keys, err := rom.CheckOwnerKeys(files[rom.OwnerKeyFile], w.now()); err == nil && len(keys) > 0 {
				var names []string
				for _, k := range keys {
					names = append(names, describeOwnerKey(k))
				}
				prev = "owner key now: " + strings.Join(names, "; ")
			}
		}
		line(true, "firmware (%s): %d KiB, %s", w.Firmware, len(img)>>10, prev)
	}

	// The owner's card and HOTP dongle are optional.
	if w.OpenCard != nil {
		if c, where, err := w.OpenCard(); err == nil {
			line(true, "OpenPGP card: %s on %s", c.Label(), where)
			c.Close()
		} else {
			line(true, "OpenPGP card: none found (%v); a passphrase-protected key file can be used instead", err)
		}
	}
	if w.OpenDongle != nil {
		if d, err := w.OpenDongle(); err == nil {
			line(true, "HOTP dongle: found (it will be programmed in step 5)")
			d.Close()
		} else if errors.Is(err, dongle.ErrNoDongle) {
			line(true, "HOTP dongle: none plugged in (optional)")
		} else {
			line(true, "HOTP dongle: %v (optional)", err)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing was changed; first: %s", strings.Join(problems, "; "))
	}
	return nil
}

// checkClearable says whether the TPM can be cleared from where the wizard
// runs (tpm.TPM.Clear's two ways: the platform hierarchy / physical
// presence, open only in glint's boot menu; the lockout hierarchy, with
// its authorisation, which is empty until an owner sets one).
func (s *session) checkClearable() error {
	w := s.w
	st, err := w.TPM.Platform()
	if err == nil && !st.Locked() {
		return nil
	}
	if w.TPM.Version() == tpm.Version20 {
		marks, err := w.TPM.SetupMarks(manifest.DefaultCounterIndex)
		if err == nil && !marks.LockoutAuth {
			return nil // lockout authorisation still empty
		}
	}
	if w.Where == InFirmware {
		return fmt.Errorf("the firmware locked the TPM before glint (%v): clear the TPM in the firmware's setup, then run the wizard again", st)
	}
	return errors.New("the TPM belongs to its current owner and can only be cleared from glint's boot menu (menu item 'Re-own this machine') or the firmware setup; this is what keeps a program on the running system from resetting it")
}

// probeWrite checks that a file can be created and removed in dir.
func probeWrite(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	d := filepath.Join(dir, JournalDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(d, ".probe-")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func describeOwnerKey(k rom.OwnerKey) string {
	who := ""
	if len(k.UserIDs) > 0 {
		who = " " + k.UserIDs[0]
	}
	return fmt.Sprintf("%s %s%s", k.Algorithm, k.Fingerprint, who)
}
