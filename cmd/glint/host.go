package main

import (
	"fmt"
	"os"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/hostcheck"
	"github.com/glint-boot/glint/internal/safefile"
)

func init() {
	register(command{name: "host check", summary: "judge the platform lock: flash protection, SMRAM, ME, TPM, event log, IOMMU, lockdown",
		usage: "[--json] [--phase payload|payload-locked|os] [--from DUMP]", run: runHostCheck})
	register(command{name: "host dump", summary: "print this machine's chipset registers (for --from, or a bug report)",
		run: runHostDump})
	register(command{name: "host lock", summary: "ask the firmware to lock the flash (SMI 0xcb, as before kexec) and check that it took",
		usage: "[--port /dev/port]", run: runHostLock})
}

func runHostCheck(e *env, args []string) error {
	fs := commandFlags(e, "host check")
	asJSON := fs.Bool("json", false, "print the report as JSON (for scripts and the attestation server)")
	def := hostcheck.PhaseOS
	if os.Getpid() == 1 {
		def = hostcheck.PhasePayload
	}
	phaseName := fs.String("phase", string(def), "where in the boot this runs: payload (before glint locks the flash), payload-locked, os")
	from := fs.String("from", "", "judge a register dump file (from 'glint host dump') instead of this machine")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("host check takes no arguments")
	}
	phase, err := hostcheck.ParsePhase(*phaseName)
	if err != nil {
		return usageErrorf("%v", err)
	}
	m := hostcheck.System()
	if *from != "" {
		raw, err := safefile.ReadCapped(*from, chipset.MaxDumpSize)
		if err != nil {
			return err
		}
		d, err := chipset.ParseDump(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", *from, err)
		}
		m = hostcheck.FromDump(d)
	}
	r := hostcheck.Run(m, phase)
	if *asJSON {
		js, err := r.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", js)
	} else {
		fmt.Fprint(e.stdout, r.Text())
	}
	if n := r.Failed(); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("host check: %d finding(s)", n)}
	}
	return nil
}

func runHostDump(e *env, args []string) error {
	fs := commandFlags(e, "host dump")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d, err := chipset.System.ReadLive()
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(d.Marshal())
	return err
}

func runHostLock(e *env, args []string) error {
	fs := commandFlags(e, "host lock")
	port := fs.String("port", "/dev/port", "the I/O port device")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := chipset.Lock(chipset.DevPort(*port), chipset.System.ReadLive)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, r.String())
	if !r.Took() {
		return &exitError{code: 1, err: fmt.Errorf("the flash lock did not take")}
	}
	return nil
}
