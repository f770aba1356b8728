// Package bootcfg finds the operating systems a /boot directory offers: it
// reads the boot loader configurations a distribution writes there and turns
// them into a flat list of Entry values that glint's OS menu shows and that
// internal/kexec loads.
//
// Three formats are understood, because these are what distributions ship:
//
//   - GRUB 2 grub.cfg (grub/grub.cfg, grub2/grub.cfg, EFI/*/grub.cfg), as written
//     by update-grub / grub2-mkconfig on Debian, Ubuntu, Fedora and Qubes OS. The
//     file is a small shell-like language; this package interprets the part of
//     it that decides which kernels are offered (set, $var expansion,
//     load_env, if/elif/else with static conditions, menuentry, submenu,
//     linux/initrd, multiboot2/module2, blscfg) and skips the rest (functions,
//     loops, video setup) without failing. GRUB manual, "Shell-like scripting".
//   - Boot Loader Specification entries (loader/entries/*.conf), used by Fedora
//     through grub's blscfg command. UAPI.1 Boot Loader Specification, "Type #1".
//   - SYSLINUX/EXTLINUX configuration (extlinux.conf, syslinux.cfg).
//
// Threat: everything under /boot is attacker-writable until glint has verified
// the signed manifest, and the OS menu is parsed to show it. So every parser here
// treats its input as hostile: inputs, lines, words, variable expansions, entry
// counts and nesting are capped (see the Max* constants), a cap or syntax problem
// is a *ParseError naming file and line, and no input makes the parser panic or
// run for long (a 10^6-line grub.cfg is a benchmark). What the menu shows is
// only a proposal: the files an entry names are checked against the manifest
// before anything is loaded.
//
// Example:
//
//	entries, def, err := bootcfg.Discover("/boot")
//	if err != nil { ... }
//	fmt.Println("default:", entries[def].Title, entries[def].Kernel)
package bootcfg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Kind says how an entry's kernel is started.
type Kind int

const (
	// Linux is a bzImage started with kexec_file_load.
	Linux Kind = iota
	// Multiboot2 is a Multiboot2 kernel with modules, in practice Xen
	// (grub's multiboot2/module2, Qubes OS).
	Multiboot2
	// Multiboot is a Multiboot (v1) kernel with modules (grub's
	// multiboot/module, syslinux's mboot.c32).
	Multiboot
)

func (k Kind) String() string {
	switch k {
	case Linux:
		return "linux"
	case Multiboot2:
		return "multiboot2"
	case Multiboot:
		return "multiboot"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Module is one Multiboot module: for Xen the first is the dom0 kernel with
// its command line, the next the dom0 initramfs.
type Module struct {
	Path    string // relative to the boot directory, slash-separated
	Cmdline string // arguments after the path (grub's "placeholder" word removed)
	// NoUnzip is grub's module2 --nounzip: pass the file as it is on disk.
	NoUnzip bool
}

// Entry is one bootable choice.
type Entry struct {
	// ID is stable across re-parses of the same configuration: the BLS file
	// name without .conf, the grub --id path ("outer>inner") when every level
	// has one, otherwise a hash of kind, title path, kernel and arguments.
	ID    string
	Title string
	// Menu holds the titles of the enclosing grub submenus, outermost first.
	Menu []string
	Kind Kind
	// Kernel is the kernel (Linux) or hypervisor (Multiboot) path relative
	// to the boot directory, slash-separated, no leading slash.
	Kernel  string
	Initrds []string
	Cmdline string
	Modules []Module
	// Source is file:line of the entry in its configuration.
	Source string
	// Aliases are the other names a default setting may use for this entry:
	// grub's title path "Advanced options>Debian ..." , index path "1>2",
	// --id path, BLS id, syslinux label.
	Aliases []string
	// Missing lists the files the entry names that do not exist under the
	// boot directory (a stale entry, or a /boot that is not mounted).
	Missing []string
}

// Files returns every file the entry would load, kernel first.
func (e *Entry) Files() []string {
	out := []string{e.Kernel}
	out = append(out, e.Initrds...)
	for _, m := range e.Modules {
		out = append(out, m.Path)
	}
	return out
}

// FullTitle is the title with its submenu path, as grub's default= names it.
func (e *Entry) FullTitle() string {
	if len(e.Menu) == 0 {
		return e.Title
	}
	return strings.Join(e.Menu, ">") + ">" + e.Title
}

// hashID is the fallback stable id: what would be booted plus where it sits
// in the menu, so two entries differing only in arguments get different ids.
func hashID(e *Entry) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s", e.Kind, e.FullTitle(), e.Kernel, strings.Join(e.Initrds, "\x01"), e.Cmdline)
	for _, m := range e.Modules {
		fmt.Fprintf(h, "\x00%s\x01%s", m.Path, m.Cmdline)
	}
	return "h-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// usable reports whether every file the entry names is a real path: a
// config line like "linux /" resolves to the boot directory itself.
func usable(e *Entry) bool {
	for _, f := range e.Files() {
		if f == "" || f == "." {
			return false
		}
	}
	return true
}

// sameBoot reports whether two entries would boot exactly the same thing.
func sameBoot(a, b *Entry) bool {
	if a.Kind != b.Kind || a.Kernel != b.Kernel || a.Cmdline != b.Cmdline ||
		len(a.Initrds) != len(b.Initrds) || len(a.Modules) != len(b.Modules) {
		return false
	}
	for i := range a.Initrds {
		if a.Initrds[i] != b.Initrds[i] {
			return false
		}
	}
	for i := range a.Modules {
		if a.Modules[i] != b.Modules[i] {
			return false
		}
	}
	return true
}

// Caps on hostile configurations. They are far above anything a distribution
// writes (a Debian grub.cfg with 30 kernels has ~200 entries of ~15 lines).
const (
	// MaxFileSize is the largest configuration file read.
	MaxFileSize = 64 << 20
	// MaxLineLength bounds one logical line (after continuations).
	MaxLineLength = 64 << 10
	// MaxEntries bounds the entries one Discover returns.
	MaxEntries = 4096
	// MaxDepth bounds nesting of submenu/if/function/loops and INCLUDE.
	MaxDepth = 32
	// MaxWordLength bounds one word after $variable expansion.
	MaxWordLength = 64 << 10
	// MaxArgs bounds the words of one command.
	MaxArgs = 4096
	// MaxVariables bounds distinct variable names.
	MaxVariables = 4096
	// MaxBLSEntries bounds the *.conf files read from loader/entries.
	MaxBLSEntries = 1024
	// MaxIncludeDepth bounds syslinux INCLUDE chains.
	MaxIncludeDepth = 8
)

// Sentinel causes inside a ParseError, for errors.Is.
var (
	ErrTooLarge       = errors.New("file larger than the cap")
	ErrLineTooLong    = errors.New("line longer than the cap")
	ErrTooManyEntries = errors.New("more boot entries than the cap")
	ErrTooDeep        = errors.New("nesting deeper than the cap")
	ErrWordTooLong    = errors.New("word longer than the cap after variable expansion")
	ErrTooManyArgs    = errors.New("command with more words than the cap")
	ErrTooManyVars    = errors.New("more variables than the cap")
	ErrSyntax         = errors.New("syntax error")
	ErrNoConfig       = errors.New("no boot configuration found")
)

// ParseError says which file and line a configuration problem is at.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func perr(file string, line int, cause error, format string, a ...any) *ParseError {
	if format == "" {
		return &ParseError{File: file, Line: line, Err: cause}
	}
	return &ParseError{File: file, Line: line, Err: fmt.Errorf("%w: %s", cause, fmt.Sprintf(format, a...))}
}

// Config is what one configuration file (with what it pulls in) offers.
type Config struct {
	Entries []Entry
	// Default is the configuration's own default setting as written (grub's
	// default= after expansion, syslinux DEFAULT), "" when none.
	Default string
	// Notes are things the parser skipped that a reader may want to know
	// (configfile, source, unknown conditions).
	Notes []string
}

// DefaultIndex resolves c.Default against c.Entries (see ResolveDefault).
func (c *Config) DefaultIndex() int { return ResolveDefault(c.Entries, c.Default) }

// ResolveDefault finds the entry a default setting names: an ID, an alias
// (title path, --id path, index path like "1>2", BLS id, syslinux label) or a
// plain top-level index. It returns 0 when nothing matches, as grub does.
func ResolveDefault(entries []Entry, def string) int {
	def = strings.TrimSpace(def)
	if def == "" {
		return 0
	}
	for i := range entries {
		if entries[i].ID == def {
			return i
		}
	}
	for i := range entries {
		for _, a := range entries[i].Aliases {
			if a == def {
				return i
			}
		}
	}
	return 0
}
