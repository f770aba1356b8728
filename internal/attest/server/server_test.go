package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest/attesttest"
	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/attest/store/storetest"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/tpm"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

var ctx = context.Background()

// rig is a running server (real TLS on loopback) and its database.
type rig struct {
	t     testing.TB
	store *store.Store
	srv   *server.Server
	ts    *httptest.Server
	log   bytes.Buffer
}

func newRig(t testing.TB, kind string, cfg server.Config) *rig {
	t.Helper()
	r := &rig{t: t, store: storetest.Open(t, kind)}
	cfg.Log = log.New(&r.log, "", 0)
	srv, err := server.New(ctx, r.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	r.ts = httptest.NewUnstartedServer(srv.Handler())
	r.ts.StartTLS()
	t.Cleanup(r.ts.Close)
	return r
}

func (r *rig) endpoint() client.Endpoint {
	roots := x509.NewCertPool()
	roots.AddCert(r.ts.Certificate())
	return client.Endpoint{URL: r.ts.URL, Roots: roots, Timeout: 30 * time.Second}
}

func (r *rig) client(m *attesttest.Machine) *client.Client {
	t, err := client.AsTPM(m.TPM)
	if err != nil {
		r.t.Fatal(err)
	}
	return &client.Client{Endpoint: r.endpoint(), TPM: t}
}

// counts is what must not change when a request is refused.
func (r *rig) counts() [3]int64 {
	st, err := r.store.Stats(ctx, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, v := range st.Devices {
		n += v
	}
	devs, _ := r.store.Devices(ctx, "", 10000)
	var tokens int64
	for _, d := range devs {
		tokens += d.LastTokenAt
	}
	return [3]int64{int64(n), st.Reports, tokens}
}

func identity(m *attesttest.Machine) client.Identity {
	return client.Identity{Hostname: "laptop-" + m.Version().String(), Model: "QEMU q35 (emulated laptop)", Firmware: "coreboot 4.15 glint"}
}

func evidence(m *attesttest.Machine) client.Evidence {
	return client.Evidence{EventLog: m.Log(), HostChecks: []byte(`{"spi_locked":true}`), Firmware: "coreboot 4.15 glint"}
}

// The whole life of a device on both databases and both TPM families:
// enrol (credential activation), wait for approval, learn its measurements
// as golden, stay trusted, then a firmware change is caught and named.
func TestDeviceLife(t *testing.T) {
	for _, kind := range storetest.Kinds {
		for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
			t.Run(kind+"/"+v.String(), func(t *testing.T) {
				r := newRig(t, kind, server.Config{})
				m := attesttest.NewMachine(t, v)
				m.Boot(t, "image A")
				c := r.client(m)
				st, enrolled, err := c.Enroll(ctx, identity(m))
				if err != nil {
					t.Fatalf("enrol: %v", err)
				}
				if enrolled.Status != store.StatusPending || !strings.Contains(enrolled.Message, "administrator") {
					t.Fatalf("enrolled %+v, want pending", enrolled)
				}
				res, err := c.Report(ctx, st, wire.PurposeReport, evidence(m))
				if err != nil {
					t.Fatalf("report: %v", err)
				}
				if res.Verdict != wire.NotApproved {
					t.Fatalf("verdict before approval: %s", res.Verdict)
				}
				dev, err := r.store.DeviceByID(ctx, st.DeviceID)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.store.SetStatus(ctx, dev.Row, store.StatusApproved, "alice", time.Now()); err != nil {
					t.Fatal(err)
				}
				res, err = c.Report(ctx, st, wire.PurposeReport, evidence(m))
				if err != nil || res.Verdict != wire.Unknown {
					t.Fatalf("verdict with no golden set: %v, %v", res, err)
				}
				learn(t, r, st.DeviceID, "image A")
				res, err = c.Report(ctx, st, wire.PurposeReport, evidence(m))
				if err != nil || res.Verdict != wire.Trusted {
					t.Fatalf("verdict after learning: %+v, %v", res, err)
				}
				// Reboot into another firmware image: new TPM, same keys.
				m2 := reboot(t, m)
				m2.Boot(t, "image B (tampered)")
				c2 := r.client(m2)
				res, err = c2.Report(ctx, st, wire.PurposeReport, evidence(m2))
				if err != nil {
					t.Fatal(err)
				}
				if res.Verdict != wire.Changed || !strings.Contains(res.Summary, "PCR 2") || !strings.Contains(res.Summary, `PCR 2: "FMAP: COREBOOT CBFS: fallback/payload" changed`) {
					t.Fatalf("tampered firmware: verdict %s\n%s", res.Verdict, res.Summary)
				}
				hist, _ := r.store.Reports(ctx, dev.Row, 10)
				if len(hist) != 4 || hist[0].Verdict != "changed" {
					t.Fatalf("history: %d rows, newest %q", len(hist), hist[0].Verdict)
				}
			})
		}
	}
}

// reboot power-cycles the machine's swtpm (PCRs reset, keys kept).
func reboot(t *testing.T, m *attesttest.Machine) *attesttest.Machine {
	t.Helper()
	return attesttest.Reboot(t, m)
}

// learn approves the device's latest report as its model's golden set,
// through the dashboard's own code path.
func learn(t testing.TB, r *rig, deviceID []byte, label string) {
	t.Helper()
	a := adminSession(t, r)
	a.post("/devices/"+hexs(deviceID)+"/learn", "label="+label, http.StatusSeeOther)
}

func TestForgedRequestsChangeNothing(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t, kind, server.Config{})
			m := attesttest.NewMachine(t, tpm.Version20)
			m.Boot(t, "image A")
			c := r.client(m)
			st, _, err := c.Enroll(ctx, identity(m))
			if err != nil {
				t.Fatal(err)
			}
			dev, _ := r.store.DeviceByID(ctx, st.DeviceID)
			r.store.SetStatus(ctx, dev.Row, store.StatusApproved, "alice", time.Now())
			good := goodReport(t, r, m, st)

			other := attesttest.NewMachine(t, tpm.Version20)
			other.Boot(t, "image A")
			otherAK, _ := other.TPM.(tpm.Endorser).CreateLabeledAK([]byte("x"))

			cases := map[string]struct {
				mutate func(*wire.ReportRequest)
				status int
			}{
				"altered PCR value":     {func(q *wire.ReportRequest) { q.PCRs[2].Value[0] ^= 1 }, 401},
				"altered attest":        {func(q *wire.ReportRequest) { q.Attest[len(q.Attest)-1] ^= 1 }, 401},
				"another token":         {func(q *wire.ReportRequest) { q.Token = freshToken(t, r, st.DeviceID) }, 401},
				"forged token":          {func(q *wire.ReportRequest) { q.Token[30] ^= 1 }, 401},
				"token for another use": {func(q *wire.ReportRequest) { q.Purpose = wire.PurposeUnlock }, 401},
				"unknown device":        {func(q *wire.ReportRequest) { q.DeviceID = bytes.Repeat([]byte{1}, 32) }, 403},
				"PCR 7 left out":        {func(q *wire.ReportRequest) { q.PCRs = q.PCRs[:7] }, 401},
				"quote by another TPM": {func(q *wire.ReportRequest) {
					nq, err := other.TPM.Quote(otherAK, tpm.SHA256, []int{0, 1, 2, 3, 4, 5, 6, 7}, wire.Nonce(q.Token))
					if err != nil {
						t.Fatal(err)
					}
					q.Attest, q.Signature = nq.Attest, nq.Signature
				}, 401},
			}
			before := r.counts()
			for name, tc := range cases {
				q := cloneReport(good)
				tc.mutate(q)
				status, _ := r.postRaw(t, "/v1/report", q.Marshal())
				if status != tc.status {
					t.Errorf("%s: HTTP %d, want %d", name, status, tc.status)
				}
			}
			for name, body := range map[string][]byte{
				"garbage":              []byte("GET / HTTP/1.1\r\n\r\n"),
				"truncated":            good.Marshal()[:100],
				"enrol with no secret": (&wire.ActivateRequest{Identity: wire.Identity{TPMVersion: 20, EKPublic: []byte{1}, AKPublic: []byte{2}}, Token: []byte{1}, Secret: make([]byte, 32)}).Marshal(),
			} {
				for _, path := range []string{"/v1/report", "/v1/activate", "/v1/enroll"} {
					if status, _ := r.postRaw(t, path, body); status < 400 {
						t.Errorf("%s to %s: HTTP %d", name, path, status)
					}
				}
			}
			if after := r.counts(); after != before {
				t.Fatalf("refused requests changed the database: %v -> %v", before, after)
			}
			// The genuine report is accepted once; its replay is refused.
			if status, _ := r.postRaw(t, "/v1/report", good.Marshal()); status != 200 {
				t.Fatalf("genuine report: HTTP %d", status)
			}
			mid := r.counts()
			if status, _ := r.postRaw(t, "/v1/report", good.Marshal()); status != http.StatusConflict {
				t.Fatalf("replayed report: HTTP %d, want 409", status)
			}
			if after := r.counts(); after != mid {
				t.Fatalf("a replay changed the database: %v -> %v", mid, after)
			}
		})
	}
}

// An enrolment whose credential was activated by another TPM (the AK is
// not in the EK's TPM) is refused and stores nothing.
func TestEnrolmentNeedsTheSameTPM(t *testing.T) {
	r := newRig(t, "sqlite", server.Config{})
	victim := attesttest.NewMachine(t, tpm.Version20)
	attacker := attesttest.NewDistinctMachine(t, tpm.Version20)
	vek, _ := victim.TPM.(tpm.Endorser).EK()
	ak, _ := attacker.TPM.(tpm.Endorser).CreateLabeledAK(nil)
	id := wire.Identity{TPMVersion: 20, EKPublic: vek.Public, EKCertificate: vek.Certificate, AKPublic: ak.Public, Hostname: "evil", Model: "m"}
	_, raw := r.postRaw(t, "/v1/enroll", (&wire.EnrollRequest{Identity: id}).Marshal())
	ch, err := wire.DecodeEnrollChallenge(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The attacker's TPM cannot open a credential made for the victim's EK.
	if _, err := attacker.TPM.(tpm.Endorser).ActivateCredential(ak, &tpm.Credential{EKEncrypted: ch.Credential.EKEncrypted, Blob: ch.Credential.Blob}); err == nil {
		t.Fatal("another TPM activated the credential")
	}
	// Guessing the secret fails.
	guess := make([]byte, 32)
	rand.Read(guess)
	status, _ := r.postRaw(t, "/v1/activate", (&wire.ActivateRequest{Identity: id, Token: ch.Token, Secret: guess}).Marshal())
	if status != http.StatusUnauthorized {
		t.Fatalf("guessed secret: HTTP %d", status)
	}
	if c := r.counts(); c[0] != 0 {
		t.Fatal("a device was stored")
	}
}

func TestAutoApproval(t *testing.T) {
	m := attesttest.NewMachine(t, tpm.Version20)
	t.Run("EK certificate chain", func(t *testing.T) {
		r := newRig(t, "sqlite", server.Config{EKRoots: []*x509.Certificate{m.CA.Root}, EKIntermediates: []*x509.Certificate{m.CA.Intermediate}})
		_, e, err := r.client(m).Enroll(ctx, identity(m))
		if err != nil || e.Status != store.StatusApproved {
			t.Fatalf("%+v, %v", e, err)
		}
		d, _ := r.store.DeviceByID(ctx, e.DeviceID)
		if !strings.Contains(d.StatusBy, "EK certificate") {
			t.Fatalf("approved by %q", d.StatusBy)
		}
	})
	t.Run("pre-registered EK", func(t *testing.T) {
		r := newRig(t, "sqlite", server.Config{ApprovePreregistered: true})
		ek, _ := m.TPM.(tpm.Endorser).EK()
		fp, _ := ek.Fingerprint()
		if _, e, _ := r.client(m).Enroll(ctx, identity(m)); e.Status != store.StatusPending {
			t.Fatal("approved before pre-registration")
		}
		r.store.Preregister(ctx, fp, "asset 1042", "alice", time.Now())
		// Enrolling again (same AK) keeps the stored status; a fresh server
		// label gives a new AK, which pre-registration approves.
		c := r.client(m)
		c.Endpoint.URL += "/"
		_, e, err := c.Enroll(ctx, identity(m))
		if err != nil || e.Status != store.StatusApproved {
			t.Fatalf("%+v, %v", e, err)
		}
	})
	t.Run("untrusted CA", func(t *testing.T) {
		r := newRig(t, "sqlite", server.Config{EKRoots: []*x509.Certificate{unrelatedCA(t)}})
		_, e, err := r.client(m).Enroll(ctx, identity(m))
		if err != nil || e.Status != store.StatusPending {
			t.Fatalf("%+v, %v", e, err)
		}
	})
}

func TestUnlock(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			key := make([]byte, 32)
			rand.Read(key)
			r := newRig(t, kind, server.Config{UnlockKey: key, ReportsPerDevice: server.Rate{Every: time.Millisecond, Burst: 100}})
			m := attesttest.NewMachine(t, tpm.Version20)
			m.Boot(t, "image A")
			c := r.client(m)
			st, _, err := c.Enroll(ctx, identity(m))
			if err != nil {
				t.Fatal(err)
			}
			dev, _ := r.store.DeviceByID(ctx, st.DeviceID)
			// Not approved: nothing released.
			if _, _, err := c.ServerHalf(ctx, st, true, evidence(m)); !errors.Is(err, client.ErrNoRelease) {
				t.Fatalf("unapproved device: %v", err)
			}
			r.store.SetStatus(ctx, dev.Row, store.StatusApproved, "alice", time.Now())
			c.Report(ctx, st, wire.PurposeReport, evidence(m))
			learn(t, r, st.DeviceID, "image A")
			half, res, err := c.ServerHalf(ctx, st, true, evidence(m))
			if err != nil || len(half) != 32 || res.Verdict != wire.Trusted {
				t.Fatalf("setup: %x, %+v, %v", half, res, err)
			}
			again, _, err := c.ServerHalf(ctx, st, false, evidence(m))
			if err != nil || !bytes.Equal(again, half) {
				t.Fatalf("unlock gave another half: %x vs %x (%v)", again, half, err)
			}
			setupAgain, _, _ := c.ServerHalf(ctx, st, true, evidence(m))
			if !bytes.Equal(setupAgain, half) {
				t.Fatal("a second setup replaced the half")
			}
			// Tampered firmware: the verdict is changed, nothing released.
			m2 := attesttest.Reboot(t, m)
			m2.Boot(t, "image B")
			if _, res, err := r.client(m2).ServerHalf(ctx, st, false, evidence(m2)); !errors.Is(err, client.ErrNoRelease) || res.Verdict != wire.Changed {
				t.Fatalf("tampered: %v", err)
			}
			// Revoked: nothing released even with good measurements.
			m3 := attesttest.Reboot(t, m2)
			m3.Boot(t, "image A")
			r.store.SetStatus(ctx, dev.Row, store.StatusRevoked, "alice", time.Now())
			if _, _, err := r.client(m3).ServerHalf(ctx, st, false, evidence(m3)); !errors.Is(err, client.ErrNoRelease) {
				t.Fatalf("revoked: %v", err)
			}
		})
	}
}

// A hostile enrolled device sends the largest log the wire allows, made
// of the smallest events, with a genuine quote: the server must answer in
// well under a second (the log is parsed once, replayed once, never diffed
// quadratically).
func TestHostileLogIsCheap(t *testing.T) {
	r := newRig(t, "sqlite", server.Config{})
	m := attesttest.NewMachine(t, tpm.Version20)
	m.Boot(t, "image A")
	c := r.client(m)
	st, _, err := c.Enroll(ctx, identity(m))
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := r.store.DeviceByID(ctx, st.DeviceID)
	r.store.SetStatus(ctx, dev.Row, store.StatusApproved, "alice", time.Now())
	c.Report(ctx, st, wire.PurposeReport, evidence(m))
	learn(t, r, st.DeviceID, "image A")
	// Crypto-agile events with no digests at all: 16 bytes each.
	log := m.Log()
	for len(log)+16 <= wire.MaxEventLog {
		log = append(log, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	q := goodReport(t, r, m, st)
	q.EventLog = log
	start := time.Now()
	status, body := r.postRaw(t, "/v1/report", q.Marshal())
	took := time.Since(start)
	t.Logf("a 1 MiB log of %d events: HTTP %d in %s", (len(log)-len(m.Log()))/16, status, took)
	if status != 200 {
		t.Fatalf("HTTP %d: %s", status, body)
	}
	res, _ := wire.DecodeReportResult(body)
	if res.Verdict != wire.Trusted || !strings.Contains(res.Summary, "more than") {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
	}
	if took > 2*time.Second {
		t.Fatalf("one hostile report took %s", took)
	}
}

// After its quote verified, a device is held to its own rate: the report
// past the burst is refused and not recorded.
func TestDeviceRateLimit(t *testing.T) {
	r := newRig(t, "sqlite", server.Config{ReportsPerDevice: server.Rate{Every: time.Hour, Burst: 2}})
	m := attesttest.NewMachine(t, tpm.Version20)
	m.Boot(t, "image A")
	c := r.client(m)
	st, _, err := c.Enroll(ctx, identity(m))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Report(ctx, st, wire.PurposeReport, evidence(m)); err != nil {
			t.Fatal(err)
		}
	}
	before := r.counts()
	_, err = c.Report(ctx, st, wire.PurposeReport, evidence(m))
	var se *client.ServerError
	if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests {
		t.Fatalf("third report: %v, want HTTP 429", err)
	}
	if r.counts() != before {
		t.Fatal("a rate-limited report was recorded")
	}
}

func goodReport(t testing.TB, r *rig, m *attesttest.Machine, st *client.State) *wire.ReportRequest {
	t.Helper()
	ak, err := tpm.ParseAK(st.AK)
	if err != nil {
		t.Fatal(err)
	}
	token := freshToken(t, r, st.DeviceID)
	bank := tpm.SHA256
	if m.Version() == tpm.Version12 {
		bank = tpm.SHA1
	}
	q, err := m.TPM.Quote(ak, bank, []int{0, 1, 2, 3, 4, 5, 6, 7}, wire.Nonce(token))
	if err != nil {
		t.Fatal(err)
	}
	req := &wire.ReportRequest{DeviceID: st.DeviceID, Token: token, Purpose: wire.PurposeReport, Bank: uint16(bank),
		Attest: q.Attest, Signature: q.Signature, EventLog: m.Log(), Firmware: "coreboot 4.15 glint"}
	for p, v := range q.PCRs {
		req.PCRs = append(req.PCRs, wire.PCRValue{Index: uint8(p), Value: v})
	}
	wire.SortPCRs(req.PCRs)
	return req
}

func cloneReport(q *wire.ReportRequest) *wire.ReportRequest {
	c, err := wire.DecodeReportRequest(q.Marshal())
	if err != nil {
		panic(err)
	}
	return c
}

func freshToken(t testing.TB, r *rig, deviceID []byte) []byte {
	t.Helper()
	_, raw := r.postRaw(t, "/v1/challenge", (&wire.ChallengeRequest{DeviceID: deviceID, Purpose: wire.PurposeReport}).Marshal())
	ch, err := wire.DecodeChallenge(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Token
}

func (r *rig) postRaw(t testing.TB, path string, body []byte) (int, []byte) {
	t.Helper()
	rsp, err := r.ts.Client().Post(r.ts.URL+path, wire.ContentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return rsp.StatusCode, b
}

func unrelatedCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unrelated CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}
