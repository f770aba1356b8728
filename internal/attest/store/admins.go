package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Admin is a dashboard login. PasswordHash is an encoded argon2id hash
// (package server makes and checks it); the store never sees a password.
type Admin struct {
	ID           int64
	Name         string
	PasswordHash string
}

// ErrExists is returned when a unique name is taken.
var ErrExists = errors.New("already exists")

// AddAdmin creates a login, or replaces its password hash if replace.
func (s *Store) AddAdmin(ctx context.Context, name, passwordHash string, replace bool, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM admins WHERE name = ?`), name).Scan(&n); err != nil {
			return err
		}
		switch {
		case n > 0 && !replace:
			return ErrExists
		case n > 0:
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE admins SET password_hash = ? WHERE name = ?`), passwordHash, name); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE admin_id = (SELECT id FROM admins WHERE name = ?)`), name); err != nil {
				return err
			}
			return s.audit(ctx, tx, now, "cli", "admin-password", name)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO admins (name, password_hash, created_at) VALUES (?, ?, ?)`), name, passwordHash, nowNanos(now)); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, "cli", "admin-add", name)
	})
}

// AdminCount says how many logins exist (none: the server explains how to
// create the first).
func (s *Store) AdminCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM admins`).Scan(&n)
	return n, err
}

// AdminByName finds a login.
func (s *Store) AdminByName(ctx context.Context, name string) (*Admin, error) {
	var a Admin
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, name, password_hash FROM admins WHERE name = ?`), name).Scan(&a.ID, &a.Name, &a.PasswordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &a, err
}

// CreateSession stores a session under the hash of its token.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, adminID int64, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (token_hash, admin_id, expires_at) VALUES (?, ?, ?)`), tokenHash, adminID, nowNanos(expires))
	return err
}

// SessionAdmin returns the login of a live session.
func (s *Store) SessionAdmin(ctx context.Context, tokenHash []byte, now time.Time) (*Admin, error) {
	var a Admin
	err := s.db.QueryRowContext(ctx, s.q(`SELECT a.id, a.name, a.password_hash FROM sessions s JOIN admins a ON a.id = s.admin_id
		WHERE s.token_hash = ? AND s.expires_at > ?`), tokenHash, nowNanos(now)).Scan(&a.ID, &a.Name, &a.PasswordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &a, err
}

// DeleteSession ends a session (logout), and drops expired ones.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_hash = ? OR expires_at <= ?`), tokenHash, nowNanos(now))
	return err
}
