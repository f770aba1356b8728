//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"time"
)

// Console is the emulated laptop's serial line (COM1, the kernel's /dev/console): what the
// guest prints is kept in memory for Expect and appended to the scenario's transcript; Send
// types a line on the keyboard side.
type Console struct {
	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte // everything received this boot, ANSI colours removed
	partial []byte // an escape sequence cut by a read boundary, kept for the next chunk
	cursor  int    // Expect searches from here
	closed  bool
	in      io.Writer
	log     *os.File
	started time.Time
	firstAt map[string]time.Duration // when a marker first appeared (see markAt)
	markers []*regexp.Regexp
}

// Echo, when set, also gets every byte the guest prints and every line typed (the demo sets
// it to the terminal).
var Echo io.Writer

// ansi matches the colour escapes glint's banners use; tests match words, not colours.
var (
	ansi    = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	ansiEnd = regexp.MustCompile(`^\x1b(\[[0-9;?]*)?[A-Za-z]`)
)

func newConsole(out io.Reader, in io.Writer, log *os.File, markers ...string) *Console {
	c := &Console{in: in, log: log, started: time.Now(), firstAt: map[string]time.Duration{}}
	c.cond = sync.NewCond(&c.mu)
	for _, m := range markers {
		c.markers = append(c.markers, regexp.MustCompile(m))
	}
	go c.pump(out)
	return c
}

func (c *Console) pump(out io.Reader) {
	chunk := make([]byte, 4096)
	for {
		n, err := out.Read(chunk)
		if n > 0 {
			c.mu.Lock()
			if c.log != nil {
				c.log.Write(chunk[:n]) // best effort: the transcript is for people
			}
			if Echo != nil {
				Echo.Write(chunk[:n]) // the demo shows the console as it goes
			}
			data := append(c.partial, chunk[:n]...)
			c.partial = nil
			// an escape sequence still open at the end waits for the rest
			if i := bytes.LastIndexByte(data, 0x1b); i >= 0 && i+16 > len(data) && !ansiEnd.Match(data[i:]) {
				c.partial = append([]byte(nil), data[i:]...)
				data = data[:i]
			}
			clean := ansi.ReplaceAll(bytes.ReplaceAll(data, []byte("\r"), nil), nil)
			c.buf = append(c.buf, clean...)
			for _, m := range c.markers {
				if _, seen := c.firstAt[m.String()]; !seen && m.Match(c.buf) {
					c.firstAt[m.String()] = time.Since(c.started)
				}
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		if err != nil {
			c.mu.Lock()
			c.closed = true
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
	}
}

// ExpectError says the expected text did not appear: the time ran out, or the machine stopped
// (powered off, rebooted, crashed) first. Tail is the last output, for the test log.
type ExpectError struct {
	Pattern string
	Timeout time.Duration
	Closed  bool
	Tail    string
}

func (e *ExpectError) Error() string {
	why := fmt.Sprintf("not seen within %s", e.Timeout)
	if e.Closed {
		why = "machine stopped first"
	}
	return fmt.Sprintf("expected /%s/: %s; last output:\n%s", e.Pattern, why, e.Tail)
}

// Expect waits for pattern in the output after the previous match and returns the submatches
// (index 0 = whole match). Output before the cursor is never matched again.
func (c *Console) Expect(pattern string, timeout time.Duration) ([]string, error) {
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if loc := re.FindSubmatchIndex(c.buf[c.cursor:]); loc != nil {
			var subs []string
			for i := 0; i < len(loc); i += 2 {
				if loc[i] < 0 {
					subs = append(subs, "")
					continue
				}
				subs = append(subs, string(c.buf[c.cursor+loc[i]:c.cursor+loc[i+1]]))
			}
			c.cursor += loc[1]
			return subs, nil
		}
		if c.closed || time.Now().After(deadline) {
			return nil, &ExpectError{Pattern: pattern, Timeout: timeout, Closed: c.closed, Tail: c.tailLocked(1500)}
		}
		c.cond.Wait()
	}
}

// Seen reports whether pattern occurs anywhere in this boot's output (ignoring the cursor).
func (c *Console) Seen(pattern string) bool {
	re := regexp.MustCompile(pattern)
	c.mu.Lock()
	defer c.mu.Unlock()
	return re.Match(c.buf)
}

// Since returns the output after the cursor position mark (from Mark).
func (c *Console) Since(mark int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mark > len(c.buf) {
		return ""
	}
	return string(c.buf[mark:])
}

// Mark returns the current cursor, for Since.
func (c *Console) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor
}

// All returns everything received this boot.
func (c *Console) All() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

func (c *Console) tailLocked(n int) string {
	b := c.buf
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Send types line and Enter. The guest's tty is in canonical mode with ICRNL, as a serial
// terminal sends it: "\r" ends the line.
func (c *Console) Send(line string) error {
	c.mu.Lock()
	if Echo != nil {
		fmt.Fprintf(Echo, "\033[1;33m[typed: %s]\033[0m\n", line)
	}
	if c.log != nil {
		fmt.Fprintf(c.log, "\n[e2e typed %q]\n", line)
	}
	c.mu.Unlock()
	_, err := io.WriteString(c.in, line+"\r")
	return err
}

// FirstSeen reports when marker (as given to newConsole) first appeared, measured from
// power-on.
func (c *Console) FirstSeen(marker string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.firstAt[marker]
	return d, ok
}
