package boot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
)

// Fleet attestation from the payload (owner configuration attest.*, see
// packages attest/settings and attest/client): before kexec glint brings the network up, quotes
// PCRs 0-7 over the server's challenge and sends the firmware log; the
// verdict is shown and kept in the journal. A network-bound disk key
// (glint disk seal --network) is completed with the server's half here,
// which the server releases only for a trusted quote.
//
// A report never blocks a boot by itself (a laptop in a train has no
// network); the disk key does: without the server's half a network-bound
// key cannot open the disk.

// attestation is this boot's attestation client, set up once.
type attestation struct {
	c        *client.Client
	st       *client.State
	err      error
	reported bool
}

// attestTimeout bounds the network bring-up and one exchange, so a machine
// whose server is down boots (or stops, with a network-bound key) within
// half a minute.
const attestTimeout = 30 * time.Second

func (f *Flow) attestClient() (*attestation, error) {
	if f.attest != nil {
		return f.attest, f.attest.err
	}
	a := &attestation{}
	f.attest = a
	if f.tpm == nil || f.Machine == nil {
		a.err = errors.New("no TPM (or no machine to bring the network up)")
		return a, a.err
	}
	at, err := client.AsTPM(f.tpm)
	if err != nil {
		a.err = err
		return a, err
	}
	st, err := client.StateFor(at, f.Config.Attest)
	if err != nil {
		a.err = err
		return a, err
	}
	ncfg, err := f.Config.Attest.NetConfig()
	if err != nil {
		a.err = err
		return a, err
	}
	ncfg.Timeout = attestTimeout
	f.Con.Printf("attestation: bringing the network up for %s\n", f.Config.Attest.Server)
	ctx, cancel := context.WithTimeout(context.Background(), attestTimeout)
	defer cancel()
	lease, err := f.Machine.NetworkUp(ctx, ncfg)
	if err != nil {
		a.err = fmt.Errorf("network: %w", err)
		return a, a.err
	}
	f.J.Logf("network: %s", lease)
	a.st = st
	a.c = &client.Client{Endpoint: client.Endpoint{URL: st.Server, Pin: st.Pin, Timeout: attestTimeout}, TPM: at}
	return a, nil
}

// evidence is the firmware log as read and the firmware's DMI name.
func (f *Flow) evidence() client.Evidence {
	ev := client.Evidence{Firmware: client.FirmwareLabel()}
	if f.Firmware == nil {
		f.J.Logf("attestation: no firmware log to send")
		return ev
	}
	log, err := f.Firmware.Log()
	if err != nil {
		f.J.Logf("attestation: no event log to send: %v", err)
	}
	ev.EventLog = log
	return ev
}

// showVerdict prints the server's verdict in a banner (green only for
// trusted) and its reasons.
func (f *Flow) showVerdict(server string, res *wire.ReportResult) {
	colour, title := red, "ATTESTATION: "+strings.ToUpper(res.Verdict.String())
	if res.Verdict == wire.Trusted {
		colour = green
		if len(f.problems) > 0 {
			// The server judged the measurements; it has not seen what
			// glint found on /boot or the disk. Not a green light.
			colour, title = yellow, title+" (measurements only: the problems above still stop this boot)"
		}
	}
	f.Con.Banner(colour, title)
	f.Con.Printf("attestation server %s: %s\n", server, client.Printable(res.Summary))
	f.J.Logf("attestation: %s", res.Verdict)
}

// reportOnce reports to the configured server, once per boot (a disk
// unlock that asked the server counts): before kexec, or when the machine
// stops at the menu with problems, so the fleet sees why it stopped.
func (f *Flow) reportOnce() {
	if !f.Config.Attest.Enabled() || (f.attest != nil && f.attest.reported) {
		return
	}
	a, err := f.attestClient()
	if err != nil {
		f.Con.Printf("attestation: no report to %s: %v\n", f.Config.Attest.Server, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), attestTimeout)
	defer cancel()
	res, err := a.c.Report(ctx, a.st, wire.PurposeReport, f.evidence())
	if err != nil {
		f.Con.Printf("attestation: no report to %s: %v\n", a.st.Server, err)
		return
	}
	a.reported = true
	f.showVerdict(a.st.Server, res)
}

// networkDiskKey completes a network-bound disk key: the server's half,
// released to this TPM after a trusted quote, combined with the sealed
// key. A record that is not network-bound passes through.
func (f *Flow) networkDiskKey(rec *seal.Record, sealedKey []byte) ([]byte, error) {
	server, deviceID, bound, err := sealed.NetworkBound(rec)
	if err != nil || !bound {
		return sealedKey, err
	}
	if server != f.Config.Attest.Server {
		return nil, fmt.Errorf("the disk key is bound to attestation server %s, but the owner configuration names %q (attest.server)", server, f.Config.Attest.Server)
	}
	a, err := f.attestClient()
	if err != nil {
		return nil, fmt.Errorf("the disk key needs attestation server %s: %w", server, err)
	}
	if string(a.st.DeviceID) != string(deviceID) {
		return nil, errors.New("this TPM's attestation key is not the one the disk key was bound with (TPM cleared or replaced?)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), attestTimeout)
	defer cancel()
	half, res, err := a.c.ServerHalf(ctx, a.st, false, f.evidence())
	a.reported = true // one attempt per boot: a dead server costs one timeout
	if res != nil {
		f.showVerdict(server, res)
	}
	if err != nil {
		return nil, fmt.Errorf("attestation server %s: %w", server, err)
	}
	defer secret.Wipe(half)
	return sealed.NetworkDiskKey(sealedKey, half, deviceID)
}
