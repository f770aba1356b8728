package loadtest

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/attest/store/storetest"
	"github.com/glint-boot/glint/internal/attest/wire"
)

// The server is killed with SIGKILL while devices enrol and report. After
// a restart on the same database: every enrolment and every report the
// server acknowledged is there, nothing is half-written (SQLite's
// integrity check; every reference resolves), and it answers again.
func TestCrashUnderLoad(t *testing.T) {
	const devices = 40
	f := NewFleet(t, 2, devices)
	fps, err := f.Fingerprints()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.URL(t, kind)
			s, err := store.Open(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, fp := range fps {
				s.Preregister(ctx, fp, "fleet", "test", time.Now())
			}
			if _, err := s.AddGolden(ctx, f.Golden(t, Model), "test", time.Now()); err != nil {
				t.Fatal(err)
			}
			s.Close()
			tlsDir := t.TempDir()
			srv := StartServer(t, db, tlsDir, 0, "--approve-preregistered", "--device-interval", "1ms")
			ep := srv.Endpoint()

			// Load: each machine's worker enrols its devices one by one and
			// has the enrolled ones report, as fast as the TPM allows.
			var mu sync.Mutex
			enrolled := map[int]bool{}
			reported := map[int]int{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range f.Machines {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					var mine []int
					for i := w; ; i += len(f.Machines) {
						select {
						case <-stop:
							return
						default:
						}
						if i < devices {
							c := f.client(ep, i)
							st, _, err := c.Enroll(ctx, f.identity(i))
							if err != nil {
								return
							}
							f.States[i] = st
							mu.Lock()
							enrolled[i] = true
							mu.Unlock()
							mine = append(mine, i)
						}
						d := mine[i%len(mine)]
						res, err := f.Report(ctx, ep, d)
						if err != nil {
							return
						}
						if res.Verdict != wire.Trusted {
							t.Errorf("device %d: %s", d, res.Summary)
							return
						}
						mu.Lock()
						reported[d]++
						mu.Unlock()
					}
				}(w)
			}
			// Let enrolments and reports overlap, then pull the plug.
			deadline := time.Now().Add(20 * time.Second)
			for {
				mu.Lock()
				n, r := len(enrolled), 0
				for _, c := range reported {
					r += c
				}
				mu.Unlock()
				if n >= devices/2 && r >= devices/2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			srv.Kill()
			close(stop)
			wg.Wait()
			mu.Lock()
			t.Logf("killed after %d acknowledged enrolments and %d acknowledged reports", len(enrolled), sum(reported))
			mu.Unlock()
			if len(enrolled) < 2 {
				t.Fatalf("only %d enrolments before the kill; the load did not run:\n%s", len(enrolled), srv.Log)
			}

			s, err = store.Open(ctx, db)
			if err != nil {
				t.Fatalf("the database does not open after the kill: %v", err)
			}
			defer s.Close()
			checkIntegrity(t, kind, db)
			for i := range enrolled {
				d, err := s.DeviceByID(ctx, f.States[i].DeviceID)
				if err != nil || d.Status != store.StatusApproved {
					t.Fatalf("device %d was acknowledged as enrolled, after the kill: %+v, %v", i, d, err)
				}
				hist, err := s.Reports(ctx, d.Row, 1000)
				if err != nil {
					t.Fatal(err)
				}
				var n int64
				for _, h := range hist {
					n += h.Count
				}
				if n < int64(reported[i]) {
					t.Fatalf("device %d: %d reports acknowledged, %d recorded", i, reported[i], n)
				}
				if reported[i] > 0 && d.LastReportID == 0 {
					t.Fatalf("device %d reported but its last report is not set", i)
				}
			}
			// It answers again, on the same key.
			srv2 := StartServer(t, db, tlsDir, 0, "--approve-preregistered", "--device-interval", "1ms")
			if srv2.Pin != srv.Pin {
				t.Fatal("the TLS key changed across the restart")
			}
			for i := range enrolled {
				res, err := f.Report(ctx, srv2.Endpoint(), i)
				if err != nil || res.Verdict != wire.Trusted {
					t.Fatalf("device %d after the restart: %v, %v", i, res, err)
				}
				break
			}
		})
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// checkIntegrity: SQLite's own integrity and foreign-key checks; on both,
// every device's last report exists and belongs to it.
func checkIntegrity(t *testing.T, kind, url string) {
	t.Helper()
	driver, dsn := "pgx", url
	if kind == "sqlite" {
		driver, dsn = "sqlite", "file:"+strings.TrimPrefix(url, "sqlite:")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if kind == "sqlite" {
		var res string
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
			t.Fatalf("integrity_check: %q, %v", res, err)
		}
		rows, err := db.Query(`PRAGMA foreign_key_check`)
		if err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Fatal("foreign_key_check found dangling rows")
		}
		rows.Close()
	}
	var dangling int
	if err := db.QueryRow(`SELECT COUNT(*) FROM devices d LEFT JOIN reports r ON r.id = d.last_report_id
		WHERE d.last_report_id IS NOT NULL AND (r.id IS NULL OR r.device <> d.id)`).Scan(&dangling); err != nil {
		t.Fatal(err)
	}
	if dangling != 0 {
		t.Fatalf("%d devices point at a missing report", dangling)
	}
}
