package boot

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Journal is glint's log: every line goes to the console (when verbose or
// important) and into a ring buffer the owner can read from the menu, since a
// PID-1 initramfs has no syslog and the screen scrolls away.
type Journal struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
	out   io.Writer
	now   func() time.Time
	start time.Time
}

const journalLines = 2000

// NewJournal returns a journal that also copies lines to out (may be nil).
func NewJournal(out io.Writer, now func() time.Time) *Journal {
	if now == nil {
		now = time.Now
	}
	return &Journal{lines: make([]string, journalLines), out: out, now: now, start: now()}
}

// Logf records a line and prints it.
func (j *Journal) Logf(format string, a ...any) {
	j.record(true, format, a...)
}

// Debugf records a line without printing it.
func (j *Journal) Debugf(format string, a ...any) {
	j.record(false, format, a...)
}

func (j *Journal) record(show bool, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.lines == nil { // the zero Journal works too (early boot, before NewJournal)
		j.lines = make([]string, journalLines)
		if j.now == nil {
			j.now = time.Now
			j.start = j.now()
		}
	}
	elapsed := j.now().Sub(j.start).Seconds()
	for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		j.lines[j.next] = fmt.Sprintf("[%8.3f] %s", elapsed, l)
		j.next = (j.next + 1) % len(j.lines)
		if j.next == 0 {
			j.full = true
		}
		if show && j.out != nil {
			fmt.Fprintf(j.out, "glint: %s\n", l)
		}
	}
}

// Lines returns the buffered lines, oldest first.
func (j *Journal) Lines() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.full {
		return append([]string(nil), j.lines[:j.next]...)
	}
	out := append([]string(nil), j.lines[j.next:]...)
	return append(out, j.lines[:j.next]...)
}
