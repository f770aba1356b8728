// Package client is the device side of glint attestation: it enrols the
// machine's TPM with an attestation server, reports quotes with the
// firmware event log, and fetches the server's half of a network-bound
// disk key. It runs from the installed OS (glint attest enroll / report,
// and the systemd timer in dist/systemd) and from glint's firmware payload
// before kexec, so it is kept small: the TPM verbs of package tpm, the
// messages of package wire, and a minimal HTTPS exchange (https.go).
//
//	c := &client.Client{Endpoint: client.Endpoint{URL: "https://attest.example:8443", Pin: pin}, TPM: dev}
//	st, enrolled, err := c.Enroll(ctx, client.Identity{Hostname: h, Model: m, Firmware: f})
//	safefile.Write(client.DefaultStatePath, st.Marshal(), 0o600)
//	...
//	res, err := c.Report(ctx, st, wire.PurposeReport, evidence)
//	fmt.Println(res.Verdict, res.Summary)
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/attest/settings"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/tpm"
)

// Client talks to one attestation server with one TPM.
type Client struct {
	Endpoint Endpoint
	TPM      TPM
}

// TPM is what the client needs of a TPM: every TPM package tpm opens has
// it (use AsTPM); the load generator's virtual devices have it too.
type TPM interface {
	Version() tpm.Version
	Banks() ([]tpm.Alg, error)
	Quote(ak *tpm.AK, bank tpm.Alg, pcrs []int, nonce []byte) (*tpm.Quote, error)
	tpm.Endorser
}

// AsTPM returns dev's attestation verbs.
func AsTPM(dev tpm.TPM) (TPM, error) {
	t, ok := dev.(TPM)
	if !ok {
		return nil, fmt.Errorf("%s cannot attest (no endorsement key support)", dev.Version())
	}
	return t, nil
}

// Identity is how the machine describes itself; the server treats it as a
// claim (only the TPM's keys are proven).
type Identity struct {
	Hostname string
	Model    string // DMI "vendor product", or the board name
	Firmware string // the firmware image's label
}

// Enroll proves to the server that a new attestation key lives in this
// TPM: it sends the EK (with its certificate) and the AK, activates the
// credential the server returns, and sends the secret back. The AK is
// labelled with the server URL, so each server sees a different key.
func (c *Client) Enroll(ctx context.Context, id Identity) (*State, *wire.Enrolled, error) {
	e := c.TPM
	ek, err := e.EK()
	if err != nil {
		return nil, nil, fmt.Errorf("read the endorsement key: %w", err)
	}
	ak, err := e.CreateLabeledAK([]byte(c.Endpoint.URL))
	if err != nil {
		return nil, nil, fmt.Errorf("create the attestation key: %w", err)
	}
	ident := wire.Identity{TPMVersion: uint8(c.TPM.Version()), EKPublic: ek.Public, EKCertificate: ek.Certificate, AKPublic: ak.Public,
		Hostname: clean(id.Hostname), Model: clean(id.Model), Firmware: clean(id.Firmware)}
	raw, err := c.Endpoint.Exchange(ctx, "/v1/enroll", (&wire.EnrollRequest{Identity: ident}).Marshal())
	if err != nil {
		return nil, nil, err
	}
	ch, err := wire.DecodeEnrollChallenge(raw)
	if err != nil {
		return nil, nil, err
	}
	secret, err := e.ActivateCredential(ak, &tpm.Credential{EKEncrypted: ch.Credential.EKEncrypted, Blob: ch.Credential.Blob})
	if err != nil {
		return nil, nil, fmt.Errorf("activate the server's credential: %w", err)
	}
	defer clear(secret)
	raw, err = c.Endpoint.Exchange(ctx, "/v1/activate", (&wire.ActivateRequest{Identity: ident, Token: ch.Token, Secret: secret}).Marshal())
	if err != nil {
		return nil, nil, err
	}
	done, err := wire.DecodeEnrolled(raw)
	if err != nil {
		return nil, nil, err
	}
	want := sha256.Sum256(ak.Public)
	if !bytes.Equal(done.DeviceID, want[:]) {
		return nil, nil, errors.New("the server enrolled another device ID than this attestation key's")
	}
	akBytes, err := ak.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	st := &State{Server: c.Endpoint.URL, Pin: c.Endpoint.Pin, DeviceID: done.DeviceID, TPM: int(c.TPM.Version()), AK: akBytes}
	return st, done, nil
}

// Evidence is what a report carries besides the quote.
type Evidence struct {
	EventLog   []byte // the firmware log as read (ReadEventLog)
	HostChecks []byte // JSON from glint host check, may be nil
	Firmware   string // the firmware image's label
}

// quoteBank picks the bank to quote: SHA-256 where the TPM has it, else
// SHA-1 (TPM 1.2, and TPM 2.0 parts shipped with only a SHA-1 bank).
func quoteBank(t TPM) (tpm.Alg, error) {
	banks, err := t.Banks()
	if err != nil {
		return 0, err
	}
	for _, want := range []tpm.Alg{tpm.SHA256, tpm.SHA1} {
		for _, b := range banks {
			if b == want {
				return b, nil
			}
		}
	}
	return 0, fmt.Errorf("the TPM has neither a sha256 nor a sha1 PCR bank (it has %v)", banks)
}

// Report asks for a challenge, quotes PCRs 0-7 over it and sends the quote
// with the evidence; the answer is the server's verdict.
func (c *Client) Report(ctx context.Context, st *State, purpose wire.Purpose, ev Evidence) (*wire.ReportResult, error) {
	ak, err := tpm.ParseAK(st.AK)
	if err != nil {
		return nil, err
	}
	raw, err := c.Endpoint.Exchange(ctx, "/v1/challenge", (&wire.ChallengeRequest{DeviceID: st.DeviceID, Purpose: purpose}).Marshal())
	if err != nil {
		return nil, err
	}
	ch, err := wire.DecodeChallenge(raw)
	if err != nil {
		return nil, err
	}
	bank, err := quoteBank(c.TPM)
	if err != nil {
		return nil, err
	}
	q, err := c.TPM.Quote(ak, bank, []int{0, 1, 2, 3, 4, 5, 6, 7}, wire.Nonce(ch.Token))
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	req := &wire.ReportRequest{DeviceID: st.DeviceID, Token: ch.Token, Purpose: purpose, Bank: uint16(bank),
		Attest: q.Attest, Signature: q.Signature, EventLog: ev.EventLog, HostChecks: ev.HostChecks, Firmware: clean(ev.Firmware)}
	for p, v := range q.PCRs {
		req.PCRs = append(req.PCRs, wire.PCRValue{Index: uint8(p), Value: v})
	}
	wire.SortPCRs(req.PCRs)
	raw, err = c.Endpoint.Exchange(ctx, "/v1/report", req.Marshal())
	if err != nil {
		return nil, err
	}
	return wire.DecodeReportResult(raw)
}

// ErrNoRelease: the server judged the report but did not release its half
// of the disk key; the result says why.
var ErrNoRelease = errors.New("the attestation server did not release its half of the disk key")

// ServerHalf reports with PurposeUnlock (PurposeUnlockSetup when setup: the
// server creates the half on first use) and opens the server's half of the
// disk key with the TPM. It is released only for a Trusted verdict.
func (c *Client) ServerHalf(ctx context.Context, st *State, setup bool, ev Evidence) ([]byte, *wire.ReportResult, error) {
	purpose := wire.PurposeUnlock
	if setup {
		purpose = wire.PurposeUnlockSetup
	}
	res, err := c.Report(ctx, st, purpose, ev)
	if err != nil {
		return nil, nil, err
	}
	if res.Credential == nil {
		return nil, res, fmt.Errorf("%w: %s", ErrNoRelease, res.Summary)
	}
	e := c.TPM
	ak, err := tpm.ParseAK(st.AK)
	if err != nil {
		return nil, res, err
	}
	half, err := e.ActivateCredential(ak, &tpm.Credential{EKEncrypted: res.Credential.EKEncrypted, Blob: res.Credential.Blob})
	if err != nil {
		return nil, res, fmt.Errorf("open the server's half of the disk key: %w", err)
	}
	return half, res, nil
}

// clean keeps a text field within the wire format's rules (one printable
// line, at most wire.MaxText bytes), so a long DMI string cannot make the
// server refuse the report.
func clean(s string) string {
	var b []byte
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			r = ' '
		}
		if len(b)+len(string(r)) > wire.MaxText {
			break
		}
		b = append(b, string(r)...)
	}
	return string(bytes.TrimSpace(b))
}

// StateFor is the enrolment state of a TPM 2.0 for the server in settings,
// derived rather than read from a file: the AK labelled with the server's
// URL is the same key glint attest enroll made from the OS, so the payload
// needs no state of its own. TPM 1.2 AIKs are random and live in their
// key blob, which the payload does not have.
func StateFor(t TPM, s settings.Settings) (*State, error) {
	if t.Version() != tpm.Version20 {
		return nil, errors.New("the payload attests with TPM 2.0 only (a TPM 1.2 AIK must be kept in a file glint enrolled from the OS)")
	}
	ak, err := t.CreateLabeledAK([]byte(s.Server))
	if err != nil {
		return nil, err
	}
	b, err := ak.MarshalBinary()
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256(ak.Public)
	return &State{Server: s.Server, Pin: s.Pin, DeviceID: id[:], TPM: int(tpm.Version20), AK: b}, nil
}
