package bootcfg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Where distributions put their configurations, relative to the boot
// directory. Both layouts are tried because the directory glint is given may be
// the /boot partition or a root file system containing boot/.
var (
	grubConfigs = []string{
		"grub/grub.cfg", "grub2/grub.cfg",
		"boot/grub/grub.cfg", "boot/grub2/grub.cfg",
	}
	grubEFIGlobs    = []string{"EFI/*/grub.cfg", "efi/EFI/*/grub.cfg", "efi/*/grub.cfg"}
	syslinuxConfigs = []string{
		"extlinux/extlinux.conf", "syslinux/syslinux.cfg", "extlinux.conf", "syslinux.cfg",
		"isolinux/isolinux.cfg", "boot/extlinux/extlinux.conf", "boot/syslinux/syslinux.cfg",
	}
	grubenvFiles = []string{"grub/grubenv", "grub2/grubenv", "boot/grub/grubenv", "boot/grub2/grubenv"}
)

// Discovery is everything Discover found.
type Discovery struct {
	Entries []Entry
	// Default indexes Entries: the entry the first configuration with a
	// default setting names, 0 when none does.
	Default int
	// DefaultSetting is that setting as written ("0", a title, an id).
	DefaultSetting string
	// Configs are the configuration files read, in order.
	Configs []string
	Notes   []string
	// Errors are configurations that could not be parsed; entries from the
	// others are still returned.
	Errors []error
}

// Discover reads every boot configuration under bootDir (grub, BLS,
// syslinux), merges their entries (an entry booting exactly what an earlier
// one boots is folded into it) and returns them with the default's index.
// It fails only when no entry at all was found.
func Discover(bootDir string) ([]Entry, int, error) {
	d, err := DiscoverFS(os.DirFS(bootDir))
	if err != nil {
		return nil, 0, fmt.Errorf("boot entries in %s: %w", bootDir, err)
	}
	return d.Entries, d.Default, nil
}

// DiscoverFS is Discover on any file system rooted at the boot directory.
func DiscoverFS(fsys fs.FS) (*Discovery, error) {
	d := &Discovery{}
	var defaults []string
	blsDone := false
	env := map[string]string{}
	for _, f := range grubenvFiles {
		if data, err := readCapped(fsys, f, MaxGrubenvSize); err == nil {
			if vars, err := ParseGrubenv(f, data); err == nil {
				env = vars
				break
			}
		}
	}
	blsHook := func(vars map[string]string) ([]Entry, error) {
		blsDone = true
		return ParseBLSDir(fsys, vars)
	}

	var grubFiles []string
	grubFiles = append(grubFiles, grubConfigs...)
	for _, g := range grubEFIGlobs {
		m, _ := fs.Glob(fsys, g)
		grubFiles = append(grubFiles, m...)
	}
	for _, f := range grubFiles {
		data, err := readCapped(fsys, f, MaxFileSize)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				d.Errors = append(d.Errors, err)
			}
			continue
		}
		d.Configs = append(d.Configs, f)
		cfg, err := ParseGrub(f, data, GrubOptions{FS: fsys, BLS: blsHook})
		if err != nil {
			d.Errors = append(d.Errors, err)
			continue
		}
		d.Notes = append(d.Notes, cfg.Notes...)
		if err := d.merge(cfg.Entries); err != nil {
			return nil, err
		}
		if len(cfg.Entries) > 0 {
			defaults = append(defaults, cfg.Default)
		}
	}

	if !blsDone {
		bls, err := ParseBLSDir(fsys, env)
		if err != nil {
			d.Errors = append(d.Errors, err)
		} else if len(bls) > 0 {
			d.Configs = append(d.Configs, BLSDir)
			if err := d.merge(bls); err != nil {
				return nil, err
			}
			defaults = append(defaults, env["saved_entry"])
		}
	}

	for _, f := range syslinuxConfigs {
		data, err := readCapped(fsys, f, MaxFileSize)
		if err != nil {
			continue
		}
		d.Configs = append(d.Configs, f)
		cfg, err := ParseSyslinux(f, data, SyslinuxOptions{FS: fsys})
		if err != nil {
			d.Errors = append(d.Errors, err)
			continue
		}
		if err := d.merge(cfg.Entries); err != nil {
			return nil, err
		}
		if len(cfg.Entries) > 0 {
			defaults = append(defaults, cfg.Default)
		}
	}

	if len(d.Entries) == 0 {
		if len(d.Errors) > 0 {
			return nil, errors.Join(append([]error{ErrNoConfig}, d.Errors...)...)
		}
		return nil, fmt.Errorf("%w: looked for grub/grub.cfg, grub2/grub.cfg, EFI/*/grub.cfg, loader/entries/*.conf, extlinux/extlinux.conf and syslinux/syslinux.cfg", ErrNoConfig)
	}
	for _, def := range defaults {
		if def != "" {
			d.DefaultSetting = def
			d.Default = ResolveDefault(d.Entries, def)
			break
		}
	}
	return d, nil
}

// merge appends entries, folding one that boots exactly what an earlier entry
// boots into that entry's aliases (Fedora lists each BLS entry once in grub
// and once in loader/entries; an EFI grub.cfg may repeat the main one).
func (d *Discovery) merge(es []Entry) error {
	// Only entries of earlier configurations are folded into: inside one
	// grub.cfg the same kernel legitimately appears twice (top level and
	// under "Advanced options") and grub's index paths count both.
	earlier := len(d.Entries)
	for i := range es {
		dup := false
		for j := 0; j < earlier; j++ {
			if sameBoot(&d.Entries[j], &es[i]) {
				d.Entries[j].Aliases = append(d.Entries[j].Aliases, es[i].ID)
				d.Entries[j].Aliases = append(d.Entries[j].Aliases, es[i].Aliases...)
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if len(d.Entries) >= MaxEntries {
			return fmt.Errorf("%w: cap %d", ErrTooManyEntries, MaxEntries)
		}
		d.Entries = append(d.Entries, es[i])
	}
	return nil
}
