package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// AddGolden stores an approved golden set (an administrator's act: learned
// from a reference machine's report, or imported from a ROM prediction).
func (s *Store) AddGolden(ctx context.Context, g *attest.Golden, by string, now time.Time) (int64, error) {
	pcrs, err := encodePCRs(g.PCRs)
	if err != nil {
		return 0, err
	}
	var events sql.NullString
	if g.Events != nil {
		b, err := eventlog.MarshalRecords(g.Events)
		if err != nil {
			return 0, err
		}
		events = sql.NullString{String: string(b), Valid: true}
	}
	var id int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO golden (model, label, bank, pcrs, events, source, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), g.Model, g.Label, int(g.Bank), pcrs, events, g.Source, by, nowNanos(now)).Scan(&id); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, by, "golden-add", fmt.Sprintf("golden %d for %q: %q (%s)", id, g.Model, g.Label, g.Source))
	})
	return id, err
}

// Goldens returns the golden sets of model ("" for all models).
func (s *Store) Goldens(ctx context.Context, model string) ([]attest.Golden, error) {
	query := `SELECT id, model, label, bank, pcrs, events, source FROM golden`
	var args []any
	if model != "" {
		query += ` WHERE model = ?`
		args = append(args, model)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY model, id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attest.Golden
	for rows.Next() {
		var g attest.Golden
		var bank int
		var pcrs string
		var events sql.NullString
		if err := rows.Scan(&g.ID, &g.Model, &g.Label, &bank, &pcrs, &events, &g.Source); err != nil {
			return nil, err
		}
		g.Bank = tpm.Alg(bank)
		if g.PCRs, err = decodePCRs(pcrs); err != nil {
			return nil, fmt.Errorf("golden %d: %w", g.ID, err)
		}
		if events.Valid {
			if g.Events, err = eventlog.ParseRecords([]byte(events.String)); err != nil {
				return nil, fmt.Errorf("golden %d: %w", g.ID, err)
			}
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeleteGolden withdraws a golden set; reports that matched it keep its ID.
func (s *Store) DeleteGolden(ctx context.Context, id int64, by string, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM golden WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.audit(ctx, tx, now, by, "golden-delete", strconv.FormatInt(id, 10))
	})
}

// encodePCRs is the stored form of PCR values: {"0":"hex",...}.
func encodePCRs(p map[int][]byte) (string, error) {
	m := make(map[string]string, len(p))
	for i, v := range p {
		m[strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodePCRs(s string) (map[int][]byte, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	out := make(map[int][]byte, len(m))
	for k, v := range m {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i > 23 {
			return nil, errors.New("stored PCR index out of range")
		}
		if out[i], err = hex.DecodeString(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EncodePCRs and DecodePCRs expose the stored PCR encoding to the server
// (golden import files use the same form).
func EncodePCRs(p map[int][]byte) (string, error) { return encodePCRs(p) }
func DecodePCRs(s string) (map[int][]byte, error) { return decodePCRs(s) }
