package bootcfg

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// GrubOptions tune ParseGrub.
type GrubOptions struct {
	// FS is the boot directory; file tests ([ -s $prefix/grubenv ]), load_env
	// and path resolution look there. Nil means an empty directory.
	FS fs.FS
	// BLS supplies the entries grub's blscfg command adds (Fedora). Nil
	// means blscfg adds nothing.
	BLS func(vars map[string]string) ([]Entry, error)
}

// runtimeVars are set by grub itself at boot and cannot be known here; a
// condition that reads them is "unknown" and both branches are taken.
var runtimeVars = map[string]bool{
	"cmdpath": true, "root": true,
	"chosen": true, "net_default_ip": true, "net_default_mac": true,
	"net_default_server": true, "lang": true, "locale_dir": true, "secondary_locale_dir": true,
}

// builtinVars are GRUB 2's feature_* variables (grub-core/normal/main.c
// features[]): every grub that reads a current grub.cfg sets them to "y".
var builtinVars = map[string]string{
	"feature_menuentry_id":         "y",
	"feature_menuentry_options":    "y",
	"feature_all_video_module":     "y",
	"feature_default_font_path":    "y",
	"feature_timeout_style":        "y",
	"feature_platform_search_hint": "y",
	"feature_200_final":            "y",
	"feature_nativedisk_cmd":       "y",
	"feature_ntldr":                "y",
	// glint hands over like grub's "pc" platform: no EFI boot services
	// survive kexec, so branches for grub_platform=efi do not apply.
	"grub_platform": "pc",
	"grub_cpu":      "x86_64",
}

type tri int

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

type grubCmd struct {
	kind  tokKind // tokWord (a command), tokLBrace, tokRBrace, tokEOF
	words []word
	line  int
}

func (c *grubCmd) keyword() string {
	if c.kind != tokWord || len(c.words) == 0 {
		return ""
	}
	s, _ := c.words[0].literal()
	return s
}

type grubParser struct {
	lx     *lexer
	file   string
	cfgDir string
	opts   GrubOptions
	fsys   fs.FS

	scopes  []map[string]string // global first; menuentry/submenu bodies push
	unknown map[string]bool
	nvars   int

	entries []Entry
	notes   []string

	// menu position of the item being defined
	menuTitles []string
	menuIDs    []string // "" where a level has no --id
	menuIdx    []int    // item counters, one per open menu level
	menuPos    []int    // index of each enclosing submenu in its parent
	cur        *Entry
	curChain   bool

	// functions defined so far: their body text, run again at each call
	funcs     map[string]grubFunc
	callArgs  [][]string // positional parameters of the running calls
	callBytes int        // body bytes lexed by calls, capped by MaxFileSize
}

type grubFunc struct {
	body string
	line int
}

// ParseGrub interprets a grub.cfg. name is the file's path relative to the
// boot directory (e.g. "grub/grub.cfg"); it names the file in errors and
// Source and gives $prefix.
func ParseGrub(name string, untrustedData []byte, opts GrubOptions) (*Config, error) {
	if len(untrustedData) > MaxFileSize {
		return nil, perr(name, 0, ErrTooLarge, "%d bytes, cap %d", len(untrustedData), MaxFileSize)
	}
	p := &grubParser{
		lx:      newLexer(name, string(untrustedData)),
		file:    name,
		cfgDir:  path.Dir(name),
		opts:    opts,
		fsys:    opts.FS,
		scopes:  []map[string]string{{}},
		unknown: map[string]bool{},
		menuIdx: []int{0},
	}
	if p.fsys == nil {
		p.fsys = emptyFS{}
	}
	for k, v := range builtinVars {
		p.scopes[0][k] = v
	}
	p.scopes[0]["prefix"] = "/" + strings.TrimPrefix(p.cfgDir, "/")
	// grub sets config_directory to the directory of the file it runs.
	p.scopes[0]["config_directory"] = p.scopes[0]["prefix"]
	end, err := p.runUntil(true, 0, nil)
	if err != nil {
		return nil, err
	}
	if end.kind != tokEOF {
		return nil, perr(name, end.line, ErrSyntax, "%q without a matching opening", p.describe(end))
	}
	cfg := &Config{Entries: p.entries, Notes: p.notes}
	def := p.scopes[0]["default"]
	if def == "saved" {
		def = p.scopes[0]["saved_entry"]
	}
	cfg.Default = def
	return cfg, nil
}

func (p *grubParser) describe(c *grubCmd) string {
	switch c.kind {
	case tokLBrace:
		return "{"
	case tokRBrace:
		return "}"
	case tokEOF:
		return "end of file"
	}
	return c.keyword()
}

func (p *grubParser) errf(line int, cause error, format string, a ...any) error {
	return perr(p.file, line, cause, format, a...)
}

// readCmd reads one command: words up to a separator or brace. A reserved
// word that may be followed by another command on the same line (then, else,
// do) is returned alone.
func (p *grubParser) readCmd() (*grubCmd, error) {
	for {
		t, err := p.lx.next()
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case tokSep:
			continue
		case tokEOF, tokLBrace, tokRBrace:
			return &grubCmd{kind: t.kind, line: t.line}, nil
		}
		c := &grubCmd{kind: tokWord, words: []word{t.w}, line: t.line}
		if kw, ok := t.w.literal(); ok && (kw == "then" || kw == "else" || kw == "do") {
			return c, nil
		}
		for {
			t, err := p.lx.peek()
			if err != nil {
				return nil, err
			}
			if t.kind != tokWord {
				if t.kind == tokSep {
					p.lx.next()
				}
				return c, nil
			}
			p.lx.next()
			if len(c.words) >= MaxArgs {
				return nil, p.errf(t.line, ErrTooManyArgs, "cap %d", MaxArgs)
			}
			c.words = append(c.words, t.w)
		}
	}
}

// runUntil runs (exec) or skips commands until stop accepts one, or until
// EOF or an unmatched "}", which it returns for the caller to judge.
func (p *grubParser) runUntil(exec bool, depth int, stop func(kw string) bool) (*grubCmd, error) {
	if depth > MaxDepth {
		return nil, p.errf(p.lx.line, ErrTooDeep, "cap %d", MaxDepth)
	}
	for {
		c, err := p.readCmd()
		if err != nil {
			return nil, err
		}
		if c.kind == tokEOF || c.kind == tokRBrace {
			return c, nil
		}
		if stop != nil && stop(c.keyword()) {
			return c, nil
		}
		if err := p.runCmd(c, exec, depth); err != nil {
			return nil, err
		}
	}
}

func (p *grubParser) runCmd(c *grubCmd, exec bool, depth int) error {
	if c.kind == tokLBrace {
		return p.block(exec, depth+1, c.line, "{")
	}
	switch kw := c.keyword(); kw {
	case "if":
		return p.runIf(c, exec, depth+1)
	case "while", "until", "for":
		return p.skipLoop(c, exec, depth+1)
	case "function":
		return p.defineFunction(c, exec, depth+1)
	case "menuentry", "submenu":
		return p.menu(c, exec, depth+1, kw == "submenu")
	case "then", "elif", "else", "fi", "do", "done":
		return p.errf(c.line, ErrSyntax, "%q outside an if or loop", kw)
	}
	if !exec {
		return nil
	}
	return p.simple(c)
}

func (p *grubParser) note(line int, format string, a ...any) {
	if len(p.notes) < 100 {
		p.notes = append(p.notes, fmt.Sprintf("%s:%d: ", p.file, line)+fmt.Sprintf(format, a...))
	}
}

func (p *grubParser) expectLBrace(line int, what string) error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	if t.kind != tokLBrace {
		return p.errf(line, ErrSyntax, "%s without its opening \"{\"", what)
	}
	return nil
}

// block runs a { ... } body, the opening brace already consumed.
func (p *grubParser) block(exec bool, depth, line int, what string) error {
	end, err := p.runUntil(exec, depth, nil)
	if err != nil {
		return err
	}
	if end.kind != tokRBrace {
		return p.errf(line, ErrSyntax, "%s body never closed with \"}\"", what)
	}
	return nil
}

// runIf evaluates if/elif/else/fi (GRUB manual, "Shell-like scripting"). A
// condition that cannot be decided here runs its branch and keeps looking at
// the following ones, so entries behind a runtime test are never lost.
func (p *grubParser) runIf(c *grubCmd, exec bool, depth int) error {
	if depth > MaxDepth {
		return p.errf(c.line, ErrTooDeep, "cap %d", MaxDepth)
	}
	taken := false // a branch whose condition was certainly true ran
	cond := &grubCmd{kind: tokWord, words: c.words[1:], line: c.line}
	for {
		// The condition list runs until "then"; its last command decides.
		result := triUnknown
		condCmds := []*grubCmd{}
		if len(cond.words) > 0 {
			condCmds = append(condCmds, cond)
		}
		for {
			nc, err := p.readCmd()
			if err != nil {
				return err
			}
			if nc.keyword() == "then" {
				break
			}
			if nc.kind != tokWord || len(condCmds) > 64 {
				return p.errf(c.line, ErrSyntax, "if without \"then\"")
			}
			switch nc.keyword() {
			case "if", "while", "until", "for", "function", "menuentry", "submenu", "fi", "else", "elif":
				return p.errf(nc.line, ErrSyntax, "%q inside an if condition", nc.keyword())
			}
			condCmds = append(condCmds, nc)
		}
		if exec && !taken {
			for _, cc := range condCmds {
				result = p.evalCond(cc)
			}
		} else {
			result = triFalse
		}
		end, err := p.runUntil(exec && !taken && result != triFalse, depth, func(kw string) bool {
			return kw == "elif" || kw == "else" || kw == "fi"
		})
		if err != nil {
			return err
		}
		if result == triTrue {
			taken = true
		}
		switch end.keyword() {
		case "fi":
			return nil
		case "else":
			end, err := p.runUntil(exec && !taken, depth, func(kw string) bool { return kw == "fi" })
			if err != nil {
				return err
			}
			if end.keyword() != "fi" {
				return p.errf(c.line, ErrSyntax, "if without \"fi\"")
			}
			return nil
		case "elif":
			cond = &grubCmd{kind: tokWord, words: end.words[1:], line: end.line}
		default:
			return p.errf(c.line, ErrSyntax, "if without \"fi\"")
		}
	}
}

// skipLoop parses a while/until/for loop without running it: grub.cfg files
// that distributions generate use none to define entries.
func (p *grubParser) skipLoop(c *grubCmd, exec bool, depth int) error {
	if depth > MaxDepth {
		return p.errf(c.line, ErrTooDeep, "cap %d", MaxDepth)
	}
	if exec {
		p.note(c.line, "%s loop skipped", c.keyword())
	}
	for {
		nc, err := p.readCmd()
		if err != nil {
			return err
		}
		if nc.keyword() == "do" {
			break
		}
		if nc.kind != tokWord {
			return p.errf(c.line, ErrSyntax, "%s without \"do\"", c.keyword())
		}
	}
	end, err := p.runUntil(false, depth, func(kw string) bool { return kw == "done" })
	if err != nil {
		return err
	}
	if end.keyword() != "done" {
		return p.errf(c.line, ErrSyntax, "%s without \"done\"", c.keyword())
	}
	return nil
}

// menu handles menuentry and submenu: TITLE [--class C] [--users U]
// [--unrestricted] [--hotkey K] [--id ID] [ARG...] { BODY }.
func (p *grubParser) menu(c *grubCmd, exec bool, depth int, isSub bool) error {
	if depth > MaxDepth {
		return p.errf(c.line, ErrTooDeep, "cap %d", MaxDepth)
	}
	what := "menuentry"
	if isSub {
		what = "submenu"
	}
	if err := p.expectLBrace(c.line, what); err != nil {
		return err
	}
	if !exec || p.cur != nil {
		// Not reached, or a menuentry defined inside another entry's body
		// (only defined when that entry runs).
		return p.block(false, depth, c.line, what)
	}
	args, _, err := p.expand(c.words[1:], c.line)
	if err != nil {
		return err
	}
	var title, id string
	haveTitle := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		optArg := func() string {
			if v, ok := strings.CutPrefix(a, "="); ok {
				return v
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--unrestricted":
		case strings.HasPrefix(a, "--class"), strings.HasPrefix(a, "--users"), strings.HasPrefix(a, "--hotkey"), strings.HasPrefix(a, "--source"):
			if !strings.Contains(a, "=") {
				a = ""
				optArg()
			}
		case strings.HasPrefix(a, "--id"):
			a = strings.TrimPrefix(a, "--id")
			id = optArg()
		case !haveTitle:
			title, haveTitle = a, true
		}
	}
	if !haveTitle {
		return p.errf(c.line, ErrSyntax, "%s without a title", what)
	}
	lvl := len(p.menuIdx) - 1
	index := p.menuIdx[lvl]
	p.menuIdx[lvl]++

	p.scopes = append(p.scopes, map[string]string{})
	defer func() { p.scopes = p.scopes[:len(p.scopes)-1] }()

	if isSub {
		p.menuTitles = append(p.menuTitles, title)
		p.menuIDs = append(p.menuIDs, id)
		p.menuIdx = append(p.menuIdx, 0)
		p.menuPos = append(p.menuPos, index)
		err := p.block(true, depth, c.line, what)
		p.menuTitles = p.menuTitles[:len(p.menuTitles)-1]
		p.menuIDs = p.menuIDs[:len(p.menuIDs)-1]
		p.menuIdx = p.menuIdx[:len(p.menuIdx)-1]
		p.menuPos = p.menuPos[:len(p.menuPos)-1]
		return err
	}

	p.cur = &Entry{Title: title, Menu: append([]string(nil), p.menuTitles...), Source: fmt.Sprintf("%s:%d", p.file, c.line)}
	p.curChain = false
	err = p.block(true, depth, c.line, what)
	e := p.cur
	p.cur = nil
	if err != nil {
		return err
	}
	if e.Kernel == "" || p.curChain || !usable(e) {
		return nil // fwsetup, chainloader, halt: nothing glint can kexec
	}
	pos := append(append([]int(nil), p.menuPos...), index)
	return p.addEntry(e, id, pos, c.line)
}

func (p *grubParser) addEntry(e *Entry, id string, pos []int, line int) error {
	if len(p.entries) >= MaxEntries {
		return p.errf(line, ErrTooManyEntries, "cap %d", MaxEntries)
	}
	idx := make([]string, len(pos))
	for i, n := range pos {
		idx[i] = strconv.Itoa(n)
	}
	e.Aliases = append(e.Aliases, e.FullTitle(), strings.Join(idx, ">"))
	idPath := append(append([]string(nil), p.menuIDs...), id)
	allIDs := true
	for _, s := range idPath {
		if s == "" {
			allIDs = false
		}
	}
	if allIDs {
		e.ID = strings.Join(idPath, ">")
	} else {
		e.ID = hashID(e)
		if id != "" {
			e.Aliases = append(e.Aliases, id)
		}
	}
	p.entries = append(p.entries, *e)
	return nil
}
