package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest/loadtest"
	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/attest/wire"
)

// The dashboard in a real browser (Debian's chromium, driven through
// chromedriver's W3C WebDriver endpoint): an administrator logs in, sees
// the fleet with a changed and a silent machine on top, opens the changed
// machine's report (PCR and event differences), approves a machine from the
// enrolment queue by clicking, and looks at the golden sets. With
// GLINT_SCREENSHOTS=DIR the pages are saved there (docs/images is where the
// docs take them from).

type webDriver struct {
	t    *testing.T
	base string
	sess string
}

func (w *webDriver) call(method, path string, body any) map[string]any {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer rsp.Body.Close()
	var out map[string]any
	json.NewDecoder(rsp.Body).Decode(&out)
	if rsp.StatusCode != 200 {
		w.t.Fatalf("webdriver %s %s: HTTP %d %v", method, path, rsp.StatusCode, out)
	}
	return out
}

func (w *webDriver) s(path string) string { return "/session/" + w.sess + path }

func (w *webDriver) open(url string) { w.call("POST", w.s("/url"), map[string]string{"url": url}) }

func (w *webDriver) find(css string) string {
	w.t.Helper()
	v := w.call("POST", w.s("/element"), map[string]string{"using": "css selector", "value": css})["value"].(map[string]any)
	for _, id := range v {
		return id.(string)
	}
	w.t.Fatalf("no element %q", css)
	return ""
}

func (w *webDriver) typeIn(css, text string) {
	w.call("POST", w.s("/element/"+w.find(css)+"/value"), map[string]string{"text": text})
}

func (w *webDriver) click(css string) {
	w.call("POST", w.s("/element/"+w.find(css)+"/click"), map[string]any{})
}

func (w *webDriver) source() string { return w.call("GET", w.s("/source"), nil)["value"].(string) }

func (w *webDriver) url() string { return w.call("GET", w.s("/url"), nil)["value"].(string) }

// waitFor polls until ok holds. A click returns once the browser has
// dispatched it, not when the form it submitted has been answered and the
// next page loaded; on a busy machine (two cores shared with QEMU boots)
// that takes a while, so every check after a click waits for its page.
func (w *webDriver) waitFor(what string, ok func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			w.t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sourceWith waits for the page to contain want and returns it.
func (w *webDriver) sourceWith(want string) string {
	w.t.Helper()
	var page string
	w.waitFor(fmt.Sprintf("the page at %s lacks %q", w.url(), want), func() bool {
		page = w.source()
		return strings.Contains(page, want)
	})
	return page
}

func (w *webDriver) screenshot(name string) {
	w.t.Helper()
	dir := os.Getenv("GLINT_SCREENSHOTS")
	if dir == "" {
		dir = w.t.TempDir()
	}
	png, err := base64.StdEncoding.DecodeString(w.call("GET", w.s("/screenshot"), nil)["value"].(string))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		w.t.Fatalf("screenshot %s: not a PNG (%v)", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func startBrowser(t *testing.T) *webDriver {
	t.Helper()
	for _, p := range []string{"chromium", "chromedriver"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (apt-get install chromium chromium-driver); skipping the browser test", p)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("chromedriver", "--port="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	w := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	for i := 0; ; i++ {
		if rsp, err := http.Get(w.base + "/status"); err == nil {
			rsp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal("chromedriver did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The flags that work on this kind of machine (see the environment
	// notes): no sandbox as root, and no background networking.
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir(), "--window-size=1280,860", "--ignore-certificate-errors",
		"--hide-scrollbars", "--force-device-scale-factor=1"}
	v := w.call("POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome", "acceptInsecureCerts": true,
		"goog:chromeOptions": map[string]any{"binary": "/usr/bin/chromium", "args": args}}}})["value"].(map[string]any)
	w.sess = v["sessionId"].(string)
	t.Cleanup(func() { w.call("DELETE", w.s(""), nil) })
	return w
}

func TestDashboardInBrowser(t *testing.T) {
	w := startBrowser(t)
	r := newRig(t, "sqlite", server.Config{ApprovePreregistered: true, StaleAfter: 10 * time.Minute,
		ReportsPerDevice: server.Rate{Every: time.Millisecond, Burst: 100}})
	names := []string{"berlin-dev-01", "berlin-dev-02", "lab-build-07", "hq-fin-03", "hq-fin-04", "field-x230-11", "field-x230-12", "reception-01"}
	f := loadtest.NewFleet(t, 2, len(names))
	f.Hostname = func(i int) string { return names[i] }
	fps, err := f.Fingerprints()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, fp := range fps {
		if i != 7 { // reception-01 waits for an administrator
			r.store.Preregister(ctx, fp, "flashing station", "alice", time.Now())
		}
	}
	r.store.AddGolden(ctx, f.Golden(t, loadtest.Model), "alice", time.Now())
	ep := r.endpoint()
	for i := range names {
		if err := f.EnrollOne(ctx, ep, i); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ { // field-x230-12 never reports
		if _, err := f.Report(ctx, ep, i); err != nil {
			t.Fatal(err)
		}
	}
	// Machine 1 (devices 1, 3, 5, 7) boots other firmware; field-x230-11
	// (device 5) reports it.
	f.Reboot(t, 1, "coreboot 4.15 glint (rebuilt by someone else)")
	res, err := f.Report(ctx, ep, 5)
	if err != nil || res.Verdict != wire.Changed {
		t.Fatalf("tampered machine: %v, %v", res, err)
	}
	h, _ := server.HashPassword([]byte(testPassword))
	r.store.AddAdmin(ctx, "alice", h, false, time.Now())

	w.open(r.ts.URL + "/")
	if !strings.Contains(w.url(), "/login") {
		t.Fatalf("not sent to the login page: %s", w.url())
	}
	w.screenshot("attest-login.png")
	w.typeIn("input[name=name]", "alice")
	w.typeIn("input[name=password]", testPassword)
	w.click("form button")
	page := w.sourceWith("field-x230-11")
	for _, want := range []string{"field-x230-11", "changed", "field-x230-12", "stopped", "reception-01", "berlin-dev-01"} {
		if !strings.Contains(page, want) {
			t.Fatalf("fleet page lacks %q", want)
		}
	}
	// Problems first: the changed machine heads the table.
	if strings.Index(page, "field-x230-11") > strings.Index(page, "berlin-dev-01") {
		t.Fatal("the changed machine is not listed first")
	}
	w.screenshot("attest-fleet.png")

	w.open(r.ts.URL + "/devices/" + hexs(f.States[5].DeviceID))
	w.screenshot("attest-device.png")
	w.click("table.history a")
	page = w.sourceWith("differs")
	if !strings.Contains(page, "differs") || !strings.Contains(page, "fallback/payload") {
		t.Fatal("the report page does not show the PCR and event differences")
	}
	w.screenshot("attest-report.png")

	w.open(r.ts.URL + "/enrollments")
	w.screenshot("attest-enrollments.png")
	w.click("td.actions button.good")
	var d *store.Device
	w.waitFor("clicking Approve did not approve reception-01", func() bool {
		d, _ = r.store.DeviceByID(ctx, f.States[7].DeviceID)
		return d != nil && d.Status == store.StatusApproved
	})
	if d.StatusBy != "alice" {
		t.Fatalf("clicking Approve: approved by %q, want alice", d.StatusBy)
	}
	w.open(r.ts.URL + "/golden")
	w.sourceWith("load test")
	w.screenshot("attest-golden.png")
}
