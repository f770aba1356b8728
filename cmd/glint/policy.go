package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/glint-boot/glint/internal/bootpolicy"
	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/safefile"
)

func init() {
	register(command{name: "policy show", summary: "show the boot policy (mode, ISO and root file system settings) of a firmware image or config file",
		usage: "--rom IMAGE | --config FILE", run: runPolicyShow})
	register(command{name: "policy set", summary: "set the boot mode (normal|restricted|basic) or a boot policy setting in a firmware image or config file",
		usage: "--rom IMAGE [--out NEW] | --config FILE  MODE | KEY=VALUE", run: runPolicySet})
}

// readOwnerConfig returns the owner configuration of a ROM image (CBFS
// glint/config, empty if absent) or of a plain file.
func readOwnerConfig(romPath, cfgPath string) ([]byte, *rom.Image, error) {
	switch {
	case romPath != "" && cfgPath != "":
		return nil, nil, usageErrorf("give --rom or --config, not both")
	case romPath != "":
		img, err := rom.FromFile(romPath)
		if err != nil {
			return nil, nil, err
		}
		files, err := rom.OwnerFiles(img)
		if err != nil {
			return nil, nil, err
		}
		return files[rom.OwnerConfigFile], img, nil
	case cfgPath != "":
		b, err := os.ReadFile(cfgPath)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
		return b, nil, err
	}
	return nil, nil, usageErrorf("give --rom IMAGE or --config FILE")
}

func runPolicyShow(e *env, args []string) error {
	fs := commandFlags(e, "policy show")
	romPath := fs.String("rom", "", "firmware image")
	cfgPath := fs.String("config", "", "owner configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	raw, _, err := readOwnerConfig(*romPath, *cfgPath)
	if err != nil {
		return err
	}
	c, err := ownerconfig.Parse(raw)
	if err != nil {
		return err
	}
	b := c.Boot
	fmt.Fprintf(e.stdout, "boot.policy = %s\n", b.Mode)
	if banner := b.Mode.Banner(); banner != "" {
		fmt.Fprintf(e.stdout, "  %s\n", banner)
	}
	fmt.Fprintf(e.stdout, "  forced boot %s, unsigned ISO %s, recovery shell %s, flashing from the menu %s\n",
		allowed(b.Mode.AllowsForcedBoot() && c.ForceAllowed), allowed(b.Mode.AllowsUnsignedISO()), allowed(b.Mode.AllowsRecoveryShell()), allowed(b.Mode.AllowsMenuFlashing()))
	fmt.Fprintf(e.stdout, "iso.keys = %s\niso.cmdline.add = %s\niso.cmdline.remove = %s\n", b.ISOKeys, strings.Join(b.ISOAdd, " "), strings.Join(b.ISORemove, " "))
	check := "off"
	if b.RootfsCheck {
		check = "boot"
	}
	fmt.Fprintf(e.stdout, "rootfs.check = %s\nrootfs.device = %s\nrootfs.fast = %v\n", check, b.RootfsDevice, b.RootfsFast)
	return nil
}

func allowed(b bool) string {
	if b {
		return "allowed"
	}
	return "REFUSED"
}

func runPolicySet(e *env, args []string) error {
	fs := commandFlags(e, "policy set")
	romPath := fs.String("rom", "", "firmware image to change (written to --out, default: in place, atomically)")
	out := fs.String("out", "", "where to write the changed image (default: --rom itself)")
	cfgPath := fs.String("config", "", "owner configuration file to change")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint policy set --rom IMAGE | --config FILE  normal|restricted|basic|KEY=VALUE")
	}
	key, value := "boot.policy", fs.Arg(0)
	if k, v, ok := strings.Cut(fs.Arg(0), "="); ok {
		key, value = strings.TrimSpace(k), strings.TrimSpace(v)
	}
	raw, img, err := readOwnerConfig(*romPath, *cfgPath)
	if err != nil {
		return err
	}
	before, err := ownerconfig.Parse(raw)
	if err != nil {
		return fmt.Errorf("the current owner configuration does not parse, fix it first: %w", err)
	}
	changed, err := bootpolicy.SetInConfig(raw, key, value)
	if err != nil {
		return usageErrorf("%v", err)
	}
	after, err := ownerconfig.Parse(changed)
	if err != nil {
		return err
	}
	if img == nil {
		if err := safefile.Write(*cfgPath, changed, 0o644); err != nil {
			return err
		}
	} else {
		if raw != nil {
			if img, err = img.RemoveFile(rom.OwnerArea, rom.OwnerFilePrefix+rom.OwnerConfigFile); err != nil {
				return err
			}
		}
		if img, err = img.AddFile(rom.OwnerArea, rom.OwnerFilePrefix+rom.OwnerConfigFile, changed, rom.AddOptions{}); err != nil {
			return err
		}
		dst := *out
		if dst == "" {
			dst = *romPath
		}
		if err := safefile.Write(dst, img.Data, 0o644); err != nil {
			return err
		}
		*romPath = dst
	}
	where := *cfgPath
	if where == "" {
		where = *romPath + " (CBFS " + rom.OwnerFilePrefix + rom.OwnerConfigFile + ")"
	}
	fmt.Fprintf(e.stdout, "%s = %s written to %s (boot mode %s -> %s)\n", key, value, where, before.Boot.Mode, after.Boot.Mode)
	fmt.Fprintln(e.stdout, "The configuration is measured into PCR 7: after flashing, the TOTP code will not match until you authenticate and reseal (glint otp seal, or the boot menu).")
	return nil
}
