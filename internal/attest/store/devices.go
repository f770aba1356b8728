package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Device statuses.
const (
	StatusPending  = "pending"  // enrolled, waiting for an administrator
	StatusApproved = "approved" // reports are judged and may unlock disks
	StatusRejected = "rejected" // an administrator refused the enrolment
	StatusRevoked  = "revoked"  // was approved, no longer is
)

// Device is an enrolled machine.
type Device struct {
	Row            int64
	DeviceID       []byte // SHA-256 of the AK public key
	EKFingerprint  string
	EKPublic       []byte
	EKCertificate  []byte
	AKPublic       []byte
	TPMVersion     int
	Hostname       string
	Model          string
	Firmware       string
	Status         string
	StatusBy       string
	EnrolledAt     time.Time
	StatusAt       time.Time
	LastTokenAt    int64
	LastAttestedAt time.Time // zero if never
	LastVerdict    string
	LastReportID   int64
}

const deviceColumns = `id, device_id, ek_fingerprint, ek_public, ek_certificate, ak_public, tpm_version, hostname, model, firmware,
	status, status_by, enrolled_at, status_at, last_token_at, last_attested_at, last_verdict, last_report_id`

func scanDevice(row interface{ Scan(...any) error }) (*Device, error) {
	var d Device
	var enrolled, statusAt int64
	var attested, report sql.NullInt64
	var verdict sql.NullString
	err := row.Scan(&d.Row, &d.DeviceID, &d.EKFingerprint, &d.EKPublic, &d.EKCertificate, &d.AKPublic, &d.TPMVersion,
		&d.Hostname, &d.Model, &d.Firmware, &d.Status, &d.StatusBy, &enrolled, &statusAt, &d.LastTokenAt, &attested, &verdict, &report)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	d.EnrolledAt, d.StatusAt = time.Unix(0, enrolled), time.Unix(0, statusAt)
	d.LastAttestedAt = fromNanos(attested)
	d.LastVerdict = verdict.String
	d.LastReportID = report.Int64
	return &d, nil
}

// Enroll records a device whose AK was proven to live in its EK's TPM.
// A TPM is one device: enrolling the same EK again with the same AK
// changes nothing and returns the stored status; with a new AK (the TPM
// was cleared, or another server label) the AK is replaced and the status
// set to status again, since the new key has not been approved. The
// returned device is the stored row.
func (s *Store) Enroll(ctx context.Context, d *Device, status, by string, now time.Time) (*Device, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanDevice(tx.QueryRowContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices WHERE ek_fingerprint = ?`), d.EKFingerprint))
		switch {
		case err == nil && string(old.AKPublic) == string(d.AKPublic):
			return nil
		case err == nil:
			_, err = tx.ExecContext(ctx, s.q(`UPDATE devices SET device_id = ?, ek_public = ?, ek_certificate = ?, ak_public = ?, tpm_version = ?,
				hostname = ?, model = ?, firmware = ?, status = ?, status_by = ?, status_at = ?, last_token_at = 0 WHERE id = ?`),
				d.DeviceID, d.EKPublic, d.EKCertificate, d.AKPublic, d.TPMVersion, d.Hostname, d.Model, d.Firmware, status, by, nowNanos(now), old.Row)
			if err != nil {
				return err
			}
			return s.audit(ctx, tx, now, by, "re-enrol", fmt.Sprintf("device %x (%s): new attestation key, status %s", d.DeviceID, d.Hostname, status))
		case errors.Is(err, ErrNotFound):
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO devices (device_id, ek_fingerprint, ek_public, ek_certificate, ak_public, tpm_version,
				hostname, model, firmware, status, status_by, enrolled_at, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				d.DeviceID, d.EKFingerprint, d.EKPublic, d.EKCertificate, d.AKPublic, d.TPMVersion, d.Hostname, d.Model, d.Firmware,
				status, by, nowNanos(now), nowNanos(now))
			if err != nil {
				return err
			}
			return s.audit(ctx, tx, now, by, "enrol", fmt.Sprintf("device %x (%s, %s): status %s", d.DeviceID, d.Hostname, d.Model, status))
		default:
			return err
		}
	})
	if err != nil {
		return nil, err
	}
	return s.DeviceByEK(ctx, d.EKFingerprint)
}

// DeviceByID finds a device by its ID (the AK hash).
func (s *Store) DeviceByID(ctx context.Context, deviceID []byte) (*Device, error) {
	return scanDevice(s.db.QueryRowContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices WHERE device_id = ?`), deviceID))
}

// DeviceByEK finds a device by its EK fingerprint.
func (s *Store) DeviceByEK(ctx context.Context, fingerprint string) (*Device, error) {
	return scanDevice(s.db.QueryRowContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices WHERE ek_fingerprint = ?`), fingerprint))
}

// DeviceByRow finds a device by its row number.
func (s *Store) DeviceByRow(ctx context.Context, row int64) (*Device, error) {
	return scanDevice(s.db.QueryRowContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices WHERE id = ?`), row))
}

// Devices lists devices with the given status ("" for all), the most
// recently enrolled first, at most limit.
func (s *Store) Devices(ctx context.Context, status string, limit int) ([]Device, error) {
	query := `SELECT ` + deviceColumns + ` FROM devices`
	args := []any{}
	if status != "" {
		query += ` WHERE status = ?`
		args = append(args, status)
	}
	query += ` ORDER BY hostname, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
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

// SetStatus changes a device's status (approve, reject, revoke) on behalf
// of by, and records it in the audit log.
func (s *Store) SetStatus(ctx context.Context, row int64, status, by string, now time.Time) error {
	switch status {
	case StatusPending, StatusApproved, StatusRejected, StatusRevoked:
	default:
		return fmt.Errorf("unknown device status %q", status)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET status = ?, status_by = ?, status_at = ? WHERE id = ?`), status, by, nowNanos(now), row)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.audit(ctx, tx, now, by, "status", fmt.Sprintf("device row %d: %s", row, status))
	})
}

// Preregister records EK fingerprints an organization's flashing station
// produced; devices with these EKs are approved at enrolment when the
// server's policy says so.
func (s *Store) Preregister(ctx context.Context, fingerprint, note, by string, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO preregistered (ek_fingerprint, note, added_by, added_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (ek_fingerprint) DO UPDATE SET note = excluded.note`), fingerprint, note, by, nowNanos(now)); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, by, "preregister", fingerprint+" "+note)
	})
}

// IsPreregistered reports whether an EK fingerprint was pre-registered.
func (s *Store) IsPreregistered(ctx context.Context, fingerprint string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM preregistered WHERE ek_fingerprint = ?`), fingerprint).Scan(&n)
	return n > 0, err
}

// ServerKey returns the named secret shared by every replica, creating it
// (size random bytes) the first time. Concurrent first starts agree on one
// value: the insert is conditional and everyone reads back what is stored.
func (s *Store) ServerKey(ctx context.Context, name string, size int) ([]byte, error) {
	k := make([]byte, size)
	rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO server_keys (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, k); err != nil {
		return nil, err
	}
	var v []byte
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM server_keys WHERE name = ?`), name).Scan(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Store) audit(ctx context.Context, tx *sql.Tx, now time.Time, actor, action, detail string) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)`), nowNanos(now), actor, action, detail)
	return err
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	At                    time.Time
	Actor, Action, Detail string
}

// Audit returns the newest audit entries.
func (s *Store) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?`), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Detail); err != nil {
			return nil, err
		}
		e.At = time.Unix(0, at)
		out = append(out, e)
	}
	return out, rows.Err()
}
