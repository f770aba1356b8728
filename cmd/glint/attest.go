//go:build !payload

package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/hostcheck"
	"github.com/glint-boot/glint/internal/tpm"
)

// The device side of fleet attestation. The server verbs (serve, admin,
// golden, preregister) are in attest_server.go, compiled only into the
// server build (make server): its database drivers and dashboard must not
// grow the /init binary that has to fit in flash.

func init() {
	register(command{name: "attest ek", usage: "[--pem]",
		summary: "print this TPM's endorsement key fingerprint (to pre-register the machine) and certificate", run: runAttestEK})
	register(command{name: "attest enroll", usage: "--server URL [--pin sha256:HEX | --ca FILE] [--model M] [--firmware F]",
		summary: "enrol this machine's TPM with an attestation server (credential activation)", run: runAttestEnroll})
	register(command{name: "attest report", usage: "[--state FILE] [--eventlog FILE] [--host-checks FILE | --no-host-checks]",
		summary: "quote PCRs 0-7 with the event log and the host checks to the attestation server; exit 0 only if trusted", run: runAttestReport})
}

func endorserOf(dev tpm.TPM) (tpm.Endorser, error) {
	e, ok := dev.(tpm.Endorser)
	if !ok {
		return nil, fmt.Errorf("%s: no endorsement key support", dev.Version())
	}
	return e, nil
}

func runAttestEK(e *env, args []string) error {
	fs := commandFlags(e, "attest ek")
	asPEM := fs.Bool("pem", false, "print the EK certificate as PEM after the fingerprint")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dev, err := tpmCmdOpen(e)
	if err != nil {
		return err
	}
	defer dev.Close()
	en, err := endorserOf(dev)
	if err != nil {
		return err
	}
	ek, err := en.EK()
	if err != nil {
		return err
	}
	fp, err := ek.Fingerprint()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", fp)
	cert, err := ek.ParseCertificate()
	switch {
	case err == nil:
		fmt.Fprintf(e.stderr, "%s endorsement key; certificate issued by %s (serial %s)\n", dev.Version(), cert.Issuer, cert.SerialNumber)
		if *asPEM {
			pem.Encode(e.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
		}
	case ek.Certificate == nil:
		fmt.Fprintf(e.stderr, "%s endorsement key; the TPM holds no EK certificate (pre-register this fingerprint, or approve the machine by hand)\n", dev.Version())
	default:
		fmt.Fprintf(e.stderr, "%s endorsement key; its certificate is unusable: %v\n", dev.Version(), err)
	}
	return nil
}

// machineModel is "vendor product (version)" from DMI, the key golden
// measurements are kept under.
func machineModel() string {
	m := strings.TrimSpace(client.DMI("sys_vendor") + " " + client.DMI("product_name"))
	if v := client.DMI("product_version"); v != "" && v != "None" && !strings.Contains(m, v) {
		m += " " + v
	}
	if m == "" {
		return "unknown model"
	}
	return m
}

func endpointFlags(fs interface {
	String(string, string, string) *string
}) (server, pin, ca *string) {
	return fs.String("server", "", "the attestation server, https://HOST[:PORT]"),
		fs.String("pin", "", "trust the server's own key: sha256:HEX as glint attest serve printed it"),
		fs.String("ca", "", "trust servers whose certificate chains to this CA (PEM file) instead of the system's")
}

func loadRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pool, nil
}

func runAttestEnroll(e *env, args []string) error {
	fs := commandFlags(e, "attest enroll")
	server, pin, ca := endpointFlags(fs)
	statePath := fs.String("state", client.DefaultStatePath, "where to keep the enrolment")
	hostname := fs.String("hostname", "", "the name the dashboard shows (default: this machine's host name)")
	model := fs.String("model", "", "the model golden measurements are kept under (default: DMI vendor and product)")
	firmware := fs.String("firmware", "", "the firmware image's name (default: DMI BIOS vendor, version and date)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" {
		return usageErrorf("attest enroll needs --server https://HOST[:PORT]")
	}
	roots, err := loadRoots(*ca)
	if err != nil {
		return err
	}
	id := client.Identity{Hostname: *hostname, Model: *model, Firmware: *firmware}
	if id.Hostname == "" {
		id.Hostname, _ = os.Hostname()
	}
	if id.Model == "" {
		id.Model = machineModel()
	}
	if id.Firmware == "" {
		id.Firmware = client.FirmwareLabel()
	}
	dev, err := tpmCmdOpen(e)
	if err != nil {
		return err
	}
	defer dev.Close()
	at, err := client.AsTPM(dev)
	if err != nil {
		return err
	}
	c := &client.Client{Endpoint: client.Endpoint{URL: strings.TrimRight(*server, "/"), Pin: *pin, Roots: roots}, TPM: at}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, enrolled, err := c.Enroll(ctx, id)
	if err != nil {
		return err
	}
	st.CAFile = *ca
	if err := st.Save(*statePath); err != nil {
		return fmt.Errorf("enrolled, but saving %s failed: %w", *statePath, err)
	}
	fmt.Fprintf(e.stdout, "device %x enrolled with %s: %s\n%s\n", st.DeviceID, st.Server, enrolled.Status, enrolled.Message)
	return nil
}

func runAttestReport(e *env, args []string) error {
	fs := commandFlags(e, "attest report")
	statePath := fs.String("state", client.DefaultStatePath, "the enrolment glint attest enroll saved")
	logFile := fs.String("eventlog", "", "send this event log file instead of the firmware's (tests)")
	checksFile := fs.String("host-checks", "", "send this JSON (from glint host check --json) instead of running the host checks")
	noChecks := fs.Bool("no-host-checks", false, "send no host checks")
	firmware := fs.String("firmware", "", "the firmware image's name (default: DMI BIOS vendor, version and date)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, err := client.LoadState(*statePath)
	if err != nil {
		return err
	}
	roots, err := loadRoots(st.CAFile)
	if err != nil {
		return err
	}
	ev := osEvidence(e, *firmware)
	if *logFile != "" {
		if ev.EventLog, err = os.ReadFile(*logFile); err != nil {
			return err
		}
	}
	switch {
	case *checksFile != "":
		if ev.HostChecks, err = os.ReadFile(*checksFile); err != nil {
			return err
		}
	case !*noChecks:
		// The platform lock checks as the OS sees them (glint host check):
		// the dashboard shows them beside the verdict.
		if ev.HostChecks, err = hostcheck.Run(hostcheck.System(), hostcheck.PhaseOS).JSON(); err != nil {
			return err
		}
	}
	dev, err := tpmCmdOpen(e)
	if err != nil {
		return err
	}
	defer dev.Close()
	at, err := client.AsTPM(dev)
	if err != nil {
		return err
	}
	c := &client.Client{Endpoint: client.Endpoint{URL: st.Server, Pin: st.Pin, Roots: roots}, TPM: at}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.Report(ctx, st, wire.PurposeReport, ev)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, client.Printable(res.Summary))
	if res.Verdict != wire.Trusted {
		return &exitError{code: 1, err: errors.New("the attestation server's verdict is " + res.Verdict.String())}
	}
	return nil
}

// osEvidence is what a report from the running OS carries besides the
// quote: the firmware log and the firmware's name.
func osEvidence(e *env, firmware string) client.Evidence {
	ev := client.Evidence{Firmware: firmware}
	if ev.Firmware == "" {
		ev.Firmware = client.FirmwareLabel()
	}
	var err error
	if ev.EventLog, err = client.ReadEventLog(eventlog.SecurityFSLog, eventlog.DevMem); err != nil {
		fmt.Fprintf(e.stderr, "glint: no event log to send (%v); the server can judge the PCRs but not name events\n", err)
	}
	return ev
}

// serverHalf fetches the attestation server's half of a network-bound disk
// key for glint disk seal --network (created on first use), with the
// enrolment saved at statePath.
func serverHalf(e *env, dev tpm.TPM, statePath string) ([]byte, *client.State, error) {
	st, err := client.LoadState(statePath)
	if err != nil {
		return nil, nil, err
	}
	roots, err := loadRoots(st.CAFile)
	if err != nil {
		return nil, nil, err
	}
	at, err := client.AsTPM(dev)
	if err != nil {
		return nil, nil, err
	}
	c := &client.Client{Endpoint: client.Endpoint{URL: st.Server, Pin: st.Pin, Roots: roots}, TPM: at}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	half, res, err := c.ServerHalf(ctx, st, true, osEvidence(e, ""))
	if err != nil {
		if res != nil {
			fmt.Fprintln(e.stderr, client.Printable(res.Summary))
		}
		return nil, nil, err
	}
	return half, st, nil
}
