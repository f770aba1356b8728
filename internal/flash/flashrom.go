package flash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Runner runs flashrom with arguments and returns its combined output
// (at most MaxOutput bytes) and its exit error. The real one is Exec; tests
// and the dry run use others.
type Runner interface {
	Run(ctx context.Context, args []string) ([]byte, error)
}

// Exec runs the flashrom binary at Path (default: "flashrom" on $PATH, then
// /usr/sbin/flashrom).
type Exec struct {
	Path string
}

// Run starts flashrom with LC_ALL=C (the sentences the parser looks for are
// the untranslated ones) and keeps at most MaxOutput bytes of its output.
func (x Exec) Run(ctx context.Context, args []string) ([]byte, error) {
	path := x.Path
	if path == "" {
		var err error
		if path, err = lookFlashrom(); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out := &cappedBuffer{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// A killed flashrom may leave a chip half written; only the context
	// (the caller's deadline) kills it, and the caller then says so.
	cmd.WaitDelay = 5 * time.Second
	detach(cmd)
	err := cmd.Run()
	return out.Bytes(), err
}

// ErrNoFlashrom says flashrom is not installed.
var ErrNoFlashrom = errors.New("flashrom is not installed (Debian/Ubuntu: apt-get install flashrom)")

func lookFlashrom() (string, error) {
	if p, err := exec.LookPath("flashrom"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/flashrom", "/usr/local/sbin/flashrom", "/sbin/flashrom", "/bin/flashrom"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoFlashrom
}

// cappedBuffer keeps the first max bytes written and drops the rest, so a
// runaway child cannot fill memory; the parser sees the truncation as the
// cap being reached.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		if len(p) > room {
			c.Buffer.Write(p[:room])
		} else {
			c.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// Programmer names the way to the chip, as flashrom's -p takes it.
//
//	internal                         the machine's own SPI controller (internal update)
//	ch341a_spi                       a CH341A USB programmer with a SOIC-8 clip (external)
//	dummy:emulate=W25Q128FV,image=F  flashrom's emulated chip over a file (tests, the emulated laptop)
type Programmer string

// Internal reports whether the programmer is the machine's own controller,
// where the descriptor and ME regions are locked and only the BIOS region
// may be written.
func (p Programmer) Internal() bool {
	return p == "internal" || strings.HasPrefix(string(p), "internal:")
}

// Flashrom drives one programmer (and optionally one chip definition).
type Flashrom struct {
	Programmer Programmer
	// Chip is flashrom's -c, needed when a probe matches several chip
	// definitions (ErrAmbiguousChip lists them).
	Chip string
	// Run runs flashrom; nil means Exec{}.
	Run Runner
	// Timeout bounds one flashrom run; zero means 30 minutes (a CH341A
	// writes a 16 MiB chip in about 5).
	Timeout time.Duration
}

var (
	// ErrNoChip: the programmer answered but found no flash chip (clip
	// not seated, wrong voltage, chip powered by the board).
	ErrNoChip = errors.New("no flash chip found")
	// ErrAmbiguousChip: several chip definitions match; pass one with --chip.
	ErrAmbiguousChip = errors.New("several flash chip definitions match")
	// ErrFlashrom: flashrom failed; the error says how.
	ErrFlashrom = errors.New("flashrom failed")
	// ErrVerify: the chip does not hold the expected bytes.
	ErrVerify = errors.New("the chip does not hold the expected image")
	// ErrWriteProtected: the chipset or the firmware protects the flash
	// (coreboot's protected range, glint's lock before handing over to the
	// OS, a locked region).
	ErrWriteProtected = errors.New("the flash is write-protected by the firmware: update from glint's boot menu (before the lock) or flash externally")
)

// FlashromError is a failed flashrom run: its arguments, what it said
// (the failure lines), and the exit status.
type FlashromError struct {
	Args   []string
	Report *Report
	Exit   error
	Err    error // one of the sentinel errors above
}

func (e *FlashromError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: flashrom %s", e.Err, strings.Join(e.Args, " "))
	if e.Exit != nil {
		fmt.Fprintf(&b, " (%v)", e.Exit)
	}
	if e.Report != nil {
		for _, l := range e.Report.Failed {
			fmt.Fprintf(&b, "\n  flashrom: %s", l)
		}
	}
	return b.String()
}

func (e *FlashromError) Unwrap() error { return e.Err }

func (f *Flashrom) base() []string {
	args := []string{"-p", string(f.Programmer)}
	if f.Chip != "" {
		args = append(args, "-c", f.Chip)
	}
	return args
}

func (f *Flashrom) run(ctx context.Context, args []string) (*Report, error) {
	r := f.Run
	if r == nil {
		r = Exec{}
	}
	timeout := f.Timeout
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, exitErr := r.Run(ctx, args)
	if errors.Is(exitErr, ErrNoFlashrom) {
		return nil, exitErr
	}
	rep, perr := ParseOutput(out)
	if perr != nil {
		return nil, &FlashromError{Args: args, Exit: exitErr, Err: fmt.Errorf("%w: %v", ErrFlashrom, perr)}
	}
	return rep, exitErr
}

// Region selects what a write or verify covers.
type Region string

const (
	// WholeChip writes every byte (external flashing, or a board
	// without a flash descriptor).
	WholeChip Region = ""
	// BIOSRegion writes only the descriptor's BIOS region (internal
	// flashing: the descriptor and ME are locked by the chipset).
	BIOSRegion Region = "bios"
)

func regionArgs(r Region) []string {
	if r == WholeChip {
		return nil
	}
	// --ifd: the layout from the descriptor on the chip; -N: verify only
	// the included region (the ME region cannot even be read internally).
	return []string{"--ifd", "-i", string(r), "-N"}
}

// Probe finds the chip.
func (f *Flashrom) Probe(ctx context.Context) (*Chip, error) {
	args := f.base()
	rep, err := f.run(ctx, args)
	if rep == nil {
		return nil, err
	}
	switch {
	case len(rep.Ambiguous) > 0:
		return nil, &FlashromError{Args: args, Report: rep, Exit: err,
			Err: fmt.Errorf("%w: %s; name the one printed on the chip with --chip", ErrAmbiguousChip, strings.Join(rep.Ambiguous, ", "))}
	case rep.NoChip || len(rep.Chips) == 0:
		return nil, &FlashromError{Args: args, Report: rep, Exit: err, Err: ErrNoChip}
	case err != nil:
		return nil, &FlashromError{Args: args, Report: rep, Exit: err, Err: ErrFlashrom}
	case len(rep.Chips) > 1:
		var names []string
		for _, c := range rep.Chips {
			names = append(names, c.Name)
		}
		return nil, &FlashromError{Args: args, Report: rep,
			Err: fmt.Errorf("%w: %s; pass one with --chip", ErrAmbiguousChip, strings.Join(names, ", "))}
	}
	c := rep.Chips[0]
	return &c, nil
}

// Read reads the whole chip into path (which flashrom creates).
func (f *Flashrom) Read(ctx context.Context, path string) error {
	args := append(f.base(), "-r", path)
	rep, err := f.run(ctx, args)
	if err != nil || rep == nil || len(rep.Failed) > 0 {
		return &FlashromError{Args: args, Report: rep, Exit: err, Err: ErrFlashrom}
	}
	return nil
}

// Write writes image (a whole-chip-sized file) to the chip, or only its
// region, and lets flashrom verify what it wrote.
func (f *Flashrom) Write(ctx context.Context, image string, region Region) error {
	args := append(append(f.base(), regionArgs(region)...), "-w", image)
	rep, err := f.run(ctx, args)
	if rep == nil {
		return err
	}
	if err != nil || len(rep.Failed) > 0 || rep.VerifyFailed || !(rep.Verified || rep.Identical) {
		e := ErrFlashrom
		switch {
		case rep.WriteProtected:
			e = ErrWriteProtected
		case rep.VerifyFailed:
			e = ErrVerify
		}
		return &FlashromError{Args: args, Report: rep, Exit: err, Err: e}
	}
	return nil
}

// Verify compares the chip (or its region) with image.
func (f *Flashrom) Verify(ctx context.Context, image string, region Region) error {
	args := append(append(f.base(), regionArgs(region)...), "-v", image)
	rep, err := f.run(ctx, args)
	if rep == nil {
		return err
	}
	if rep.VerifyFailed {
		return &FlashromError{Args: args, Report: rep, Exit: err, Err: ErrVerify}
	}
	if err != nil || len(rep.Failed) > 0 || !rep.Verified {
		return &FlashromError{Args: args, Report: rep, Exit: err, Err: ErrFlashrom}
	}
	return nil
}

// CommandLine is how a step's flashrom call reads in the dry run and in
// the owner's log.
func (f *Flashrom) CommandLine(op string, file string, region Region) string {
	args := append([]string{"flashrom"}, f.base()...)
	if op != "probe" {
		if op != "-r" {
			args = append(args, regionArgs(region)...)
		}
		args = append(args, op, file)
	}
	return strings.Join(args, " ")
}
