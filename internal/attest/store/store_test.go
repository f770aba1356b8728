package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/attest/store/storetest"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

var ctx = context.Background()

func device(n byte) *store.Device {
	return &store.Device{DeviceID: bytes.Repeat([]byte{n}, 32), EKFingerprint: string(rune('a'+n)) + "ek", EKPublic: []byte{1, n},
		AKPublic: []byte{2, n}, TPMVersion: 20, Hostname: "host", Model: "QEMU q35", Firmware: "fw"}
}

// Every test runs on both databases: the same behaviour is the promise.
func forEach(t *testing.T, f func(t *testing.T, s *store.Store)) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { f(t, storetest.Open(t, kind)) })
	}
}

func TestEnrol(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		now := time.Now()
		d, err := s.Enroll(ctx, device(1), store.StatusPending, "enrolment", now)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.StatusPending || d.Row == 0 {
			t.Fatalf("stored %+v", d)
		}
		if err := s.SetStatus(ctx, d.Row, store.StatusApproved, "alice", now); err != nil {
			t.Fatal(err)
		}
		// The same TPM and AK again: nothing changes (still approved).
		again, err := s.Enroll(ctx, device(1), store.StatusPending, "enrolment", now)
		if err != nil || again.Status != store.StatusApproved || again.Row != d.Row {
			t.Fatalf("re-enrolment with the same AK: %+v, %v", again, err)
		}
		// The same TPM with a new AK: the new key needs approval.
		nd := device(1)
		nd.AKPublic, nd.DeviceID = []byte{9, 9}, bytes.Repeat([]byte{7}, 32)
		re, err := s.Enroll(ctx, nd, store.StatusPending, "enrolment", now)
		if err != nil || re.Status != store.StatusPending || re.Row != d.Row {
			t.Fatalf("re-enrolment with a new AK: %+v, %v", re, err)
		}
		if _, err := s.DeviceByID(ctx, device(1).DeviceID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the old AK still names a device: %v", err)
		}
		if err := s.SetStatus(ctx, 999999, store.StatusApproved, "alice", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("status of a missing device: %v", err)
		}
		audit, err := s.Audit(ctx, 10)
		if err != nil || len(audit) != 3 || audit[0].Action != "re-enrol" || audit[1].Actor != "alice" {
			t.Fatalf("audit %+v, %v", audit, err)
		}
	})
}

func report(dev int64, verdict string, fp byte) *store.Report {
	return &store.Report{Device: dev, Purpose: "report", Verdict: verdict, Bank: 11, PCRs: `{"0":"00"}`, Differences: "{}",
		Summary: verdict, LogSHA256: []byte{fp}, HostChecks: "", Fingerprint: []byte{fp}}
}

func TestReports(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		now := time.Now()
		d, _ := s.Enroll(ctx, device(2), store.StatusApproved, "policy", now)
		id1, err := s.RecordReport(ctx, report(d.Row, "trusted", 1), 100, []byte("log one"), now)
		if err != nil {
			t.Fatal(err)
		}
		// The same token again is a replay, refused and not recorded.
		if _, err := s.RecordReport(ctx, report(d.Row, "changed", 2), 100, nil, now); !errors.Is(err, store.ErrReplay) {
			t.Fatalf("replayed token: %v", err)
		}
		if _, err := s.RecordReport(ctx, report(d.Row, "changed", 2), 99, nil, now); !errors.Is(err, store.ErrReplay) {
			t.Fatalf("older token: %v", err)
		}
		// An identical report folds into the first row.
		id2, err := s.RecordReport(ctx, report(d.Row, "trusted", 1), 101, []byte("log one"), now.Add(time.Minute))
		if err != nil || id2 != id1 {
			t.Fatalf("identical report: id %d (first %d), %v", id2, id1, err)
		}
		// A change is a new row.
		id3, err := s.RecordReport(ctx, report(d.Row, "changed", 3), 102, []byte("log two"), now.Add(2*time.Minute))
		if err != nil || id3 == id1 {
			t.Fatalf("changed report: id %d, %v", id3, err)
		}
		hist, err := s.Reports(ctx, d.Row, 10)
		if err != nil || len(hist) != 2 || hist[0].Verdict != "changed" || hist[1].Count != 2 || !hist[1].LastAt.Equal(time.Unix(0, now.Add(time.Minute).UnixNano())) {
			t.Fatalf("history %+v, %v", hist, err)
		}
		dev, _ := s.DeviceByRow(ctx, d.Row)
		if dev.LastVerdict != "changed" || dev.LastReportID != id3 || dev.LastTokenAt != 102 {
			t.Fatalf("device after reports: %+v", dev)
		}
		if b, err := s.EventLog(ctx, []byte{3}); err != nil || string(b) != "log two" {
			t.Fatalf("stored log: %q, %v", b, err)
		}
		st, err := s.Stats(ctx, now.Add(time.Hour))
		if err != nil || st.Devices[store.StatusApproved] != 1 || st.Verdicts["changed"] != 1 || st.Stale != 1 || st.Reports != 2 {
			t.Fatalf("stats %+v, %v", st, err)
		}
		stale, err := s.StaleDevices(ctx, now.Add(time.Hour), 10)
		if err != nil || len(stale) != 1 {
			t.Fatalf("stale %v, %v", stale, err)
		}
	})
}

// Two replicas answering the same device's reports at once: exactly one
// of two reports with the same token is accepted.
func TestReplayRace(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		d, _ := s.Enroll(ctx, device(3), store.StatusApproved, "policy", time.Now())
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.RecordReport(ctx, report(d.Row, "trusted", 1), 500, nil, time.Now()); err == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				} else if !errors.Is(err, store.ErrReplay) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if accepted != 1 {
			t.Fatalf("%d of 8 identical-token reports accepted, want 1", accepted)
		}
	})
}

func TestGoldenAndKeys(t *testing.T) {
	forEach(t, func(t *testing.T, s *store.Store) {
		now := time.Now()
		g := &attest.Golden{Model: "QEMU q35", Label: "coreboot 4.15", Bank: tpm.SHA256, PCRs: map[int][]byte{0: make([]byte, 32), 2: bytes.Repeat([]byte{2}, 32)},
			Events: []eventlog.EventRecord{{PCR: 2, Type: eventlog.EvCorebootMeasurement, Description: "FMAP: FMAP", Alg: tpm.SHA256, Digest: bytes.Repeat([]byte{0xe2}, 32)}}, Source: "test"}
		id, err := s.AddGolden(ctx, g, "alice", now)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := s.Goldens(ctx, "QEMU q35")
		if err != nil || len(gs) != 1 || gs[0].ID != id || !bytes.Equal(gs[0].PCRs[2], g.PCRs[2]) || len(gs[0].Events) != 1 || gs[0].Bank != tpm.SHA256 {
			t.Fatalf("goldens %+v, %v", gs, err)
		}
		if gs, _ := s.Goldens(ctx, "another model"); len(gs) != 0 {
			t.Fatal("golden set returned for another model")
		}
		if err := s.DeleteGolden(ctx, id, "alice", now); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteGolden(ctx, id, "alice", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		k1, err := s.ServerKey(ctx, "tokens", 32)
		if err != nil {
			t.Fatal(err)
		}
		k2, _ := s.ServerKey(ctx, "tokens", 32)
		if !bytes.Equal(k1, k2) || len(k1) != 32 {
			t.Fatal("server key changed between calls")
		}
		if err := s.AddAdmin(ctx, "alice", "hash1", false, now); err != nil {
			t.Fatal(err)
		}
		if err := s.AddAdmin(ctx, "alice", "hash2", false, now); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate admin: %v", err)
		}
		a, _ := s.AdminByName(ctx, "alice")
		if err := s.CreateSession(ctx, []byte("tokhash"), a.ID, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.SessionAdmin(ctx, []byte("tokhash"), now); err != nil || got.Name != "alice" {
			t.Fatalf("session: %+v, %v", got, err)
		}
		if _, err := s.SessionAdmin(ctx, []byte("tokhash"), now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session still valid: %v", err)
		}
		// Changing the password ends sessions.
		s.AddAdmin(ctx, "alice", "hash2", true, now)
		if _, err := s.SessionAdmin(ctx, []byte("tokhash"), now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session survived a password change: %v", err)
		}
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			url := storetest.URL(t, kind)
			s, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			s.Enroll(ctx, device(4), store.StatusApproved, "policy", time.Now())
			s.Close()
			s, err = store.Open(ctx, url)
			if err != nil {
				t.Fatalf("reopen (migrations must be idempotent): %v", err)
			}
			defer s.Close()
			if _, err := s.DeviceByID(ctx, device(4).DeviceID); err != nil {
				t.Fatalf("device lost across reopen: %v", err)
			}
		})
	}
}
