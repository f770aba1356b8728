//go:build !payload

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/readers"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/reown"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "own", summary: "make this machine yours: reset the TPM, new owner keys (card or key file), the key into the firmware, /boot signed, a new TOTP secret",
		usage: "[--answers FILE [--ask]] [--rom IMAGE | --programmer P] [--backup-dir DIR] [--reader SPEC] [--at-next-boot]", run: runOwn})
}

// maxAnswersFile caps the answers file read (the parser caps it again).
const maxAnswersFile = 64 << 10

func runOwn(e *env, args []string) error {
	fs := commandFlags(e, "own")
	answersFile := fs.String("answers", "", "answers file: run without questions (docs/own.md lists the keys)")
	ask := fs.Bool("ask", false, "with --answers: ask at the terminal what the file does not answer")
	romFile := fs.String("rom", "", "personalise this firmware image file instead of the flash chip (flash it yourself afterwards)")
	var f flashFlags
	addFlashFlags(fs, &f)
	reader := fs.String("reader", "", "card reader: auto (default, or $GLINT_CARD), pcsc[:NAME], usb[:BUS/ADDR|:VID:PID]")
	keyDir := fs.String("key-dir", "", "default directory for the key files and backups (a USB drive)")
	profile := fs.String("profile", "coreboot", "platform profile the machine boots with (coreboot or uefi)")
	atNextBoot := fs.Bool("at-next-boot", false, "do not run here: ask glint's boot menu to run the wizard at the next power-on (where any TPM can be reset)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("usage: glint own %s", commands["own"].usage)
	}
	if *atNextBoot {
		if err := reown.Request(e.bootDir, nil, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Re-ownership requested: glint runs the wizard at the next power-on, before anything else.\n")
		return nil
	}
	prof, err := pcr.ByName(*profile)
	if err != nil {
		return usageErrorf("%v", err)
	}
	con := newTermConsole(e)
	var ui reown.UI
	var answers *reown.Answers
	if *answersFile != "" {
		raw, err := safefile.ReadCapped(*answersFile, maxAnswersFile)
		if err != nil {
			return err
		}
		a, err := reown.ParseAnswers(raw)
		secret.Wipe(raw)
		if err != nil {
			return err
		}
		defer a.Wipe()
		answers = a
		if *ask {
			ui = &reown.ConsoleUI{Con: con, Answers: a}
		} else {
			ui = &reown.AnswersUI{Answers: a, Out: e.stdout}
		}
	} else {
		ui = &reown.ConsoleUI{Con: con}
	}
	t, err := tpm.Open(e.tpmSpec)
	if err != nil {
		return err
	}
	defer t.Close()
	w := &reown.Wizard{
		UI: ui, TPM: t, BootDir: e.bootDir, Where: reown.OnWorkstation, DefaultBackupDir: *keyDir,
		OpenCard:   func() (*card.Card, string, error) { return readers.OpenCard(*reader) },
		OpenDongle: func() (dongle.Device, error) { return sealed.OpenDongle() },
		Sealing: func() (*sealed.State, error) {
			s := sealed.New(t, prof, e.bootDir)
			if err := s.RecordStart(); err != nil {
				return nil, err
			}
			s.FirmwareEvents = sealed.ReadFirmwareEvents
			s.PredictFromFirmwareLog()
			return s, nil
		},
	}
	if *romFile != "" {
		w.Firmware = &reown.ImageFile{Path: *romFile}
	} else {
		w.Firmware = &reown.Flashrom{Device: f.device(), BackupDir: f.backupDir}
	}
	ctx, stop := flashContext(e)
	defer stop()
	res, err := w.Run(ctx)
	if err != nil {
		if errors.Is(err, reown.ErrStopped) {
			fmt.Fprintf(e.stdout, "%v\n", err)
			return &exitError{code: 3, err: err}
		}
		return err
	}
	if u := answers.Unused(); len(u) > 0 && !res.Resumed {
		fmt.Fprintf(e.stderr, "glint own: answers never asked for: %s\n", strings.Join(u, ", "))
	}
	if res.RebootNeeded {
		fmt.Fprintf(e.stdout, "Done. Power the machine off and on to start the new firmware.\n")
	}
	return nil
}

// termConsole is the wizard's console on a workstation: prompts on
// stdout, answers read from stdin through one buffer (so piped answers
// are not lost between prompts), secrets read without echo when stdin is
// a terminal and never turned into strings.
type termConsole struct {
	e  *env
	in *bufio.Reader
}

func newTermConsole(e *env) *termConsole { return &termConsole{e: e, in: bufio.NewReader(e.stdin)} }

func (c *termConsole) Printf(format string, a ...any) { fmt.Fprintf(c.e.stdout, format, a...) }

// maxConsoleLine bounds one answer.
const maxConsoleLine = 4096

func (c *termConsole) readLine() ([]byte, error) {
	var line []byte
	for {
		b, err := c.in.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				break
			}
			secret.Wipe(line)
			return nil, fmt.Errorf("no answer on the terminal: %w", err)
		}
		if b == '\n' {
			break
		}
		if len(line) >= maxConsoleLine {
			secret.Wipe(line)
			return nil, errors.New("answer longer than 4096 characters")
		}
		line = append(line, b)
	}
	return bytes.TrimRight(line, "\r"), nil
}

func (c *termConsole) Prompt(prompt string) (string, error) {
	fmt.Fprint(c.e.stdout, prompt)
	b, err := c.readLine()
	return string(b), err
}

func (c *termConsole) PromptSecret(prompt string) ([]byte, error) {
	fmt.Fprint(c.e.stdout, prompt)
	if f, ok := c.e.stdin.(*os.File); ok {
		if tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			old := *tio
			tio.Lflag &^= unix.ECHO
			unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio)
			defer func() {
				unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &old)
				fmt.Fprintln(c.e.stdout)
			}()
		}
	}
	return c.readLine()
}
