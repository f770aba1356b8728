package boot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/glint-boot/glint/internal/secret"
)

// Console is the owner's screen and keyboard: a serial line or the
// VGA/framebuffer console. Input is read a line at a time (the kernel's tty
// is in canonical mode on both), so every prompt is answered with Enter.
type Console struct {
	out io.Writer
	// lines carries each line in a buffer of its own, so a passphrase
	// can be wiped after use and never becomes a Go string.
	lines chan []byte
	eof   chan struct{}
	// waited is the time spent waiting for the owner (prompts, countdown),
	// kept so glint's own boot time can be reported without it.
	waited time.Duration
	// Echo turns terminal echo on or off on the console's ttys (nil: no
	// tty, e.g. tests), so passphrases are not shown as they are typed.
	Echo func(on bool)
}

// ErrNoInput says the console was closed (no keyboard, end of input).
var ErrNoInput = errors.New("console input closed")

// errTimeout says no line arrived in time.
var errTimeout = errors.New("no input")

// NewConsole reads lines from in in the background.
func NewConsole(in io.Reader, out io.Writer) *Console {
	return NewMultiConsole([]io.Reader{in}, out)
}

// NewMultiConsole shows everything on out (e.g. serial and VGA together) and
// takes the owner's answers from whichever input types first. Input ends
// when the first input ends (the primary console).
func NewMultiConsole(ins []io.Reader, out io.Writer) *Console {
	c := &Console{out: out, lines: make(chan []byte, 16), eof: make(chan struct{})}
	for i, in := range ins {
		primary := i == 0
		go func() {
			s := bufio.NewScanner(in)
			s.Buffer(make([]byte, 4096), 64*1024)
			for s.Scan() {
				tok := s.Bytes()
				line := bytes.Clone(bytes.TrimRight(tok, "\r"))
				secret.Wipe(tok) // the scanner's buffer held it too
				c.lines <- line
			}
			if primary {
				close(c.eof)
			}
		}()
	}
	return c
}

// ANSI colours: the Linux VGA console and every serial terminal understand them.
const (
	red    = "\x1b[1;37;41m"
	yellow = "\x1b[1;30;43m"
	green  = "\x1b[1;37;42m"
	reset  = "\x1b[0m"
)

// Printf writes to the console.
func (c *Console) Printf(format string, a ...any) { fmt.Fprintf(c.out, format, a...) }

// Banner prints a full-width coloured line.
func (c *Console) Banner(colour, text string) {
	c.Printf("%s %-76s %s\n", colour, text, reset)
}

// ReadLine waits for a line; timeout <= 0 waits forever.
func (c *Console) ReadLine(timeout time.Duration) (string, error) {
	b, err := c.readLine(timeout)
	s := string(b)
	secret.Wipe(b)
	return s, err
}

// readLine is ReadLine returning the line's own buffer.
func (c *Console) readLine(timeout time.Duration) ([]byte, error) {
	start := time.Now()
	defer func() { c.waited += time.Since(start) }()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case l := <-c.lines:
		return l, nil
	case <-c.eof:
		// drain lines that arrived before EOF
		select {
		case l := <-c.lines:
			return l, nil
		default:
		}
		return nil, ErrNoInput
	case <-timer:
		return nil, errTimeout
	}
}

// Prompt prints a question and reads the answer.
func (c *Console) Prompt(question string) (string, error) {
	c.Printf("%s", question)
	return c.ReadLine(0)
}

// PromptSecret is Prompt with the terminal's echo off, for passphrases and
// PINs (Heads' read -s): nothing typed appears on the screen or the serial
// transcript. The answer is a byte slice the caller wipes (secret.Wipe):
// it never becomes a Go string, which could not be wiped.
func (c *Console) PromptSecret(question string) ([]byte, error) {
	c.Printf("%s", question)
	if c.Echo != nil {
		c.Echo(false)
		defer func() {
			c.Echo(true)
			c.Printf("\n")
		}()
	}
	return c.readLine(0)
}

// Countdown shows "msg in N s" and returns true if the owner pressed Enter
// (interrupting) before it ran out.
func (c *Console) Countdown(msg string, seconds int) bool {
	if seconds <= 0 {
		c.Printf("%s now\n", msg)
		return false
	}
	c.Printf("%s in %d s (press Enter for the menu)\n", msg, seconds)
	_, err := c.ReadLine(time.Duration(seconds) * time.Second)
	return err == nil
}
