package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migrations are applied in order; a version is never edited once
// released, only followed by a new one. The DDL is written once for both
// databases with two placeholders: {{id}} (an auto-numbered primary key)
// and {{blob}} (bytes).
var migrations = []struct {
	version int
	name    string
	ddl     string
}{
	{1, "initial schema", `
CREATE TABLE server_keys (
	name  TEXT PRIMARY KEY,
	value {{blob}} NOT NULL
);
CREATE TABLE admins (
	id            {{id}},
	name          TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	created_at    BIGINT NOT NULL
);
CREATE TABLE sessions (
	token_hash {{blob}} PRIMARY KEY,
	admin_id   BIGINT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
	expires_at BIGINT NOT NULL
);
CREATE TABLE devices (
	id               {{id}},
	device_id        {{blob}} NOT NULL UNIQUE,
	ek_fingerprint   TEXT NOT NULL UNIQUE,
	ek_public        {{blob}} NOT NULL,
	ek_certificate   {{blob}},
	ak_public        {{blob}} NOT NULL,
	tpm_version      INTEGER NOT NULL,
	hostname         TEXT NOT NULL,
	model            TEXT NOT NULL,
	firmware         TEXT NOT NULL,
	status           TEXT NOT NULL,
	status_by        TEXT NOT NULL,
	enrolled_at      BIGINT NOT NULL,
	status_at        BIGINT NOT NULL,
	last_token_at    BIGINT NOT NULL DEFAULT 0,
	last_attested_at BIGINT,
	last_verdict     TEXT,
	last_report_id   BIGINT
);
CREATE INDEX devices_last_attested ON devices(last_attested_at);
CREATE TABLE preregistered (
	ek_fingerprint TEXT PRIMARY KEY,
	note           TEXT NOT NULL,
	added_by       TEXT NOT NULL,
	added_at       BIGINT NOT NULL
);
CREATE TABLE golden (
	id         {{id}},
	model      TEXT NOT NULL,
	label      TEXT NOT NULL,
	bank       INTEGER NOT NULL,
	pcrs       TEXT NOT NULL,
	events     TEXT,
	source     TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX golden_model ON golden(model);
CREATE TABLE event_logs (
	sha256 {{blob}} PRIMARY KEY,
	data   {{blob}} NOT NULL
);
CREATE TABLE reports (
	id          {{id}},
	device      BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	first_at    BIGINT NOT NULL,
	last_at     BIGINT NOT NULL,
	count       BIGINT NOT NULL,
	purpose     TEXT NOT NULL,
	verdict     TEXT NOT NULL,
	bank        INTEGER NOT NULL,
	pcrs        TEXT NOT NULL,
	golden_id   BIGINT,
	differences TEXT NOT NULL,
	summary     TEXT NOT NULL,
	log_sha256  {{blob}} NOT NULL,
	event_count INTEGER NOT NULL,
	host_checks TEXT NOT NULL,
	firmware    TEXT NOT NULL,
	fingerprint {{blob}} NOT NULL
);
CREATE INDEX reports_device ON reports(device, id);
CREATE TABLE unlock_secrets (
	device     BIGINT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
	sealed     {{blob}} NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE audit (
	id     {{id}},
	at     BIGINT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL
);
`},
}

func (s *Store) ddl(text string) string {
	r := strings.NewReplacer("{{id}}", "INTEGER PRIMARY KEY", "{{blob}}", "BLOB")
	if s.dialect == postgres {
		r = strings.NewReplacer("{{id}}", "BIGSERIAL PRIMARY KEY", "{{blob}}", "BYTEA")
	}
	return r.Replace(text)
}

// SchemaVersion is the newest migration this glint knows.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	for _, m := range migrations {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if s.dialect == postgres {
				// Replicas starting together: one migrates, the others wait
				// here and then find the version applied.
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7134506)`); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(s.ddl(m.ddl), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), m.version, m.name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return err
		}
	}
	var newest int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return err
	}
	if newest > SchemaVersion() {
		return fmt.Errorf("the database is at schema version %d, newer than this glint's %d: run the newer glint", newest, SchemaVersion())
	}
	return nil
}
