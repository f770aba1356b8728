package bootcfg

// The grub.cfg lexer follows grub-core/script/yylex.l: words separated by
// blanks, commands by newline or ';', "{" and "}" as their own tokens, '#'
// comments at the start of a word, '\' escapes and line continuation, single
// quotes literal, double quotes with $variable expansion and \$ \" \\ escapes.

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokSep
	tokLBrace
	tokRBrace
)

// part is a piece of a word: literal text, or a variable reference expanded
// when the command runs (grub expands at execution, not at definition).
type part struct {
	text   string // literal text, or the variable name when isVar
	isVar  bool
	quoted bool // inside double quotes: no field splitting
}

type word struct{ parts []part }

// literal returns the word's text when it is one unquoted literal (keywords
// are recognised only then, as in sh).
func (w word) literal() (string, bool) {
	if len(w.parts) == 1 && !w.parts[0].isVar && !w.parts[0].quoted {
		return w.parts[0].text, true
	}
	return "", false
}

type token struct {
	kind tokKind
	w    word
	line int
}

type lexer struct {
	file      string
	src       string
	pos       int
	line      int
	lineStart int
	peeked    *token
	buf       []byte
}

func newLexer(file string, src string) *lexer {
	return &lexer{file: file, src: src, line: 1}
}

func (lx *lexer) peek() (token, error) {
	if lx.peeked == nil {
		t, err := lx.lex()
		if err != nil {
			return token{}, err
		}
		lx.peeked = &t
	}
	return *lx.peeked, nil
}

func (lx *lexer) next() (token, error) {
	if lx.peeked != nil {
		t := *lx.peeked
		lx.peeked = nil
		return t, nil
	}
	return lx.lex()
}

func (lx *lexer) newline() error {
	lx.line++
	lx.lineStart = lx.pos
	return nil
}

func (lx *lexer) checkLine() error {
	if lx.pos-lx.lineStart > MaxLineLength {
		return perr(lx.file, lx.line, ErrLineTooLong, "cap %d bytes", MaxLineLength)
	}
	return nil
}

// lex returns the next token. Every loop iteration advances pos, so lexing
// is linear in the input.
func (lx *lexer) lex() (token, error) {
	src := lx.src
	// Skip blanks and comments.
	for lx.pos < len(src) {
		c := src[lx.pos]
		if c == ' ' || c == '\t' || c == '\r' {
			lx.pos++
			continue
		}
		if c == '\\' && lx.pos+1 < len(src) && src[lx.pos+1] == '\n' {
			lx.pos += 2
			lx.newline()
			continue
		}
		if c == '#' {
			for lx.pos < len(src) && src[lx.pos] != '\n' {
				lx.pos++
			}
			if err := lx.checkLine(); err != nil {
				return token{}, err
			}
			continue
		}
		break
	}
	if err := lx.checkLine(); err != nil {
		return token{}, err
	}
	if lx.pos >= len(src) {
		return token{kind: tokEOF, line: lx.line}, nil
	}
	line := lx.line
	switch src[lx.pos] {
	case '\n':
		lx.pos++
		lx.newline()
		return token{kind: tokSep, line: line}, nil
	case ';':
		lx.pos++
		return token{kind: tokSep, line: line}, nil
	case '{':
		lx.pos++
		return token{kind: tokLBrace, line: line}, nil
	case '}':
		lx.pos++
		return token{kind: tokRBrace, line: line}, nil
	}
	w, err := lx.lexWord()
	if err != nil {
		return token{}, err
	}
	return token{kind: tokWord, w: w, line: line}, nil
}

func (lx *lexer) lexWord() (word, error) {
	var w word
	lx.buf = lx.buf[:0]
	quotedLit := false
	total := 0
	flushLit := func() error {
		if len(lx.buf) > 0 || quotedLit {
			total += len(lx.buf)
			if total > MaxWordLength {
				return perr(lx.file, lx.line, ErrWordTooLong, "cap %d bytes", MaxWordLength)
			}
			w.parts = append(w.parts, part{text: string(lx.buf), quoted: quotedLit})
			lx.buf = lx.buf[:0]
			quotedLit = false
		}
		return nil
	}
	src := lx.src
	for lx.pos < len(src) {
		if err := lx.checkLine(); err != nil {
			return w, err
		}
		if len(lx.buf) > MaxWordLength {
			return w, perr(lx.file, lx.line, ErrWordTooLong, "cap %d bytes", MaxWordLength)
		}
		c := src[lx.pos]
		switch c {
		case ' ', '\t', '\r', '\n', ';', '}':
			// '}' ends a word so "fi}" closes a block as grub's lexer does.
			return w, flushLit()
		case '\\':
			if lx.pos+1 >= len(src) {
				lx.buf = append(lx.buf, c)
				lx.pos++
				continue
			}
			n := src[lx.pos+1]
			lx.pos += 2
			if n == '\n' {
				lx.newline()
				continue
			}
			lx.buf = append(lx.buf, n)
		case '\'':
			end := -1
			for i := lx.pos + 1; i < len(src); i++ {
				if src[i] == '\'' {
					end = i
					break
				}
			}
			if end < 0 {
				return w, perr(lx.file, lx.line, ErrSyntax, "single quote never closed")
			}
			if err := flushLit(); err != nil {
				return w, err
			}
			lit := src[lx.pos+1 : end]
			lx.pos = end + 1
			for i := 0; i < len(lit); i++ {
				if lit[i] == '\n' {
					lx.line++
					lx.lineStart = lx.pos
				}
			}
			total += len(lit)
			if total > MaxWordLength {
				return w, perr(lx.file, lx.line, ErrWordTooLong, "cap %d bytes", MaxWordLength)
			}
			w.parts = append(w.parts, part{text: lit, quoted: true})
		case '"':
			if err := flushLit(); err != nil {
				return w, err
			}
			if err := lx.lexDouble(&w, &total); err != nil {
				return w, err
			}
		case '$':
			if err := flushLit(); err != nil {
				return w, err
			}
			if !lx.lexVar(&w, false) {
				lx.buf = append(lx.buf, '$')
				lx.pos++
			}
		default:
			lx.buf = append(lx.buf, c)
			lx.pos++
		}
	}
	return w, flushLit()
}

// lexDouble reads a double-quoted string starting at the opening quote.
func (lx *lexer) lexDouble(w *word, total *int) error {
	src := lx.src
	startLine := lx.line
	lx.pos++ // opening quote
	lx.buf = lx.buf[:0]
	emitted := false
	flush := func(force bool) error {
		if len(lx.buf) > 0 || force {
			*total += len(lx.buf)
			if *total > MaxWordLength {
				return perr(lx.file, lx.line, ErrWordTooLong, "cap %d bytes", MaxWordLength)
			}
			w.parts = append(w.parts, part{text: string(lx.buf), quoted: true})
			lx.buf = lx.buf[:0]
			emitted = true
		}
		return nil
	}
	for lx.pos < len(src) {
		if len(lx.buf) > MaxWordLength {
			return perr(lx.file, lx.line, ErrWordTooLong, "cap %d bytes", MaxWordLength)
		}
		c := src[lx.pos]
		switch c {
		case '"':
			lx.pos++
			// An empty "" is still an (empty) argument.
			return flush(!emitted)
		case '\\':
			if lx.pos+1 < len(src) {
				n := src[lx.pos+1]
				switch n {
				case '$', '"', '\\':
					lx.buf = append(lx.buf, n)
					lx.pos += 2
					continue
				case '\n':
					lx.pos += 2
					lx.newline()
					continue
				}
			}
			lx.buf = append(lx.buf, c)
			lx.pos++
		case '$':
			if err := flush(false); err != nil {
				return err
			}
			if lx.lexVar(w, true) {
				emitted = true
			} else {
				lx.buf = append(lx.buf, '$')
				lx.pos++
			}
		case '\n':
			lx.buf = append(lx.buf, c)
			lx.pos++
			lx.newline()
		default:
			lx.buf = append(lx.buf, c)
			lx.pos++
		}
	}
	return perr(lx.file, startLine, ErrSyntax, "double quote never closed")
}

// lexVar reads $name, ${name} or $1/$?/$#/$@/$* at pos (which holds '$').
// It returns false, consuming nothing, when no variable follows.
func (lx *lexer) lexVar(w *word, quoted bool) bool {
	src := lx.src
	i := lx.pos + 1
	if i >= len(src) {
		return false
	}
	var name string
	switch {
	case src[i] == '{':
		end := i + 1
		for end < len(src) && src[end] != '}' && src[end] != '\n' && end-i <= 256 {
			end++
		}
		if end >= len(src) || src[end] != '}' {
			return false
		}
		name = src[i+1 : end]
		lx.pos = end + 1
	case src[i] == '?' || src[i] == '#' || src[i] == '@' || src[i] == '*':
		name = src[i : i+1]
		lx.pos = i + 1
	case isNameByte(src[i]):
		end := i
		for end < len(src) && isNameByte(src[end]) && end-i <= 256 {
			end++
		}
		name = src[i:end]
		lx.pos = end
	default:
		return false
	}
	w.parts = append(w.parts, part{text: name, isVar: true, quoted: quoted})
	return true
}
