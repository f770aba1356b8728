package bootcfg

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// lookup returns a variable's value and whether it is knowable here.
func (p *grubParser) lookup(name string) (string, bool) {
	for i := len(p.scopes) - 1; i >= 0; i-- {
		if v, ok := p.scopes[i][name]; ok {
			return v, !p.unknown[name]
		}
	}
	if p.unknown[name] || runtimeVars[name] {
		return "", false
	}
	if n, err := strconv.Atoi(name); err == nil || name == "#" || name == "@" || name == "*" {
		if len(p.callArgs) == 0 {
			return "", false
		}
		args := p.callArgs[len(p.callArgs)-1]
		switch {
		case name == "#":
			return strconv.Itoa(len(args)), true
		case name == "@" || name == "*":
			return strings.Join(args, " "), true
		case n >= 1 && n <= len(args):
			return args[n-1], true
		}
		return "", true
	} else if name == "?" {
		return "", false
	}
	return "", true
}

func (p *grubParser) setVar(name, value string, known bool, line int) error {
	scope := p.scopes[len(p.scopes)-1]
	if _, ok := scope[name]; !ok {
		if p.nvars >= MaxVariables {
			return p.errf(line, ErrTooManyVars, "cap %d", MaxVariables)
		}
		p.nvars++
	}
	scope[name] = value
	if known {
		delete(p.unknown, name)
	} else {
		p.unknown[name] = true
	}
	return nil
}

// expand turns words into arguments: variables replaced, unquoted variable
// values split on blanks as grub does (grub-core/script/execute.c), empty
// unquoted expansions dropped. known is false when a runtime variable was read.
func (p *grubParser) expand(words []word, line int) (args []string, known bool, err error) {
	known = true
	total := 0
	for _, w := range words {
		var cur strings.Builder
		have := false // cur holds an argument (possibly empty, from quotes)
		for _, pt := range w.parts {
			text := pt.text
			if pt.isVar {
				v, ok := p.lookup(pt.text)
				if !ok {
					known = false
				}
				text = v
			}
			total += len(text)
			if total > MaxWordLength*4 || cur.Len()+len(text) > MaxWordLength {
				return nil, false, p.errf(line, ErrWordTooLong, "cap %d bytes", MaxWordLength)
			}
			if !pt.isVar || pt.quoted {
				cur.WriteString(text)
				have = have || pt.quoted || text != ""
				continue
			}
			fields := strings.Fields(text)
			if len(fields) == 0 {
				continue
			}
			if text[0] == ' ' || text[0] == '\t' || text[0] == '\n' {
				if have {
					args = append(args, cur.String())
					cur.Reset()
					have = false
				}
			}
			for i, f := range fields {
				if i > 0 {
					args = append(args, cur.String())
					cur.Reset()
				}
				cur.WriteString(f)
				have = true
			}
			last := text[len(text)-1]
			if last == ' ' || last == '\t' || last == '\n' {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
			if len(args) > MaxArgs {
				return nil, false, p.errf(line, ErrTooManyArgs, "cap %d", MaxArgs)
			}
		}
		if have {
			args = append(args, cur.String())
		}
		if len(args) > MaxArgs {
			return nil, false, p.errf(line, ErrTooManyArgs, "cap %d", MaxArgs)
		}
	}
	return args, known, nil
}

// simple runs one ordinary command.
func (p *grubParser) simple(c *grubCmd) error {
	args, known, err := p.expand(c.words, c.line)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return nil
	}
	name, args := args[0], args[1:]
	// "name=value" as a command is an assignment (grub script, like sh):
	// 00_header writes menuentry_id_option="--id" this way.
	if k, v, ok := strings.Cut(name, "="); ok && validVarName(k) && len(args) == 0 {
		return p.setVar(k, v, known, c.line)
	}
	if f, ok := p.funcs[name]; ok {
		return p.callFunction(name, f, args, c.line)
	}
	switch name {
	case "set":
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok || !validVarName(k) {
				continue
			}
			if err := p.setVar(k, v, known, c.line); err != nil {
				return err
			}
		}
	case "unset":
		for _, a := range args {
			for _, s := range p.scopes {
				delete(s, a)
			}
			delete(p.unknown, a)
		}
	case "load_env":
		return p.loadEnv(args, c.line)
	case "search", "search.fs_uuid", "search.fs_label", "search.file":
		// The device found is only known at boot; paths relative to it
		// are resolved against the boot directory instead.
		for i, a := range args {
			v, ok := strings.CutPrefix(a, "--set=")
			if !ok && (a == "--set" || a == "-s") {
				v = "root"
				if i+2 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					// "--set VAR UUID": the word after --set is the variable.
					v = args[i+1]
				}
				ok = true
			}
			if ok && validVarName(v) {
				if err := p.setVar(v, "", false, c.line); err != nil {
					return err
				}
			}
		}
	case "source", ".", "configfile", "normal", "extract_entries_source", "extract_entries_configfile":
		p.note(c.line, "%s %s not followed (only this file's entries are listed)", name, strings.Join(args, " "))
	case "blscfg":
		return p.blscfg(c.line)
	case "linux", "linux16", "linuxefi", "linux32", "kernel":
		return p.kernelCmd(Linux, args, c.line)
	case "multiboot2", "xen_hypervisor":
		return p.kernelCmd(Multiboot2, args, c.line)
	case "multiboot":
		return p.kernelCmd(Multiboot, args, c.line)
	case "initrd", "initrd16", "initrdefi", "initrd32":
		if p.cur == nil {
			return nil
		}
		p.cur.Initrds = nil
		for _, a := range args {
			if strings.HasPrefix(a, "--") {
				continue
			}
			p.cur.Initrds = append(p.cur.Initrds, p.resolve(a))
		}
	case "module2", "module", "xen_module":
		if p.cur == nil {
			return nil
		}
		m := Module{}
		i := 0
		for ; i < len(args) && strings.HasPrefix(args[i], "--"); i++ {
			if args[i] == "--nounzip" {
				m.NoUnzip = true
			}
		}
		if i >= len(args) {
			return p.errf(c.line, ErrSyntax, "%s without a file", name)
		}
		m.Path = p.resolve(args[i])
		m.Cmdline = joinArgs(args[i+1:])
		if len(p.cur.Modules) >= 64 {
			return p.errf(c.line, ErrTooManyArgs, "more than 64 modules")
		}
		p.cur.Modules = append(p.cur.Modules, m)
	case "chainloader", "fwsetup", "halt", "reboot", "exit":
		if p.cur != nil {
			p.curChain = true
		}
	}
	return nil
}

// joinArgs joins a multiboot command line, dropping grub's "placeholder":
// 20_linux_xen writes `multiboot2 /xen.gz placeholder ARGS` and
// `module2 /vmlinuz placeholder ARGS` because Xen removes the first word of
// every command line unless the loader calls itself GRUB 2
// (xen/arch/x86/setup.c, cmdline_cook). Entry keeps only the real arguments;
// internal/kexec supplies its own first word.
func joinArgs(args []string) string {
	if len(args) > 0 && args[0] == "placeholder" {
		args = args[1:]
	}
	return strings.Join(args, " ")
}

func (p *grubParser) kernelCmd(kind Kind, args []string, line int) error {
	if p.cur == nil {
		return nil
	}
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "--"); i++ {
	}
	if i >= len(args) {
		return p.errf(line, ErrSyntax, "kernel command without a file")
	}
	p.cur.Kind = kind
	p.cur.Kernel = p.resolve(args[i])
	if kind == Linux {
		p.cur.Cmdline = strings.Join(args[i+1:], " ")
	} else {
		p.cur.Cmdline = joinArgs(args[i+1:])
	}
	p.cur.Modules = nil
	return nil
}

// resolve maps a grub path to one relative to the boot directory and
// records it as missing when it is not there.
func (p *grubParser) resolve(grubPath string) string {
	rel, ok := resolvePath(p.fsys, grubPath)
	if !ok && p.cur != nil {
		p.cur.Missing = append(p.cur.Missing, rel)
	}
	return rel
}

// resolvePath turns a loader path into one relative to the boot directory.
// A leading device "(hd0,gpt2)" or "($root)" is dropped. When /boot is its own
// partition, paths are "/vmlinuz"; when it is a directory of the root file
// system they are "/boot/vmlinuz": both are tried, the first that exists wins.
func resolvePath(fsys fs.FS, p string) (string, bool) {
	if strings.HasPrefix(p, "(") {
		if i := strings.IndexByte(p, ')'); i >= 0 {
			p = p[i+1:]
		}
	}
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	cands := []string{p}
	if rest, ok := strings.CutPrefix(p, "boot/"); ok {
		cands = append(cands, rest)
	}
	for _, c := range cands {
		if c == "" || !fs.ValidPath(c) {
			continue
		}
		if _, err := fs.Stat(fsys, c); err == nil {
			return c, true
		}
	}
	return cands[len(cands)-1], false
}

func (p *grubParser) loadEnv(args []string, line int) error {
	file := ""
	var names []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f" || a == "--file":
			if i+1 < len(args) {
				i++
				file = args[i]
			}
		case strings.HasPrefix(a, "--file="):
			file = strings.TrimPrefix(a, "--file=")
		case strings.HasPrefix(a, "-"):
		default:
			names = append(names, a)
		}
	}
	if file == "" {
		prefix, _ := p.lookup("prefix")
		file = prefix + "/grubenv"
	}
	rel, ok := resolvePath(p.fsys, file)
	if !ok {
		p.note(line, "load_env: %s not found", rel)
		return nil
	}
	data, err := readCapped(p.fsys, rel, MaxGrubenvSize)
	if err != nil {
		p.note(line, "load_env: %v", err)
		return nil
	}
	vars, err := ParseGrubenv(rel, data)
	if err != nil {
		p.note(line, "load_env: %v", err)
		return nil
	}
	if len(names) > 0 {
		keep := map[string]string{}
		for _, n := range names {
			if v, ok := vars[n]; ok {
				keep[n] = v
			}
		}
		vars = keep
	}
	for k, v := range vars {
		if err := p.setVar(k, v, true, line); err != nil {
			return err
		}
	}
	return nil
}

func (p *grubParser) blscfg(line int) error {
	if p.opts.BLS == nil || p.cur != nil {
		return nil
	}
	vars := map[string]string{}
	for _, s := range p.scopes {
		for k, v := range s {
			vars[k] = v
		}
	}
	bls, err := p.opts.BLS(vars)
	if err != nil {
		return err
	}
	for i := range bls {
		lvl := len(p.menuIdx) - 1
		index := p.menuIdx[lvl]
		p.menuIdx[lvl]++
		e := bls[i]
		if len(p.entries) >= MaxEntries {
			return p.errf(line, ErrTooManyEntries, "cap %d", MaxEntries)
		}
		e.Menu = append([]string(nil), p.menuTitles...)
		pos := append(append([]int(nil), p.menuPos...), index)
		idx := make([]string, len(pos))
		for j, n := range pos {
			idx[j] = strconv.Itoa(n)
		}
		e.Aliases = append(e.Aliases, e.FullTitle(), strings.Join(idx, ">"))
		p.entries = append(p.entries, e)
	}
	return nil
}

// evalCond decides a condition command: [ ... ], test ..., true, false.
// Anything else (loadfont, keystatus, search, cpuid) depends on the
// machine at boot and is unknown.
func (p *grubParser) evalCond(c *grubCmd) tri {
	args, known, err := p.expand(c.words, c.line)
	if err != nil || len(args) == 0 {
		return triUnknown
	}
	neg := false
	for len(args) > 0 && args[0] == "!" {
		neg = !neg
		args = args[1:]
	}
	if len(args) == 0 {
		return triUnknown
	}
	var r tri
	switch args[0] {
	case "true":
		r = triTrue
	case "false":
		r = triFalse
	case "[":
		if args[len(args)-1] != "]" {
			return triUnknown
		}
		if !known {
			return triUnknown
		}
		r = p.evalTest(args[1 : len(args)-1])
	case "test":
		if !known {
			return triUnknown
		}
		r = p.evalTest(args[1:])
	default:
		return triUnknown
	}
	if neg && r != triUnknown {
		r = triTrue - r
	}
	return r
}

// evalTest implements grub's test (grub-core/commands/test.c) for the
// operators generated configs use; -a binds tighter than -o, as there.
func (p *grubParser) evalTest(args []string) tri {
	// Split on -o, then on -a.
	for i, a := range args {
		if a == "-o" && i > 0 {
			l, r := p.evalTest(args[:i]), p.evalTest(args[i+1:])
			return triOr(l, r)
		}
	}
	for i, a := range args {
		if a == "-a" && i > 0 {
			l, r := p.evalTest(args[:i]), p.evalTest(args[i+1:])
			return triAnd(l, r)
		}
	}
	if len(args) > 0 && args[0] == "!" {
		r := p.evalTest(args[1:])
		if r == triUnknown {
			return r
		}
		return triTrue - r
	}
	b := func(v bool) tri {
		if v {
			return triTrue
		}
		return triFalse
	}
	switch len(args) {
	case 0:
		return triFalse
	case 1:
		return b(args[0] != "")
	case 2:
		switch args[0] {
		case "-n":
			return b(args[1] != "")
		case "-z":
			return b(args[1] == "")
		case "-e", "-f", "-s", "-d":
			rel, ok := resolvePath(p.fsys, args[1])
			if !ok {
				return triFalse
			}
			st, err := fs.Stat(p.fsys, rel)
			if err != nil {
				return triFalse
			}
			switch args[0] {
			case "-f":
				return b(st.Mode().IsRegular())
			case "-s":
				return b(st.Size() > 0)
			case "-d":
				return b(st.IsDir())
			}
			return triTrue
		}
		return triUnknown
	case 3:
		l, op, r := args[0], args[1], args[2]
		switch op {
		case "=", "==":
			return b(l == r)
		case "!=":
			return b(l != r)
		case "<":
			return b(l < r)
		case ">":
			return b(l > r)
		case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
			x, err1 := strconv.ParseInt(l, 10, 64)
			y, err2 := strconv.ParseInt(r, 10, 64)
			if err1 != nil || err2 != nil {
				return triUnknown
			}
			switch op {
			case "-eq":
				return b(x == y)
			case "-ne":
				return b(x != y)
			case "-lt":
				return b(x < y)
			case "-le":
				return b(x <= y)
			case "-gt":
				return b(x > y)
			}
			return b(x >= y)
		}
	}
	return triUnknown
}

func triOr(a, b tri) tri {
	if a == triTrue || b == triTrue {
		return triTrue
	}
	if a == triUnknown || b == triUnknown {
		return triUnknown
	}
	return triFalse
}

func triAnd(a, b tri) tri {
	if a == triFalse || b == triFalse {
		return triFalse
	}
	if a == triUnknown || b == triUnknown {
		return triUnknown
	}
	return triTrue
}

// readCapped reads a file from fsys, refusing more than limit bytes.
func readCapped(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if st.Size() > limit {
		return nil, perr(name, 0, ErrTooLarge, "%d bytes, cap %d", st.Size(), limit)
	}
	buf, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(buf)) > limit {
		return nil, perr(name, 0, ErrTooLarge, "grew past the cap %d", limit)
	}
	return buf, nil
}

// emptyFS is a boot directory with nothing in it.
type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// defineFunction records "function NAME { BODY }". The body is kept as text
// and run at each call (grub-core/script/function.c does the same with its
// parsed tree), so functions that set variables an entry uses work
// (Ubuntu's gfxmode sets vt_handoff).
func (p *grubParser) defineFunction(c *grubCmd, exec bool, depth int) error {
	if err := p.expectLBrace(c.line, "function"); err != nil {
		return err
	}
	start, line := p.lx.pos, p.lx.line
	if err := p.block(false, depth, c.line, "function"); err != nil {
		return err
	}
	name, ok := "", len(c.words) == 2
	if ok {
		name, ok = c.words[1].literal()
	}
	if !exec || !ok || !validVarName(name) {
		return nil
	}
	if p.funcs == nil {
		p.funcs = map[string]grubFunc{}
	}
	if _, exists := p.funcs[name]; !exists && len(p.funcs) >= MaxVariables {
		return p.errf(c.line, ErrTooManyVars, "more than %d functions", MaxVariables)
	}
	// The closing brace was the last byte consumed.
	p.funcs[name] = grubFunc{body: p.lx.src[start : p.lx.pos-1], line: line}
	return nil
}

func (p *grubParser) callFunction(name string, f grubFunc, args []string, line int) error {
	if len(p.callArgs) >= MaxDepth {
		return p.errf(line, ErrTooDeep, "function calls nested deeper than %d (recursive %s?)", MaxDepth, name)
	}
	p.callBytes += len(f.body)
	if p.callBytes > MaxFileSize {
		return p.errf(line, ErrTooLarge, "function calls ran more than %d bytes of script", MaxFileSize)
	}
	saved := p.lx
	p.lx = newLexer(p.file, f.body)
	p.lx.line = f.line
	p.callArgs = append(p.callArgs, args)
	defer func() {
		p.lx = saved
		p.callArgs = p.callArgs[:len(p.callArgs)-1]
	}()
	end, err := p.runUntil(true, len(p.callArgs)*2, nil)
	if err != nil {
		return err
	}
	if end.kind != tokEOF {
		return p.errf(end.line, ErrSyntax, "unbalanced %q in function %s", p.describe(end), name)
	}
	return nil
}
