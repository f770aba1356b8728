// Package store keeps the attestation server's state in SQL: an embedded,
// pure-Go SQLite file (modernc.org/sqlite, no cgo) for one server, or
// PostgreSQL (pgx) for several replicas behind a load balancer. The same
// queries and the same test suite run on both.
//
//	s, err := store.Open(ctx, "sqlite:/var/lib/glint-attest/attest.db")
//	s, err := store.Open(ctx, "postgres://glint@db/attest?sslmode=verify-full")
//
// Open applies the versioned migrations (migrations.go) in order, each in
// its own transaction together with the row that records it, so a crash
// leaves the schema at one version or the next, never between; PostgreSQL
// replicas starting at once serialise on an advisory lock.
//
// What must not be lost or half-written is written in one transaction: an
// enrolment (the device row), a report (the replay check on the device's
// last token, the report row, the device's last result). SQLite runs in WAL
// mode with synchronous=FULL: a committed transaction survives the process
// being killed and the machine losing power.
//
// Reports are kept as history of changes: a report identical to the
// device's previous one (same verdict, PCR values, log and golden set)
// extends that row (last seen, count) instead of adding one, so 10,000
// devices reporting every 5 minutes write updates, not 2.9 million rows a
// day, while every change stays on record. Event logs are stored once per
// distinct content (content-addressed by SHA-256).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Store is the server's database.
type Store struct {
	db      *sql.DB
	dialect dialect
	// URL names the database without its password, for messages.
	URL string
}

type dialect int

const (
	sqlite dialect = iota + 1
	postgres
)

// ErrNotFound is returned when a named row does not exist.
var ErrNotFound = errors.New("not found")

// Open connects to url (sqlite:PATH or postgres://...) and migrates the
// schema to the newest version.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	s := &Store{}
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		path := strings.TrimPrefix(rawURL, "sqlite:")
		if path == "" {
			return nil, errors.New("database URL sqlite: needs a file path, e.g. sqlite:/var/lib/glint-attest/attest.db")
		}
		// _txlock=immediate: write transactions take the lock at BEGIN, so
		// two writers never deadlock upgrading a read lock (they queue on
		// busy_timeout instead).
		q := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		// One writer at a time is SQLite's model; a few connections let
		// reads (the dashboard) proceed beside it in WAL mode.
		db.SetMaxOpenConns(4)
		s.db, s.dialect, s.URL = db, sqlite, rawURL
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		db, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(16)
		u, err := url.Parse(rawURL)
		if err == nil {
			u.User = url.User(u.User.Username())
			s.URL = u.String()
		}
		s.db, s.dialect = db, postgres
	default:
		return nil, fmt.Errorf("database URL %q not understood: use sqlite:PATH or postgres://USER@HOST/DB", rawURL)
	}
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open %s: %w", s.URL, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("migrate %s: %w", s.URL, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Kind is "sqlite" or "postgres".
func (s *Store) Kind() string {
	if s.dialect == postgres {
		return "postgres"
	}
	return "sqlite"
}

// q rewrites a query written with ? placeholders for the dialect
// (PostgreSQL numbers them: $1, $2, ...).
func (s *Store) q(query string) string {
	if s.dialect != postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// tx runs fn in a transaction, committing if it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func nowNanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid || n.Int64 == 0 {
		return time.Time{}
	}
	return time.Unix(0, n.Int64)
}
