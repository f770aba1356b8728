package boot

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// The payload reports to the attestation server the owner configuration
// names, before kexec, with the attestation key the OS enrolled: a real
// server (SQLite, TLS with the pinned key), a real swtpm that glint's
// set-up took (owner and lockout authorisations set, so the key must not
// need them). Not enrolled: the report is refused and the machine boots
// anyway. Enrolled and approved, no golden set: UNKNOWN. Its measurements
// approved: TRUSTED. Every boot reaches kexec. The network bring-up and
// the network-bound disk key run on the emulated laptop
// (e2e/attest_test.go).
func TestFlowAttestsBeforeKexec(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "attest.db"))
	must(t, err)
	defer st.Close()
	srv, err := server.New(ctx, st, server.Config{Log: log.New(io.Discard, "", 0), GoldenCache: time.Nanosecond,
		ReportsPerDevice: server.Rate{Every: time.Millisecond, Burst: 100}})
	must(t, err)
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.StartTLS()
	defer ts.Close()
	pin := client.PinOf(ts.Certificate())

	v := tpm.Version20
	b := newBench(t, v)
	b.ownerFiles = map[string][]byte{rom.OwnerConfigFile: []byte(fmt.Sprintf(
		"# report to the fleet's attestation server before kexec\nattest.server = %s\nattest.pin = %s\n", ts.URL, pin))}
	b.power(v, ownerPass+"\ny\n\n")

	boot := func(want string) string {
		t.Helper()
		kexecs := len(b.machine.kexecs)
		out := b.power(v, "")
		if !strings.Contains(out, want) || len(b.machine.kexecs) != kexecs+1 {
			t.Fatalf("want %q and a kexec (%d kexecs before, %d after):\n%s", want, kexecs, len(b.machine.kexecs), out)
		}
		return out
	}
	boot("attestation: no report to " + ts.URL)

	// The installed OS enrols, without the owner authorisation glint set.
	dev, err := tpm.Open(swtpmtest.StartDir(t, v, b.tpmDir))
	must(t, err)
	at, err := client.AsTPM(dev)
	must(t, err)
	c := &client.Client{Endpoint: client.Endpoint{URL: ts.URL, Pin: pin}, TPM: at}
	state, _, err := c.Enroll(ctx, client.Identity{Hostname: "flow-test", Model: "glint flow test", Firmware: "test"})
	dev.Close()
	must(t, err)
	d, err := st.DeviceByID(ctx, state.DeviceID)
	must(t, err)
	must(t, st.SetStatus(ctx, d.Row, store.StatusApproved, "alice", time.Now()))

	out := boot("ATTESTATION: UNKNOWN")
	if b.machine.networkUps == 0 {
		t.Fatalf("the flow reported without bringing the network up:\n%s", out)
	}
	// The administrator approves the boot-time measurements.
	reps, err := st.Reports(ctx, d.Row, 1)
	must(t, err)
	if len(reps) != 1 {
		t.Fatalf("%d reports stored, want 1", len(reps))
	}
	pcrs, err := store.DecodePCRs(reps[0].PCRs)
	must(t, err)
	_, err = st.AddGolden(ctx, &attest.Golden{Model: d.Model, Label: "glint flow test", Bank: tpm.Alg(reps[0].Bank), PCRs: pcrs, Source: "test"}, "alice", time.Now())
	must(t, err)
	boot("ATTESTATION: TRUSTED")

	// /boot tampered: the machine stops at the menu and still reports, so
	// the fleet sees it stopped; the server's TRUSTED (it judges the
	// measurements, not /boot) is not shown as a green light.
	kernel := filepath.Join(b.bootDir, "vmlinuz-6.1.0-test")
	orig, err := os.ReadFile(kernel)
	must(t, err)
	must(t, os.WriteFile(kernel, append(append([]byte(nil), orig...), "evil"...), 0o644))
	before, err := st.DeviceByID(ctx, state.DeviceID)
	must(t, err)
	kexecs := len(b.machine.kexecs)
	out = b.power(v, "")
	after, err := st.DeviceByID(ctx, state.DeviceID)
	must(t, err)
	if !strings.Contains(out, "PROBLEM(S) FOUND") || !strings.Contains(out, "ATTESTATION: TRUSTED (measurements only") ||
		len(b.machine.kexecs) != kexecs || !after.LastAttestedAt.After(before.LastAttestedAt) {
		t.Fatalf("tampered /boot: %d kexecs (want %d), last attested %s (before: %s):\n%s", len(b.machine.kexecs), kexecs, after.LastAttestedAt, before.LastAttestedAt, out)
	}
}
