package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"time"
)

// Report is one row of a device's history: a verdict and what it rests on,
// seen Count times from FirstAt to LastAt.
type Report struct {
	ID          int64
	Device      int64
	FirstAt     time.Time
	LastAt      time.Time
	Count       int64
	Purpose     string
	Verdict     string
	Bank        int
	PCRs        string // JSON {"0":"hex",...}
	GoldenID    int64  // 0: none
	Differences string // JSON (attest.PCRDiff / EventDiff lists)
	Summary     string
	LogSHA256   []byte
	EventCount  int
	HostChecks  string
	Firmware    string
	// Fingerprint identifies the content (not the time) of a report, so an
	// identical successor folds into this row.
	Fingerprint []byte
}

// ErrReplay: the report's token is not newer than the device's last
// accepted one (a replayed or reordered report).
var ErrReplay = errors.New("this challenge was already answered (a replayed report); ask for a new challenge")

// RecordReport stores a verified report in one transaction: it claims the
// token (accepted only if issued after the device's last accepted token,
// so a replayed report is refused even by another replica), stores the
// event log if it is new, appends the report to the device's history or
// folds it into the previous row when nothing changed, and updates the
// device's last result. It returns the report row's ID.
func (s *Store) RecordReport(ctx context.Context, r *Report, tokenIssued int64, rawLog []byte, now time.Time) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET last_token_at = ? WHERE id = ? AND last_token_at < ?`), tokenIssued, r.Device, tokenIssued)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrReplay
		}
		var lastID sql.NullInt64
		var lastFP []byte
		err = tx.QueryRowContext(ctx, s.q(`SELECT id, fingerprint FROM reports WHERE device = ? ORDER BY id DESC LIMIT 1`), r.Device).Scan(&lastID, &lastFP)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if lastID.Valid && bytes.Equal(lastFP, r.Fingerprint) {
			id = lastID.Int64
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE reports SET last_at = ?, count = count + 1 WHERE id = ?`), nowNanos(now), id); err != nil {
				return err
			}
		} else {
			if len(rawLog) > 0 {
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO event_logs (sha256, data) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING`), r.LogSHA256, rawLog); err != nil {
					return err
				}
			}
			var golden sql.NullInt64
			if r.GoldenID != 0 {
				golden = sql.NullInt64{Int64: r.GoldenID, Valid: true}
			}
			err := tx.QueryRowContext(ctx, s.q(`INSERT INTO reports (device, first_at, last_at, count, purpose, verdict, bank, pcrs, golden_id,
				differences, summary, log_sha256, event_count, host_checks, firmware, fingerprint)
				VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
				r.Device, nowNanos(now), nowNanos(now), r.Purpose, r.Verdict, r.Bank, r.PCRs, golden, r.Differences, r.Summary,
				r.LogSHA256, r.EventCount, r.HostChecks, r.Firmware, r.Fingerprint).Scan(&id)
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE devices SET last_attested_at = ?, last_verdict = ?, last_report_id = ? WHERE id = ?`),
			nowNanos(now), r.Verdict, id, r.Device)
		return err
	})
	return id, err
}

const reportColumns = `id, device, first_at, last_at, count, purpose, verdict, bank, pcrs, golden_id, differences, summary,
	log_sha256, event_count, host_checks, firmware, fingerprint`

func scanReport(row interface{ Scan(...any) error }) (*Report, error) {
	var r Report
	var first, last int64
	var golden sql.NullInt64
	err := row.Scan(&r.ID, &r.Device, &first, &last, &r.Count, &r.Purpose, &r.Verdict, &r.Bank, &r.PCRs, &golden, &r.Differences,
		&r.Summary, &r.LogSHA256, &r.EventCount, &r.HostChecks, &r.Firmware, &r.Fingerprint)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.FirstAt, r.LastAt, r.GoldenID = time.Unix(0, first), time.Unix(0, last), golden.Int64
	return &r, nil
}

// Reports returns a device's history, newest first, at most limit rows.
func (s *Store) Reports(ctx context.Context, device int64, limit int) ([]Report, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+reportColumns+` FROM reports WHERE device = ? ORDER BY id DESC LIMIT ?`), device, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// ReportByID returns one report.
func (s *Store) ReportByID(ctx context.Context, id int64) (*Report, error) {
	return scanReport(s.db.QueryRowContext(ctx, s.q(`SELECT `+reportColumns+` FROM reports WHERE id = ?`), id))
}

// EventLog returns a stored event log by its SHA-256.
func (s *Store) EventLog(ctx context.Context, sha []byte) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT data FROM event_logs WHERE sha256 = ?`), sha).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return b, err
}

// UnlockSecret returns the device's sealed disk-key half, creating it with
// sealed if there is none yet (the first caller's value wins).
func (s *Store) UnlockSecret(ctx context.Context, device int64, sealed []byte, now time.Time) ([]byte, error) {
	if sealed != nil {
		if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO unlock_secrets (device, sealed, created_at) VALUES (?, ?, ?) ON CONFLICT (device) DO NOTHING`),
			device, sealed, nowNanos(now)); err != nil {
			return nil, err
		}
	}
	var b []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT sealed FROM unlock_secrets WHERE device = ?`), device).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return b, err
}

// Stats are the fleet's numbers for the dashboard and metrics.
type Stats struct {
	Devices   map[string]int // by status
	Verdicts  map[string]int // approved devices by last verdict
	Stale     int            // approved devices that stopped reporting
	Never     int            // approved devices that never reported
	Goldens   int
	Reports   int64 // history rows
	Preregged int
}

// Stats counts devices; an approved device is stale when its last report
// is older than staleBefore.
func (s *Store) Stats(ctx context.Context, staleBefore time.Time) (*Stats, error) {
	st := &Stats{Devices: map[string]int{}, Verdicts: map[string]int{}}
	rows, err := s.db.QueryContext(ctx, `SELECT status, COALESCE(last_verdict, ''), COUNT(*) FROM devices GROUP BY status, last_verdict`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var status, verdict string
		var n int
		if err := rows.Scan(&status, &verdict, &n); err != nil {
			rows.Close()
			return nil, err
		}
		st.Devices[status] += n
		if status == StatusApproved && verdict != "" {
			st.Verdicts[verdict] += n
		}
	}
	rows.Close()
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT
		COALESCE(SUM(CASE WHEN last_attested_at IS NOT NULL AND last_attested_at < ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN last_attested_at IS NULL THEN 1 ELSE 0 END), 0)
		FROM devices WHERE status = ?`), nowNanos(staleBefore), StatusApproved).Scan(&st.Stale, &st.Never); err != nil {
		return nil, err
	}
	for q, dst := range map[string]*int{`SELECT COUNT(*) FROM golden`: &st.Goldens, `SELECT COUNT(*) FROM preregistered`: &st.Preregged} {
		if err := s.db.QueryRowContext(ctx, q).Scan(dst); err != nil {
			return nil, err
		}
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&st.Reports); err != nil {
		return nil, err
	}
	return st, nil
}

// StaleDevices lists approved devices whose last report is older than
// staleBefore or that never reported, the longest silent first.
func (s *Store) StaleDevices(ctx context.Context, staleBefore time.Time, limit int) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices WHERE status = ? AND (last_attested_at IS NULL OR last_attested_at < ?)
		ORDER BY COALESCE(last_attested_at, 0), id LIMIT ?`), StatusApproved, nowNanos(staleBefore), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *d)
	}
	return out, rows.Err()
}
