package loadtest

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/attest/store/storetest"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/tpm"
)

// The benchmarks of bench/attest.sh. They take minutes and are skipped
// unless GLINT_ATTEST_BENCH=1; the numbers go to the log (-v).

func benchOnly(t *testing.T) {
	if os.Getenv("GLINT_ATTEST_BENCH") == "" {
		t.Skip("set GLINT_ATTEST_BENCH=1 (bench/attest.sh) to run the attestation benchmarks")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestThroughput: reports per second through the server's whole report
// path (decode, token, signature, log parse and replay, appraisal, one
// database transaction) on SQLite and on PostgreSQL, side by side with the
// CPU limit: the signature check alone on the same quotes. Quotes are real
// (several swtpm, one AK per virtual device), made ahead of time so the
// TPMs' speed does not count; requests go to the handler in-process so TLS
// does not count either (the fleet test measures it).
func TestThroughput(t *testing.T) {
	benchOnly(t)
	devices := envInt("GLINT_BENCH_DEVICES", 400)
	rounds := envInt("GLINT_BENCH_ROUNDS", 5)
	f := NewFleet(t, 4, devices)
	fps, err := f.Fingerprints()
	if err != nil {
		t.Fatal(err)
	}
	workers := 2 * runtime.GOMAXPROCS(0)
	type row struct {
		name string
		n    int
		took time.Duration
	}
	var rows []row
	var sample []Prepared
	for _, kind := range storetest.Kinds {
		ctx := context.Background()
		s := storetest.Open(t, kind)
		for _, fp := range fps {
			s.Preregister(ctx, fp, "bench", "bench", time.Now())
		}
		s.AddGolden(ctx, f.Golden(t, Model), "bench", time.Now())
		srv, err := server.New(ctx, s, server.Config{ApprovePreregistered: true, Log: log.New(io.Discard, "", 0),
			ReportsPerDevice: server.Rate{Every: time.Microsecond, Burst: 1000}, RequestsPerClient: server.Rate{Every: time.Microsecond, Burst: 1 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewUnstartedServer(srv.Handler())
		ts.StartTLS()
		roots := x509.NewCertPool()
		roots.AddCert(ts.Certificate())
		start := time.Now()
		if err := f.Enroll(ctx, client.Endpoint{URL: ts.URL, Roots: roots}); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d devices enrolled through TLS in %s", kind, devices, time.Since(start).Round(time.Millisecond))
		h := srv.Handler()
		prepared, err := f.Prepare(ctx, rounds, func(id []byte) ([]byte, error) {
			rec := post(h, "/v1/challenge", (&wire.ChallengeRequest{DeviceID: id, Purpose: wire.PurposeReport}).Marshal())
			c, err := wire.DecodeChallenge(rec.Body.Bytes())
			if err != nil {
				return nil, fmt.Errorf("challenge: HTTP %d: %w", rec.Code, err)
			}
			return c.Token, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sample = prepared
		// Reports of one device go in order (tokens must increase), so each
		// worker takes whole devices.
		start = time.Now()
		var bad atomic.Int64
		run(workers, len(prepared), func(i int) {
			p := prepared[i]
			rec := post(h, "/v1/report", p.Body)
			if rec.Code != 200 {
				bad.Add(1)
				return
			}
			if r, err := wire.DecodeReportResult(rec.Body.Bytes()); err != nil || r.Verdict != wire.Trusted {
				bad.Add(1)
			}
		}, func(i int) int { return prepared[i].Device })
		took := time.Since(start)
		ts.Close()
		if bad.Load() > 0 {
			t.Fatalf("%s: %d of %d reports failed", kind, bad.Load(), len(prepared))
		}
		rows = append(rows, row{"report path, " + kind, len(prepared), took})
	}
	// The CPU limit: signature verification alone (decode + ECDSA verify of
	// the attest + PCR digest check), on the same reports.
	var akOf = map[int][]byte{}
	for i, st := range f.States {
		ak, _ := tpm.ParseAK(st.AK)
		akOf[i] = ak.Public
	}
	start := time.Now()
	var bad atomic.Int64
	run(workers, len(sample), func(i int) {
		req, err := wire.DecodeReportRequest(sample[i].Body)
		if err != nil {
			bad.Add(1)
			return
		}
		if _, _, err := attest.VerifyQuote(tpm.Version20, akOf[sample[i].Device], req); err != nil {
			bad.Add(1)
		}
	}, nil)
	rows = append(rows, row{"signature check alone", len(sample), time.Since(start)})
	if bad.Load() > 0 {
		t.Fatal("signature check failed on prepared reports")
	}
	limit := float64(rows[len(rows)-1].n) / rows[len(rows)-1].took.Seconds()
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nreport verification on %d cores, %d workers, %d devices x %d reports, real swtpm quotes, log of %d bytes:\n", runtime.GOMAXPROCS(0), workers, devices, rounds, len(f.Machines[0].Log()))
	fmt.Fprintf(&b, "%-28s %8s %10s %12s %8s\n", "what", "reports", "seconds", "reports/s", "vs limit")
	for _, r := range rows {
		rate := float64(r.n) / r.took.Seconds()
		fmt.Fprintf(&b, "%-28s %8d %10.2f %12.0f %7.0f%%\n", r.name, r.n, r.took.Seconds(), rate, 100*rate/limit)
	}
	fmt.Fprintf(&b, "needed for 10,000 devices every 5 minutes: 33 reports/s\n")
	t.Log(b.String())
}

// run calls fn(0..n-1) on workers goroutines; with key, items of one key
// stay in order on one worker.
func run(workers, n int, fn func(int), key func(int) int) {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				k := i
				if key != nil {
					k = key(i)
				}
				if k%workers == w {
					fn(i)
				}
			}
		}(w)
	}
	wg.Wait()
}

func post(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Content-Type", wire.ContentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestFleet10k: one server process (SQLite, TLS) with 10,000 enrolled
// devices reporting every 5 minutes (33.3 reports a second, each a
// challenge and a report over its own TLS connection), generated by
// swtpm-backed devices; the server's CPU time over the window says how
// much of the 2 cores it needs.
func TestFleet10k(t *testing.T) {
	benchOnly(t)
	devices := envInt("GLINT_BENCH_FLEET", 10000)
	window := time.Duration(envInt("GLINT_BENCH_WINDOW_S", 60)) * time.Second
	f := NewFleet(t, 4, devices)
	fps, err := f.Fingerprints()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db := storetest.URL(t, "sqlite")
	s, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, fp := range fps {
		s.Preregister(ctx, fp, "bench", "bench", time.Now())
	}
	s.AddGolden(ctx, f.Golden(t, Model), "bench", time.Now())
	s.Close()
	srv := StartServer(t, db, t.TempDir(), 0, "--approve-preregistered", "--client-rate", "100000")
	ep := srv.Endpoint()
	cpu0, _ := srv.CPUTime()
	start := time.Now()
	if err := f.Enroll(ctx, ep); err != nil {
		t.Fatalf("enrol: %v\n%s", err, srv.Log)
	}
	enrollTook := time.Since(start)
	cpu1, _ := srv.CPUTime()
	t.Logf("%d devices enrolled in %s (server CPU %s, %.2f ms per enrolment)", devices, enrollTook.Round(time.Second), cpu1-cpu0, float64((cpu1-cpu0).Microseconds())/1000/float64(devices))

	// 10,000 devices every 5 minutes: one report every 30 ms, each device at
	// most once in the window, as the timer spreads them.
	interval := 5 * time.Minute / time.Duration(devices)
	start = time.Now()
	var sent, failed atomic.Int64
	var latMu sync.Mutex
	var lat []time.Duration
	tick := time.NewTicker(interval)
	var wg sync.WaitGroup
	next := 0
	for time.Since(start) < window {
		<-tick.C
		i := next % devices
		next++
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t0 := time.Now()
			res, err := f.Report(ctx, ep, i)
			if err != nil || res.Verdict != wire.Trusted {
				failed.Add(1)
				return
			}
			sent.Add(1)
			latMu.Lock()
			lat = append(lat, time.Since(t0))
			latMu.Unlock()
		}(i)
	}
	tick.Stop()
	wg.Wait()
	took := time.Since(start)
	cpu2, _ := srv.CPUTime()
	cores := runtime.NumCPU()
	used := (cpu2 - cpu1).Seconds() / took.Seconds()
	slices.Sort(lat)
	p := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(q*float64(len(lat)-1))].Round(time.Millisecond)
	}
	t.Logf("\n10,000-device load: %d reports in %s (%.1f/s; %d failed), server CPU %.3f s = %.1f%% of one core, %.1f%% of %d cores; report latency p50 %s p99 %s (including the swtpm quote)",
		sent.Load(), took.Round(time.Second), float64(sent.Load())/took.Seconds(), failed.Load(), (cpu2 - cpu1).Seconds(), 100*used, 100*used/float64(cores), cores, p(0.5), p(0.99))
	if failed.Load() > 0 {
		t.Fatalf("%d reports failed:\n%s", failed.Load(), tail(srv.Log.String(), 2000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
