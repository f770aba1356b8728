package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// env carries what every command needs: its streams and the global settings.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// tpmSpec is --tpm / GLINT_TPM: a device path or swtpm:tcp:HOST:PORT / swtpm:unix:PATH.
	tpmSpec string
	// bootDir is --boot: the directory holding the OS kernels and glint's manifest.
	bootDir string
}

// command is one glint verb. Each command file registers its verbs in init().
type command struct {
	name    string // "pcrs", "eventlog show", ...
	summary string
	usage   string // argument synopsis after the name
	run     func(e *env, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// exitError carries a specific exit status (e.g. 1 for "verification failed",
// 2 for usage errors) up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func usageErrorf(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

const defaultTPM = "/dev/tpmrm0"

// run is glint's entry point for tests and main alike.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, tpmSpec: os.Getenv("GLINT_TPM"), bootDir: "/boot"}
	if e.tpmSpec == "" {
		e.tpmSpec = defaultTPM
	}
	// As PID 1 glint is always the boot flow, whatever the kernel passed:
	// words of the kernel command line the kernel does not know arrive as
	// arguments, and returning from here would panic the kernel.
	if len(args) > 0 && args[0] == "init" || os.Getpid() == 1 {
		return runInit(e, args)
	}
	fs := flag.NewFlagSet("glint", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.tpmSpec, "tpm", e.tpmSpec, "")
	fs.StringVar(&e.bootDir, "boot", e.bootDir, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		printHelp(stderr)
		return usageErrorf("%v", err)
	}
	args = fs.Args()
	if *help || len(args) == 0 || args[0] == "help" {
		printHelp(stdout)
		return nil
	}
	// Longest registered name wins: "eventlog show" before "eventlog".
	for n := min(len(args), 3); n >= 1; n-- {
		name := strings.Join(args[:n], " ")
		if c, ok := commands[name]; ok {
			return c.run(e, args[n:])
		}
	}
	printHelp(stderr)
	return usageErrorf("unknown command %q (see glint --help)", strings.Join(args, " "))
}

// commandFlags returns a flag set for one command that also accepts the global
// --tpm and --boot after the verb, so `glint verify --boot X` works too.
func commandFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("glint "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&e.tpmSpec, "tpm", e.tpmSpec, "TPM to use (device path or swtpm:tcp:HOST:PORT / swtpm:unix:PATH)")
	fs.StringVar(&e.bootDir, "boot", e.bootDir, "boot directory")
	return fs
}

// parseFlags parses a command's flags; a parse error is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &exitError{code: 0, err: err}
		}
		return &exitError{code: 2, err: err}
	}
	return nil
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `glint: tamper-evident boot (measured boot, TOTP/HOTP attestation, signed /boot, sealed disk key)

Usage: glint [--tpm SPEC] [--boot DIR] COMMAND [ARGS]

Global options (also accepted after COMMAND):
  --tpm SPEC   which TPM to talk to; TPM 1.2 or 2.0 is detected. Default /dev/tpmrm0,
               or the GLINT_TPM environment variable. SPEC is one of:
                 /dev/tpmrm0 | /dev/tpm0          a kernel TPM device
                 swtpm:tcp:127.0.0.1:2321         swtpm --server type=tcp
                 swtpm:unix:/run/swtpm.sock       swtpm --server type=unixio
  --boot DIR   the /boot directory to read or sign (default /boot)

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		syn := n
		if c.usage != "" {
			syn += " " + c.usage
		}
		fmt.Fprintf(w, "  %-40s %s\n", syn, c.summary)
	}
	fmt.Fprint(w, `
Exit status: 0 success, 1 failure (for verify: anything did not verify), 2 usage error.
Run 'glint COMMAND -h' for a command's options.
`)
}
