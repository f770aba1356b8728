//go:build !payload

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/secret"
)

func init() {
	register(command{name: "disk seal", usage: "[--pin] [--name MAPPER] [--passphrase-file F] DEVICE",
		summary: "add a TPM-sealed unlock key to a LUKS keyslot of DEVICE", run: runDiskSeal})
	register(command{name: "disk unseal", usage: "[--pin] [--out FILE] [DEVICE]",
		summary: "measure the LUKS header, unseal the disk key and test it (recovery, tests)", run: runDiskUnseal})
}

// maxSecretFile caps a passphrase or PIN file.
const maxSecretFile = 64 << 10

// readSecretLine reads one line (a passphrase or PIN) from a file or stdin.
func readSecretLine(e *env, file, prompt string) ([]byte, error) {
	if file != "" {
		b, err := safefile.ReadCapped(file, maxSecretFile)
		if err != nil {
			return nil, err
		}
		return bytes.TrimRight(b, "\r\n"), nil
	}
	fmt.Fprint(e.stderr, prompt)
	s := bufio.NewScanner(e.stdin)
	if !s.Scan() {
		return nil, errors.New("no input for " + strings.TrimSpace(prompt))
	}
	return bytes.Clone(s.Bytes()), nil
}

func runDiskSeal(e *env, args []string) error {
	fs := commandFlags(e, "disk seal")
	withPIN := fs.Bool("pin", false, "also require a PIN (TPM authorisation value) to unseal")
	pinFile := fs.String("pin-file", "", "read the PIN from this file instead of asking")
	name := fs.String("name", "", "device-mapper name the OS expects (default luks-<uuid>)")
	passFile := fs.String("passphrase-file", "", "an existing LUKS passphrase, read from this file instead of asking")
	profile := fs.String("profile", "", "platform profile (default: detected)")
	network := fs.Bool("network", false, "network-bound: the key also needs the attestation server's half, released only after a trusted quote (glint attest enroll first)")
	attestState := fs.String("attest-state", client.DefaultStatePath, "the enrolment glint attest enroll saved (with --network)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint disk seal [--pin] [--network] DEVICE")
	}
	if *network && (*withPIN || *pinFile != "") {
		return usageErrorf("a network-bound disk key is for unattended machines: --network and --pin do not go together")
	}
	s, t, err := sealableState(e, *profile)
	if err != nil {
		return err
	}
	defer t.Close()
	pass, err := readSecretLine(e, *passFile, "Existing LUKS passphrase: ")
	if err != nil {
		return err
	}
	defer secret.Wipe(pass)
	var pin []byte
	if *withPIN || *pinFile != "" {
		if pin, err = readSecretLine(e, *pinFile, "New disk unlock PIN: "); err != nil {
			return err
		}
		defer secret.Wipe(pin)
	}
	var rec *seal.Record
	if *network {
		half, st, err := serverHalf(e, t, *attestState)
		if err != nil {
			return err
		}
		defer secret.Wipe(half)
		rec, err = s.SealNetworkDisk(fs.Arg(0), pass, *name, half, st.DeviceID, st.Server)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "network-bound: the key also needs %s's half, released to this TPM after a trusted quote\n", st.Server)
	} else if rec, err = s.SealDisk(fs.Arg(0), pass, pin, *name); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "disk unlock key sealed: LUKS UUID %s, keyslot %s, PCRs %v (PCR 4 and 6 predicted), PIN %v\n",
		rec.Extra["uuid"], rec.Extra["slot"], rec.PCRList(), rec.PIN)
	return nil
}

func runDiskUnseal(e *env, args []string) error {
	fs := commandFlags(e, "disk unseal")
	withPIN := fs.Bool("pin", false, "ask for the PIN")
	pinFile := fs.String("pin-file", "", "read the PIN from this file")
	out := fs.String("out", "", "write the key to this file (mode 0400); default: only test it against the volume")
	profile := fs.String("profile", "", "platform profile (default: detected)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, t, err := sealedState(e, *profile)
	if err != nil {
		return err
	}
	defer t.Close()
	var pin []byte
	if *withPIN || *pinFile != "" {
		if pin, err = readSecretLine(e, *pinFile, "Disk unlock PIN: "); err != nil {
			return err
		}
		defer secret.Wipe(pin)
	}
	key, err := s.UnsealDiskOn(fs.Arg(0), pin)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer secret.Wipe(key)
	if *out != "" {
		return os.WriteFile(*out, key, 0o400)
	}
	dev := fs.Arg(0)
	if dev == "" {
		fmt.Fprintf(e.stdout, "disk key unsealed (%d bytes)\n", len(key))
		return nil
	}
	if err := luks.TestKey(dev, key); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("the unsealed key does not open %s: %w", dev, err)}
	}
	fmt.Fprintf(e.stdout, "disk key unsealed and opens %s\n", dev)
	return nil
}
