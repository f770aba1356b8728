package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "eventlog show", summary: "list the firmware measurement log, one event per line",
		usage: "[--mem DUMP] [FILE]", run: runEventlogShow})
	register(command{name: "eventlog replay", summary: "replay the log and compare with the TPM's PCRs (exit 1 on mismatch)",
		usage: "[--bank sha256] [--pcrs FILE] [--mem DUMP] [FILE]", run: runEventlogReplay})
	register(command{name: "eventlog diff", summary: "list events that differ between two logs (or stored record files)",
		usage: "OLD NEW", run: runEventlogDiff})
}

// loadLog reads the log named on the command line: a file (TCG or coreboot
// TCPA), a physical-memory dump holding coreboot tables (--mem), or, with
// neither, this machine's firmware log.
func loadLog(file, mem string) (*eventlog.Log, error) {
	switch {
	case file != "" && mem != "":
		return nil, usageErrorf("give a log FILE or --mem DUMP, not both")
	case mem != "":
		f, err := os.Open(mem)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		l, err := eventlog.ReadCorebootLog(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mem, err)
		}
		return l, nil
	case file != "":
		if strings.HasSuffix(file, ".json") {
			return loadRecords(file)
		}
		return eventlog.ReadFile(file)
	}
	return eventlog.ReadFirmwareLog()
}

func loadRecords(path string) (*eventlog.Log, error) {
	b, err := safefile.ReadCapped(path, eventlog.MaxRecordsSize)
	if err != nil {
		return nil, err
	}
	recs, err := eventlog.ParseRecords(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l, err := eventlog.FromRecords(recs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.Source = path
	return l, nil
}

func oneFileArg(fs interface{ Args() []string }) (string, error) {
	switch len(fs.Args()) {
	case 0:
		return "", nil
	case 1:
		return fs.Args()[0], nil
	}
	return "", usageErrorf("too many arguments: %q", fs.Args())
}

func runEventlogShow(e *env, args []string) error {
	fs := commandFlags(e, "eventlog show")
	mem := fs.String("mem", "", "read coreboot's cbmem log from a physical memory dump (QEMU pmemsave) instead")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	file, err := oneFileArg(fs)
	if err != nil {
		return err
	}
	l, err := loadLog(file, *mem)
	if err != nil {
		return err
	}
	printLog(e.stdout, l)
	return nil
}

func printLog(w io.Writer, l *eventlog.Log) {
	var banks []string
	for _, a := range l.Algs {
		banks = append(banks, a.String())
	}
	show := shownBank(l)
	fmt.Fprintf(w, "# %s: %s, %d events, banks %s (digests below: %s)\n", l.Source, l.Format, len(l.Events), strings.Join(banks, " "), show)
	fmt.Fprintf(w, "%5s %3s  %-32s %-16s %s\n", "EVENT", "PCR", "TYPE", "DIGEST", "DESCRIPTION")
	for _, ev := range l.Events {
		d := ev.Digests[show]
		short := "-"
		if len(d) > 0 {
			short = hex.EncodeToString(d[:min(8, len(d))])
		}
		fmt.Fprintf(w, "%5d %3d  %-32s %-16s %s\n", ev.Index, ev.PCR, ev.Type, short, printableLine(ev.Description))
	}
}

// printableLine keeps a description from a crafted log on one line and free
// of terminal control characters.
func printableLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// shownBank prefers SHA-256, the bank glint seals to on TPM 2.0.
func shownBank(l *eventlog.Log) tpm.Alg {
	for _, a := range l.Algs {
		if a == tpm.SHA256 {
			return a
		}
	}
	if len(l.Algs) > 0 {
		return l.Algs[0]
	}
	return tpm.SHA256
}

func runEventlogReplay(e *env, args []string) error {
	fs := commandFlags(e, "eventlog replay")
	mem := fs.String("mem", "", "read coreboot's cbmem log from a physical memory dump instead")
	bankName := fs.String("bank", "", "PCR bank to replay (default sha256 if the log has it, else its first)")
	pcrsFile := fs.String("pcrs", "", `compare with PCR values from a file of "BANK INDEX HEX" lines instead of the TPM`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	file, err := oneFileArg(fs)
	if err != nil {
		return err
	}
	l, err := loadLog(file, *mem)
	if err != nil {
		return err
	}
	bank := shownBank(l)
	if *bankName != "" {
		if bank, err = tpm.ParseAlg(*bankName); err != nil {
			return usageErrorf("%v", err)
		}
	}
	replayed := l.Replay(bank)
	// Compare only the PCRs the log speaks for: PCRs glint itself extends
	// later (4-7 on coreboot) or the OS uses (10, IMA) are not in a
	// firmware log and would always differ.
	var idx []int
	for p := range replayed {
		idx = append(idx, p)
	}
	sort.Ints(idx)
	live, src, liveErr := livePCRs(e, *pcrsFile, bank, idx)
	fmt.Fprintf(e.stdout, "# %s: %s bank, %d PCRs\n", l.Source, bank, len(idx))
	for _, p := range idx {
		mark := ""
		if live != nil {
			mark = "  ok"
			if !bytes.Equal(live[p], replayed[p]) {
				mark = "  MISMATCH: " + src + " has " + hex.EncodeToString(live[p])
			}
		}
		fmt.Fprintf(e.stdout, "PCR %2d  %x%s\n", p, replayed[p], mark)
	}
	if live == nil {
		fmt.Fprintf(e.stderr, "glint: replayed values only; no live PCRs to compare with: %v\n", liveErr)
		return nil
	}
	only := map[int][]byte{}
	for _, p := range idx {
		only[p] = live[p]
	}
	if err := l.Verify(bank, only); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "# the log reproduces %s\n", src)
	return nil
}

// livePCRs reads the values to compare with: a file if given, else the TPM
// (--tpm), else Linux's sysfs PCR files.
func livePCRs(e *env, file string, bank tpm.Alg, idx []int) (map[int][]byte, string, error) {
	if file != "" {
		m, err := readPCRFile(file, bank)
		return m, file, err
	}
	var errs []error
	if t, err := tpm.Open(e.tpmSpec); err == nil {
		defer t.Close()
		m, err := t.ReadPCRs(bank, idx)
		if err == nil {
			return m, "the TPM (" + e.tpmSpec + ")", nil
		}
		errs = append(errs, err)
	} else {
		errs = append(errs, fmt.Errorf("open TPM %s (--tpm or GLINT_TPM chooses another): %w", e.tpmSpec, err))
	}
	m, err := pcr.ReadSysfs("/sys/class/tpm/tpm0", bank, idx)
	if err == nil {
		return m, "the TPM (sysfs)", nil
	}
	errs = append(errs, err)
	return nil, "", errors.Join(errs...)
}

// readPCRFile reads the bank's values from a file of "BANK INDEX HEX" lines
// (what testdata/record.sh saves from a guest's sysfs).
func readPCRFile(path string, bank tpm.Alg) (map[int][]byte, error) {
	raw, err := safefile.ReadCapped(path, pcr.MaxValuesSize)
	if err != nil {
		return nil, err
	}
	vals, err := pcr.ParseValues(raw)
	if err != nil {
		var pe *pcr.ParseError
		if errors.As(err, &pe) {
			pe.Source = path
		}
		return nil, err
	}
	if len(vals[bank]) == 0 {
		return nil, fmt.Errorf("%s: no %s values", path, bank)
	}
	return vals[bank], nil
}

func runEventlogDiff(e *env, args []string) error {
	fs := commandFlags(e, "eventlog diff")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(fs.Args()) != 2 {
		return usageErrorf("usage: glint eventlog diff OLD NEW (log files, or .json record files)")
	}
	old, err := loadLog(fs.Args()[0], "")
	if err != nil {
		return err
	}
	nw, err := loadLog(fs.Args()[1], "")
	if err != nil {
		return err
	}
	changes := eventlog.Diff(old, nw)
	if len(changes) == 0 {
		fmt.Fprintln(e.stdout, "no measured event differs")
		return nil
	}
	for _, c := range changes {
		fmt.Fprintln(e.stdout, printableLine(c.String()))
	}
	return &exitError{code: 1, err: fmt.Errorf("%d measured event(s) differ", len(changes))}
}
