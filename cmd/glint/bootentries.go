package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/glint-boot/glint/internal/bootcfg"
)

func init() {
	register(command{
		name:    "boot list",
		summary: "list the boot entries found in /boot (grub, BLS, syslinux); * marks the default",
		usage:   "[--boot DIR]",
		run:     runBootList,
	})
}

// bootEntries reads the OS menu of e.bootDir; `glint boot default` and the
// boot flow use the same numbering (1-based, as printed).
func bootEntries(e *env) (*bootcfg.Discovery, error) {
	return bootcfg.DiscoverFS(os.DirFS(e.bootDir))
}

func runBootList(e *env, args []string) error {
	fs := commandFlags(e, "boot list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("boot list takes no arguments")
	}
	d, err := bootEntries(e)
	if err != nil {
		return fmt.Errorf("%w (is %s the boot partition? use --boot DIR)", err, e.bootDir)
	}
	w := e.stdout
	for i, en := range d.Entries {
		mark := " "
		if i == d.Default {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %2d  %s\n", mark, i+1, en.FullTitle())
		fmt.Fprintf(w, "       kind    %s\n", en.Kind)
		fmt.Fprintf(w, "       kernel  %s\n", en.Kernel)
		for _, in := range en.Initrds {
			fmt.Fprintf(w, "       initrd  %s\n", in)
		}
		for _, m := range en.Modules {
			extra := ""
			if m.NoUnzip {
				extra = " (--nounzip)"
			}
			fmt.Fprintf(w, "       module  %s %s%s\n", m.Path, m.Cmdline, extra)
		}
		fmt.Fprintf(w, "       cmdline %s\n", en.Cmdline)
		fmt.Fprintf(w, "       id      %s\n", en.ID)
		fmt.Fprintf(w, "       from    %s\n", en.Source)
		if len(en.Missing) > 0 {
			fmt.Fprintf(w, "       MISSING %s (this entry cannot boot)\n", strings.Join(en.Missing, ", "))
		}
	}
	if d.DefaultSetting != "" {
		fmt.Fprintf(w, "default: %d (configuration says %q)\n", d.Default+1, d.DefaultSetting)
	}
	for _, n := range d.Notes {
		fmt.Fprintf(e.stderr, "note: %s\n", n)
	}
	for _, err := range d.Errors {
		fmt.Fprintf(e.stderr, "warning: %v\n", err)
	}
	return nil
}
