package loadtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/attesttest"
	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// Fleet is some swtpm machines, booted alike, and the virtual devices
// spread over them.
type Fleet struct {
	Machines []*attesttest.Machine
	tpms     []*TPM
	Devices  []*Device
	States   []*client.State // after Enroll
	// Hostname names device i (default vdev-NNNNN).
	Hostname func(i int) string
}

// Image is the firmware every fleet machine boots.
const Image = "coreboot 4.15 glint (load test)"

// NewFleet starts machines swtpms and spreads devices over them.
func NewFleet(t testing.TB, machines, devices int) *Fleet {
	t.Helper()
	f := &Fleet{}
	for i := 0; i < machines; i++ {
		m := attesttest.NewMachine(t, tpm.Version20)
		m.Boot(t, Image)
		tp, err := OpenTPM(m.Spec)
		if err != nil {
			t.Fatal(err)
		}
		f.Machines = append(f.Machines, m)
		f.tpms = append(f.tpms, tp)
	}
	for n := 0; n < devices; n++ {
		f.Devices = append(f.Devices, f.tpms[n%machines].Device(n))
	}
	f.States = make([]*client.State, devices)
	return f
}

// machineOf is the machine device i lives on.
func (f *Fleet) machineOf(i int) *attesttest.Machine { return f.Machines[i%len(f.Machines)] }

// Evidence is what device i reports.
func (f *Fleet) Evidence(i int) client.Evidence {
	return client.Evidence{EventLog: f.machineOf(i).Log(), Firmware: Image, HostChecks: []byte(`{"phase":"os","checks":[]}`)}
}

// Golden is the golden set every fleet machine matches.
func (f *Fleet) Golden(t testing.TB, model string) *attest.Golden {
	t.Helper()
	m := f.Machines[0]
	pcrs, err := m.TPM.ReadPCRs(tpm.SHA256, attest.QuotedPCRs)
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Parse(m.Log())
	if err != nil {
		t.Fatal(err)
	}
	return &attest.Golden{Model: model, Label: Image, Bank: tpm.SHA256, PCRs: pcrs, Events: l.Records(tpm.SHA256), Source: "load test"}
}

// Fingerprints are the devices' EK fingerprints, to pre-register.
func (f *Fleet) Fingerprints() ([]string, error) {
	out := make([]string, len(f.Devices))
	err := f.each(context.Background(), func(ctx context.Context, i int) error {
		ek, err := f.Devices[i].EK()
		if err != nil {
			return err
		}
		out[i], err = ek.Fingerprint()
		return err
	})
	return out, err
}

// each runs fn for every device, one worker per machine (a TPM does one
// thing at a time), and returns the first error.
func (f *Fleet) each(ctx context.Context, fn func(ctx context.Context, i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(f.tpms))
	for w := range f.tpms {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(f.Devices); i += len(f.tpms) {
				if ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					errs <- fmt.Errorf("device %d: %w", i, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Model is the model every virtual device claims.
const Model = "QEMU q35 (load test)"

func (f *Fleet) client(ep client.Endpoint, i int) *client.Client {
	return &client.Client{Endpoint: ep, TPM: f.Devices[i]}
}

func (f *Fleet) identity(i int) client.Identity {
	name := fmt.Sprintf("vdev-%05d", i)
	if f.Hostname != nil {
		name = f.Hostname(i)
	}
	return client.Identity{Hostname: name, Model: Model, Firmware: Image}
}

// EnrollOne enrols device i.
func (f *Fleet) EnrollOne(ctx context.Context, ep client.Endpoint, i int) error {
	st, _, err := f.client(ep, i).Enroll(ctx, f.identity(i))
	f.States[i] = st
	return err
}

// Enroll enrols every device with the server at ep.
func (f *Fleet) Enroll(ctx context.Context, ep client.Endpoint) error {
	return f.each(ctx, func(ctx context.Context, i int) error {
		st, _, err := f.client(ep, i).Enroll(ctx, f.identity(i))
		f.States[i] = st
		return err
	})
}

// Report has device i report once; the result is the server's verdict.
func (f *Fleet) Report(ctx context.Context, ep client.Endpoint, i int) (*wire.ReportResult, error) {
	return f.client(ep, i).Report(ctx, f.States[i], wire.PurposeReport, f.Evidence(i))
}

// Prepared is a report made ahead of time: a real quote over a real
// server token, ready to be sent (tokens stay valid for 5 minutes).
type Prepared struct {
	Device int
	Body   []byte
}

// Prepare makes one report per device (n rounds), fetching tokens from
// challenge (a function so benchmarks can call the handler directly).
func (f *Fleet) Prepare(ctx context.Context, rounds int, challenge func(deviceID []byte) ([]byte, error)) ([]Prepared, error) {
	out := make([][]Prepared, len(f.Devices))
	err := f.each(ctx, func(ctx context.Context, i int) error {
		st := f.States[i]
		ak, err := tpm.ParseAK(st.AK)
		if err != nil {
			return err
		}
		for r := 0; r < rounds; r++ {
			token, err := challenge(st.DeviceID)
			if err != nil {
				return err
			}
			q, err := f.Devices[i].Quote(ak, tpm.SHA256, attest.QuotedPCRs, wire.Nonce(token))
			if err != nil {
				return err
			}
			ev := f.Evidence(i)
			req := &wire.ReportRequest{DeviceID: st.DeviceID, Token: token, Purpose: wire.PurposeReport, Bank: uint16(tpm.SHA256),
				Attest: q.Attest, Signature: q.Signature, EventLog: ev.EventLog, HostChecks: ev.HostChecks, Firmware: ev.Firmware}
			for p, v := range q.PCRs {
				req.PCRs = append(req.PCRs, wire.PCRValue{Index: uint8(p), Value: v})
			}
			wire.SortPCRs(req.PCRs)
			out[i] = append(out[i], Prepared{Device: i, Body: req.Marshal()})
			// Tokens of one device must be issued in order of use; the
			// clock's resolution is fine, but be sure.
			time.Sleep(time.Microsecond)
		}
		return nil
	})
	// Interleave: round 0 of every device, then round 1, ...
	var flat []Prepared
	for r := 0; r < rounds; r++ {
		for i := range out {
			if r < len(out[i]) {
				flat = append(flat, out[i][r])
			}
		}
	}
	return flat, err
}

// Reboot power-cycles machine w and boots image on it: its devices keep
// their keys and report the new measurements.
func (f *Fleet) Reboot(t testing.TB, w int, image string) {
	t.Helper()
	m := attesttest.Reboot(t, f.Machines[w])
	m.Boot(t, image)
	tp, err := OpenTPM(m.Spec)
	if err != nil {
		t.Fatal(err)
	}
	f.tpms[w].mu.Lock()
	f.tpms[w].t = tp.t
	f.tpms[w].mu.Unlock()
	f.Machines[w] = m
}
