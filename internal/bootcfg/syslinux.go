package bootcfg

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// SyslinuxOptions tune ParseSyslinux.
type SyslinuxOptions struct {
	// FS is the boot directory: INCLUDE files and kernels are looked up there.
	FS fs.FS
}

type sysParser struct {
	fsys       fs.FS
	entries    []Entry
	cur        *Entry
	curLabel   string
	curAppend  *string
	curCom32   bool
	globalApp  string
	def        string
	menuDef    string
	dir        string // directory of the top configuration: relative paths start here
	visited    int
	unbootable bool
}

// ParseSyslinux parses a SYSLINUX/EXTLINUX configuration (syslinux.cfg,
// extlinux.conf): LABEL, MENU LABEL, KERNEL/LINUX, INITRD, APPEND (with
// initrd= inside), DEFAULT, MENU DEFAULT and INCLUDE (depth-capped). Keywords
// are case-insensitive (SYSLINUX wiki, "Config"). A label whose kernel is
// mboot.c32 is a Multiboot entry: APPEND holds "xen args --- kernel args
// --- initrd".
func ParseSyslinux(name string, untrustedData []byte, opts SyslinuxOptions) (*Config, error) {
	p := &sysParser{fsys: opts.FS, dir: path.Dir(name)}
	if p.fsys == nil {
		p.fsys = emptyFS{}
	}
	if err := p.parse(name, untrustedData, 0); err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	cfg := &Config{Entries: p.entries, Default: p.def}
	if p.menuDef != "" {
		cfg.Default = p.menuDef
	}
	return cfg, nil
}

func (p *sysParser) parse(file string, data []byte, depth int) error {
	if len(data) > MaxFileSize {
		return perr(file, 0, ErrTooLarge, "%d bytes, cap %d", len(data), MaxFileSize)
	}
	p.visited++
	if p.visited > 64 {
		return perr(file, 0, ErrTooDeep, "more than 64 INCLUDEd files")
	}
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		if len(raw) > MaxLineLength {
			return perr(file, i+1, ErrLineTooLong, "cap %d bytes", MaxLineLength)
		}
		l := strings.TrimSpace(raw)
		if l == "" || l[0] == '#' {
			continue
		}
		kw, rest := splitKeyword(l)
		kw = strings.ToLower(kw)
		if kw == "menu" {
			sub, arg := splitKeyword(rest)
			switch strings.ToLower(sub) {
			case "label":
				if p.cur != nil {
					p.cur.Title = strings.ReplaceAll(arg, "^", "")
				}
			case "default":
				if p.cur != nil {
					p.menuDef = p.curLabel
				}
			case "include":
				f, _ := splitKeyword(arg)
				if err := p.include(file, i+1, f, depth); err != nil {
					return err
				}
			}
			continue
		}
		switch kw {
		case "label":
			if err := p.finish(); err != nil {
				return err
			}
			p.curLabel = rest
			p.cur = &Entry{Title: rest, Source: fmt.Sprintf("%s:%d", file, i+1)}
			p.curAppend = nil
			p.curCom32 = false
			p.unbootable = false
		case "kernel", "linux":
			if p.cur != nil {
				p.setKernel(rest)
			}
		case "com32":
			if p.cur != nil {
				p.setKernel(rest)
			}
		case "localboot", "pxe", "boot", "bss", "fdimage", "comboot", "config":
			p.unbootable = true
		case "initrd":
			if p.cur != nil {
				p.cur.Initrds = nil
				for _, f := range strings.Split(rest, ",") {
					if f = strings.TrimSpace(f); f != "" {
						p.cur.Initrds = append(p.cur.Initrds, f)
					}
				}
			}
		case "append":
			if p.cur == nil {
				p.globalApp = rest
			} else {
				r := rest
				p.curAppend = &r
			}
		case "default":
			p.def = rest
		case "include":
			f, _ := splitKeyword(rest)
			if err := p.include(file, i+1, f, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *sysParser) setKernel(k string) {
	p.cur.Kernel = k
	base := strings.ToLower(path.Base(k))
	p.curCom32 = strings.HasSuffix(base, ".c32")
	if !p.curCom32 {
		return
	}
	if base != "mboot.c32" {
		p.unbootable = true // menu.c32, chain.c32, hdt.c32 ...
	}
}

func (p *sysParser) include(from string, line int, name string, depth int) error {
	if depth+1 > MaxIncludeDepth {
		return perr(from, line, ErrTooDeep, "INCLUDE nested deeper than %d", MaxIncludeDepth)
	}
	rel := p.lookupPath(name)
	data, err := readCapped(p.fsys, rel, MaxFileSize)
	if err != nil {
		// syslinux itself ignores a missing include.
		return nil
	}
	return p.parse(rel, data, depth+1)
}

// lookupPath resolves a path as syslinux does: relative to the directory of
// the configuration file, or from the partition root when absolute.
func (p *sysParser) lookupPath(name string) string {
	if !strings.HasPrefix(name, "/") {
		rel := path.Join(p.dir, name)
		if fs.ValidPath(rel) {
			if _, err := fs.Stat(p.fsys, rel); err == nil {
				return rel
			}
		}
	}
	rel, _ := resolvePath(p.fsys, name)
	return rel
}

func (p *sysParser) resolve(name string) string {
	rel := p.lookupPath(name)
	if _, err := fs.Stat(p.fsys, rel); err != nil || !fs.ValidPath(rel) {
		p.cur.Missing = append(p.cur.Missing, rel)
	}
	return rel
}

// finish completes the current label into an entry.
func (p *sysParser) finish() error {
	e := p.cur
	p.cur = nil
	if e == nil || e.Kernel == "" || p.unbootable {
		return nil
	}
	if len(p.entries) >= MaxEntries {
		return perr(e.Source, 0, ErrTooManyEntries, "cap %d", MaxEntries)
	}
	app := p.globalApp
	if p.curAppend != nil {
		app = *p.curAppend
	}
	if strings.TrimSpace(app) == "-" {
		app = ""
	}
	p.cur = e // resolve records Missing on p.cur
	defer func() { p.cur = nil }()
	if p.curCom32 {
		// mboot.c32: "xen.gz ARGS --- vmlinuz ARGS --- initrd.img"
		parts := strings.Split(app, " --- ")
		first := strings.Fields(parts[0])
		if len(first) == 0 {
			return nil
		}
		e.Kind = Multiboot
		e.Kernel = p.resolve(first[0])
		e.Cmdline = strings.Join(first[1:], " ")
		for _, m := range parts[1:] {
			f := strings.Fields(m)
			if len(f) == 0 {
				continue
			}
			if len(e.Modules) >= 64 {
				return perr(e.Source, 0, ErrTooManyArgs, "more than 64 modules")
			}
			e.Modules = append(e.Modules, Module{Path: p.resolve(f[0]), Cmdline: strings.Join(f[1:], " ")})
		}
		e.Initrds = nil
	} else {
		e.Kind = Linux
		e.Kernel = p.resolve(e.Kernel)
		var kept []string
		initrds := e.Initrds
		for _, a := range strings.Fields(app) {
			if v, ok := strings.CutPrefix(a, "initrd="); ok {
				for _, f := range strings.Split(v, ",") {
					if f != "" {
						initrds = append(initrds, f)
					}
				}
				continue
			}
			kept = append(kept, a)
		}
		e.Cmdline = strings.Join(kept, " ")
		e.Initrds = nil
		for _, f := range initrds {
			e.Initrds = append(e.Initrds, p.resolve(f))
		}
	}
	if !usable(e) {
		return nil
	}
	e.Aliases = []string{p.curLabel}
	e.ID = hashID(e)
	p.entries = append(p.entries, *e)
	return nil
}

// splitKeyword splits "KEYWORD rest of line".
func splitKeyword(l string) (string, string) {
	l = strings.TrimSpace(l)
	i := strings.IndexAny(l, " \t")
	if i < 0 {
		return l, ""
	}
	return l[:i], strings.TrimSpace(l[i+1:])
}
