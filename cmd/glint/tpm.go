package main

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "pcrs", summary: "print the TPM's PCRs (one line per PCR and bank)",
		usage: "[--bank sha1|sha256|sha384|all]", run: runPCRs})
	register(command{name: "tpm info", summary: "show TPM version, vendor, PCR banks and dictionary-attack state",
		run: runTPMInfo})
	register(command{name: "tpm extend", summary: "measure STRING into PCR (for tests and recovery; changes what unseals)",
		usage: "PCR STRING", run: runTPMExtend})
	register(command{name: "tpm random", summary: "print N random bytes from the TPM as hex",
		usage: "N", run: runTPMRandom})
}

func tpmCmdOpen(e *env) (tpm.TPM, error) {
	dev, err := tpm.Open(e.tpmSpec)
	if err != nil {
		return nil, fmt.Errorf("%w (choose another with --tpm or GLINT_TPM)", err)
	}
	return dev, nil
}

func runPCRs(e *env, args []string) error {
	fs := commandFlags(e, "pcrs")
	bankFlag := fs.String("bank", "all", "bank to print: sha1, sha256, sha384, sha512 or all active banks")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("pcrs takes no arguments")
	}
	dev, err := tpmCmdOpen(e)
	if err != nil {
		return err
	}
	defer dev.Close()
	active, err := dev.Banks()
	if err != nil {
		return err
	}
	banks := active
	if *bankFlag != "all" {
		b, err := tpm.ParseAlg(*bankFlag)
		if err != nil {
			return usageErrorf("--bank: %v, or all", err)
		}
		found := false
		for _, a := range active {
			found = found || a == b
		}
		if !found {
			return fmt.Errorf("the TPM has no active %s bank (active: %v)", b, active)
		}
		banks = []tpm.Alg{b}
	}
	all := make([]int, 24)
	for i := range all {
		all[i] = i
	}
	for _, b := range banks {
		vals, err := dev.ReadPCRs(b, all)
		if err != nil {
			return err
		}
		for _, i := range all {
			fmt.Fprintf(e.stdout, "PCR[%2d] %-6s %s\n", i, b, hex.EncodeToString(vals[i]))
		}
	}
	return nil
}

func runTPMInfo(e *env, args []string) error {
	fs := commandFlags(e, "tpm info")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dev, err := tpmCmdOpen(e)
	if err != nil {
		return err
	}
	defer dev.Close()
	info, err := dev.Info()
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "version:       %s\n", info.Version)
	fmt.Fprintf(w, "manufacturer:  %s\n", info.Manufacturer)
	if info.Firmware != "" {
		fmt.Fprintf(w, "firmware:      %s\n", info.Firmware)
	}
	names := make([]string, len(info.Banks))
	for i, b := range info.Banks {
		names[i] = b.String()
	}
	fmt.Fprintf(w, "PCR banks:     %s\n", strings.Join(names, ", "))
	if info.Version == tpm.Version12 {
		fmt.Fprintf(w, "owner:         %v\n", info.Owned)
		return nil
	}
	state := "not locked out"
	if info.LockedOut {
		state = "LOCKED OUT: PIN-protected secrets refuse to unseal until the recovery time passes"
	}
	fmt.Fprintf(w, "lockout:       %s (%d of %d failed tries; one forgiven every %d s)\n",
		state, info.LockoutCounter, info.MaxTries, info.RecoverySeconds)
	return nil
}

func runTPMExtend(e *env, args []string) error {
	fs := commandFlags(e, "tpm extend")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErrorf("usage: glint tpm extend PCR STRING")
	}
	pcr, err := strconv.Atoi(fs.Arg(0))
	if err != nil || pcr < 0 || pcr > 23 {
		return usageErrorf("PCR must be a number 0..23, not %q", fs.Arg(0))
	}
	dev, err := tpmCmdOpen(e)
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := dev.Extend(pcr, []byte(fs.Arg(1))); err != nil {
		return err
	}
	banks, err := dev.Banks()
	if err != nil {
		return err
	}
	for _, b := range banks {
		v, err := dev.ReadPCRs(b, []int{pcr})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "PCR[%2d] %-6s %s\n", pcr, b, hex.EncodeToString(v[pcr]))
	}
	return nil
}

func runTPMRandom(e *env, args []string) error {
	fs := commandFlags(e, "tpm random")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint tpm random N")
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if err != nil || n < 1 || n > 4096 {
		return usageErrorf("N must be a number of bytes 1..4096, not %q", fs.Arg(0))
	}
	dev, err := tpmCmdOpen(e)
	if err != nil {
		return err
	}
	defer dev.Close()
	b, err := dev.Random(n)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, hex.EncodeToString(b))
	return nil
}
