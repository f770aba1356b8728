//go:build !payload

// The attest verbs are not in the payload build (cmd/glint/payload.go).

package main

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/attesttest"
	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// The device verbs as an owner types them, against a real server (TLS,
// SQLite) and a real swtpm with an EK certificate: the fingerprint for
// pre-registration, enrolment, a report refused until an administrator
// approves the machine and its measurements, then trusted (exit 0).
func TestAttestCLI(t *testing.T) {
	m := attesttest.NewMachine(t, tpm.Version20)
	m.Boot(t, "image A")
	dir := t.TempDir()
	logFile := filepath.Join(dir, "eventlog.bin")
	if err := os.WriteFile(logFile, m.Log(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "attest.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv, err := server.New(ctx, s, server.Config{Log: log.New(io.Discard, "", 0), GoldenCache: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.StartTLS()
	defer ts.Close()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644)
	state := filepath.Join(dir, "attest.json")

	out, code := glintRun("--tpm", m.Spec, "attest", "ek")
	if code != 0 || !regexp.MustCompile(`(?m)^[0-9a-f]{64}$`).MatchString(out) || !strings.Contains(out, "certificate issued by") {
		t.Fatalf("attest ek: exit %d\n%s", code, out)
	}
	out, code = glintRun("--tpm", m.Spec, "attest", "enroll", "--server", ts.URL, "--ca", ca, "--state", state, "--model", "QEMU q35", "--firmware", "image A")
	if code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("attest enroll: exit %d\n%s", code, out)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	report := func() (string, int) {
		return glintRun("--tpm", m.Spec, "attest", "report", "--state", state, "--eventlog", logFile, "--no-host-checks", "--firmware", "image A")
	}
	out, code = report()
	if code != 1 || !strings.Contains(out, "not approved") {
		t.Fatalf("report before approval: exit %d\n%s", code, out)
	}
	st, err := client.LoadState(state)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.DeviceByID(ctx, st.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	s.SetStatus(ctx, d.Row, store.StatusApproved, "alice", time.Now())
	pcrs, err := m.TPM.ReadPCRs(tpm.SHA256, attest.QuotedPCRs)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := eventlog.Parse(m.Log())
	s.AddGolden(ctx, &attest.Golden{Model: "QEMU q35", Label: "image A", Bank: tpm.SHA256, PCRs: pcrs, Events: l.Records(tpm.SHA256), Source: "test"}, "alice", time.Now())
	out, code = report()
	if code != 0 || !strings.Contains(out, "trusted") {
		t.Fatalf("report after approval: exit %d\n%s", code, out)
	}
}
