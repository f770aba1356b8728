package reown

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/secret"
)

// Answers are the owner's answers given in advance (an organisation
// provisioning many machines, or a test): one "key = value" per line, '#'
// starts a comment, the keys are the Question keys (docs/own.md lists
// them). The wizard runs the same code with them as with a person at the
// console (AnswersUI).
//
//	# glint own answers
//	confirm        = reset everything
//	keys           = card
//	key.type       = rsa3072
//	key.name       = Jane Doe
//	key.email      = jane@example.org
//	card.user-pin  = generate
//	card.admin-pin = generate
//	sign           = yes
//
// Values are kept as []byte (PINs and passphrases live here) and wiped by
// Wipe.
type Answers struct {
	values map[string][]byte
	line   map[string]int
	used   map[string]bool
}

// Answers file limits: a provisioning file is a few dozen short lines.
const (
	maxAnswersSize = 64 << 10
	maxAnswerLine  = 1024
	maxAnswerKeys  = 256
)

// AnswersError names the line of an answers file that is wrong.
type AnswersError struct {
	Line int
	Err  error
}

func (e *AnswersError) Error() string {
	return fmt.Sprintf("answers file line %d: %v", e.Line, e.Err)
}
func (e *AnswersError) Unwrap() error { return e.Err }

func answersErrorf(line int, format string, a ...any) error {
	return &AnswersError{Line: line, Err: fmt.Errorf(format, a...)}
}

// ParseAnswers reads an answers file. Unknown keys are an error (a typo
// must not silently leave a question to a default), and so is a key given
// twice.
func ParseAnswers(untrusted []byte) (*Answers, error) {
	if len(untrusted) > maxAnswersSize {
		return nil, answersErrorf(0, "%d bytes, more than %d", len(untrusted), maxAnswersSize)
	}
	a := &Answers{values: map[string][]byte{}, line: map[string]int{}, used: map[string]bool{}}
	n := 0
	for len(untrusted) > 0 {
		n++
		var raw []byte
		if i := bytes.IndexByte(untrusted, '\n'); i >= 0 {
			raw, untrusted = untrusted[:i], untrusted[i+1:]
		} else {
			raw, untrusted = untrusted, nil
		}
		if len(raw) > maxAnswerLine {
			a.Wipe()
			return nil, answersErrorf(n, "longer than %d bytes", maxAnswerLine)
		}
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		// A '#' starts a comment only at the start of a line or after a
		// blank, so a PIN may contain '#'.
		if i := commentStart(raw); i >= 0 {
			raw = raw[:i]
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(raw, []byte("="))
		if !ok {
			a.Wipe()
			return nil, answersErrorf(n, "want key = value")
		}
		key := string(bytes.TrimSpace(k))
		if !knownKey(key) {
			a.Wipe()
			return nil, answersErrorf(n, "unknown key %q (known: %s)", key, strings.Join(KnownKeys(), ", "))
		}
		if _, dup := a.values[key]; dup {
			a.Wipe()
			return nil, answersErrorf(n, "%s given twice (first on line %d)", key, a.line[key])
		}
		if len(a.values) >= maxAnswerKeys {
			a.Wipe()
			return nil, answersErrorf(n, "more than %d answers", maxAnswerKeys)
		}
		val := bytes.TrimSpace(v)
		for _, c := range val {
			if c < 0x20 || c == 0x7f {
				a.Wipe()
				return nil, answersErrorf(n, "%s: control character in the value", key)
			}
		}
		a.values[key] = bytes.Clone(val)
		a.line[key] = n
	}
	return a, nil
}

func commentStart(b []byte) int {
	for i, c := range b {
		if c == '#' && (i == 0 || b[i-1] == ' ' || b[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// Get returns the answer to key (a copy the caller wipes) and whether one
// was given.
func (a *Answers) Get(key string) ([]byte, bool) {
	if a == nil {
		return nil, false
	}
	v, ok := a.values[key]
	if ok {
		a.used[key] = true
	}
	return bytes.Clone(v), ok
}

// Has reports whether key was answered.
func (a *Answers) Has(key string) bool {
	if a == nil {
		return false
	}
	_, ok := a.values[key]
	return ok
}

// Unused lists the answers the wizard never asked for (a mistake worth
// pointing out: an answer for the card path when the machine had none).
func (a *Answers) Unused() []string {
	if a == nil {
		return nil
	}
	var out []string
	for k := range a.values {
		if !a.used[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Wipe overwrites every value.
func (a *Answers) Wipe() {
	if a == nil {
		return
	}
	for _, v := range a.values {
		secret.Wipe(v)
	}
}

// ErrNoAnswer: a question the answers file does not answer and nobody is
// at the console to ask.
var ErrNoAnswer = errors.New("no answer")
