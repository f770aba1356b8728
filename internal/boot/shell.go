package boot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/safefile"
)

// recoveryShell is glint's recovery command line. The payload carries no
// busybox (it must fit the flash beside the kernel), so the shell offers
// glint's own verbs (verify, eventlog, rom, boot list ... through RunCommand)
// and a few file tools to look around. It runs only after the owner
// authenticated and PCR 4 was extended, so nothing typed here can unseal a
// secret.
func (f *Flow) recoveryShell() {
	f.Con.Printf("glint recovery shell: 'help' lists commands, 'exit' returns to the menu.\n")
	if f.BootDir != "" {
		f.Con.Printf("/boot is mounted read-only at %s\n", f.BootDir)
	}
	for {
		line, err := f.Con.Prompt("glint-recovery# ")
		if err != nil {
			return
		}
		args := strings.Fields(line)
		if len(args) == 0 {
			continue
		}
		switch args[0] {
		case "exit", "quit":
			return
		case "help":
			f.Con.Printf("  ls [DIR]         list a directory\n")
			f.Con.Printf("  cat FILE         print a file (first 64 KiB)\n")
			f.Con.Printf("  pcrs             the PCRs now\n")
			f.Con.Printf("  journal          glint's log of this boot\n")
			f.Con.Printf("  glint verbs      e.g. verify --boot %s, eventlog show, rom ls FILE, boot list --boot %s\n", f.BootDir, f.BootDir)
			f.Con.Printf("  exit             back to the menu\n")
		case "ls":
			dir := "/"
			if len(args) > 1 {
				dir = args[1]
			}
			f.shellLs(dir)
		case "cat":
			if len(args) < 2 {
				f.Con.Printf("cat FILE\n")
				continue
			}
			b, err := safefile.ReadCapped(args[1], 64<<10)
			if err != nil {
				f.Con.Printf("cat: %v\n", err)
				continue
			}
			f.Con.Printf("%s\n", b)
		case "pcrs":
			f.showMeasurements()
		case "journal":
			for _, l := range f.J.Lines() {
				f.Con.Printf("%s\n", l)
			}
		default:
			if f.RunCommand == nil {
				f.Con.Printf("unknown command %q ('help')\n", args[0])
				continue
			}
			if args[0] == "glint" {
				args = args[1:]
			}
			if len(args) == 0 || args[0] == "init" {
				args = []string{"help"} // never start a second boot flow
			}
			if err := f.RunCommand(args, f.Con.out); err != nil {
				f.Con.Printf("glint %s: %v\n", strings.Join(args, " "), err)
			}
		}
	}
}

func (f *Flow) shellLs(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		f.Con.Printf("ls: %v\n", err)
		return
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		names = append(names, fmt.Sprintf("%s %10d %s", info.Mode(), info.Size(), filepath.Join(dir, e.Name())))
	}
	sort.Strings(names)
	for _, n := range names {
		f.Con.Printf("%s\n", n)
	}
}

// RunCommandFunc runs one glint CLI verb (cmd/glint passes its run).
type RunCommandFunc func(args []string, out io.Writer) error
