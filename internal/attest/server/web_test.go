package server_test

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/tpm"
)

func hexs(b []byte) string { return hex.EncodeToString(b) }

// admin is a logged-in browser-like HTTP client.
type admin struct {
	t    testing.TB
	r    *rig
	c    *http.Client
	csrf string
}

const testPassword = "correct horse battery staple"

func adminSession(t testing.TB, r *rig) *admin {
	t.Helper()
	if n, _ := r.store.AdminCount(ctx); n == 0 {
		h, err := server.HashPassword([]byte(testPassword))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.store.AddAdmin(ctx, "alice", h, false, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	jar, _ := cookiejar.New(nil)
	c := r.ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	a := &admin{t: t, r: r, c: c}
	rsp, err := c.PostForm(r.ts.URL+"/login", url.Values{"name": {"alice"}, "password": {testPassword}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: HTTP %d", rsp.StatusCode)
	}
	page := a.get("/", http.StatusOK)
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the fleet page")
	}
	a.csrf = m[1]
	return a
}

func (a *admin) get(path string, want int) string {
	a.t.Helper()
	rsp, err := a.c.Get(a.r.ts.URL + path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	if rsp.StatusCode != want {
		a.t.Fatalf("GET %s: HTTP %d, want %d: %s", path, rsp.StatusCode, want, b)
	}
	return string(b)
}

func (a *admin) post(path, form string, want int) string {
	a.t.Helper()
	if form != "" {
		form += "&"
	}
	form += "csrf=" + a.csrf
	rsp, err := a.c.Post(a.r.ts.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		a.t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	if rsp.StatusCode != want {
		a.t.Fatalf("POST %s: HTTP %d, want %d: %s", path, rsp.StatusCode, want, b)
	}
	return string(b)
}

func TestDashboardAuth(t *testing.T) {
	r := newRig(t, "sqlite", server.Config{})
	c := r.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// Every page needs a login.
	for _, p := range []string{"/", "/golden", "/enrollments", "/audit", "/devices/" + strings.Repeat("00", 32)} {
		rsp, err := c.Get(r.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(rsp.Header.Get("Location"), "/login") {
			t.Fatalf("GET %s without a session: HTTP %d to %q", p, rsp.StatusCode, rsp.Header.Get("Location"))
		}
	}
	a := adminSession(t, r)
	// Wrong password, and an unknown name, are refused alike.
	for _, form := range []url.Values{{"name": {"alice"}, "password": {"wrong password"}}, {"name": {"mallory"}, "password": {testPassword}}} {
		rsp, _ := r.ts.Client().PostForm(r.ts.URL+"/login", form)
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusUnauthorized || rsp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("bad login %v: HTTP %d, cookie %q", form, rsp.StatusCode, rsp.Header.Get("Set-Cookie"))
		}
	}
	// A form without the CSRF token does nothing.
	d, _ := r.store.Enroll(ctx, &store.Device{DeviceID: make([]byte, 32), EKFingerprint: "fp", EKPublic: []byte{1}, AKPublic: []byte{2},
		TPMVersion: 20, Hostname: "h", Model: "m"}, store.StatusPending, "test", time.Now())
	rsp, _ := a.c.Post(r.ts.URL+"/devices/"+hexs(d.DeviceID)+"/status", "application/x-www-form-urlencoded", strings.NewReader("status=approved"))
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without CSRF: HTTP %d", rsp.StatusCode)
	}
	if d2, _ := r.store.DeviceByRow(ctx, d.Row); d2.Status != store.StatusPending {
		t.Fatal("a POST without CSRF token changed the device")
	}
	a.post("/devices/"+hexs(d.DeviceID)+"/status", "status=approved", http.StatusSeeOther)
	if d2, _ := r.store.DeviceByRow(ctx, d.Row); d2.Status != store.StatusApproved || d2.StatusBy != "alice" {
		t.Fatalf("approve: %+v", d2)
	}
	if !strings.Contains(a.get("/audit", 200), "device row") {
		t.Fatal("the audit log does not show the approval")
	}
	// Logging out ends the session.
	a.post("/logout", "", http.StatusSeeOther)
	rsp, _ = a.c.Get(r.ts.URL + "/")
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: HTTP %d", rsp.StatusCode)
	}
}

func TestLoginRateLimit(t *testing.T) {
	r := newRig(t, "sqlite", server.Config{LoginsPerClient: server.Rate{Every: time.Hour, Burst: 3}})
	adminSession(t, r) // one login used
	codes := []int{}
	for i := 0; i < 4; i++ {
		rsp, _ := r.ts.Client().PostForm(r.ts.URL+"/login", url.Values{"name": {"alice"}, "password": {"guess" + strings.Repeat("x", i)}})
		rsp.Body.Close()
		codes = append(codes, rsp.StatusCode)
	}
	if codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Fatalf("login attempts answered %v, want the last one 429", codes)
	}
}

// A prediction made offline from a firmware image (glint rom predict
// --json, from the emulated laptop's coreboot ROM) imports as a golden set
// for the model the administrator names.
func TestImportPrediction(t *testing.T) {
	raw, err := os.ReadFile("testdata/predict-coreboot-tpm2.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.ParseGoldenFile(raw, "", ""); err == nil {
		t.Fatal("a prediction imported without naming the model")
	}
	g, err := server.ParseGoldenFile(raw, "QEMU q35", "")
	if err != nil {
		t.Fatal(err)
	}
	if g.Bank != tpm.SHA256 || len(g.PCRs) < 6 || g.Label != "out/coreboot-tpm2.rom" || len(g.Events) == 0 || !strings.Contains(g.Source, "predicted") {
		t.Fatalf("%+v", g)
	}
	for _, e := range g.Events {
		if e.Alg != tpm.SHA256 {
			t.Fatalf("a %s event in a sha256 set", e.Alg)
		}
	}
	if _, err := server.ParseGoldenFile([]byte(`{"model":"m","label":"l","bank":"sha256","pcrs":{"0":"00"}}`), "", ""); err == nil {
		t.Fatal("a PCR value of the wrong size was accepted")
	}
}
