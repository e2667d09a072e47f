package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Conflict statuses.
const (
	ConflictSettled  = "settled"
	ConflictOpen     = "open"
	ConflictResolved = "resolved"
)

// Conflict is one field changed differently on several sides.
type Conflict struct {
	ID       int64
	EntityID int64
	Field    string
	// Base is the agreed value before the competing changes.
	Base string
	// Candidates are the competing values by connector.
	Candidates map[string]string
	Policy     string
	// Decision is the value that won ("" while open), Winner the
	// connector it came from (or "operator").
	Decision, Winner string
	Reason           string
	Status           string
	RunID            int64
	CreatedAt        time.Time
	ResolvedAt       time.Time
}

// AddConflict records a conflict.
func (w *WriteTx) AddConflict(c Conflict, now time.Time) (int64, error) {
	cands, _ := json.Marshal(c.Candidates)
	res, err := w.exec(`INSERT INTO conflicts (entity_id, field, base, candidates, policy, decision, winner, reason, status, run_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.EntityID, c.Field, c.Base, string(cands), c.Policy, nullString(c.Decision), nullString(c.Winner), c.Reason, c.Status, c.RunID, TimeText(now))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// OpenConflicts returns an entity's open conflicts by field.
func (w *WriteTx) OpenConflicts(entityID int64) (map[string]Conflict, error) {
	var out map[string]Conflict
	err := w.query(`SELECT `+conflictCols+` FROM conflicts WHERE entity_id = ? AND status = 'open'`, func(rows *sql.Rows) error {
		c, err := scanConflict(rows)
		if err != nil {
			return err
		}
		if out == nil {
			out = map[string]Conflict{}
		}
		out[c.Field] = c
		return nil
	}, entityID)
	return out, err
}

// SetConflictCandidates updates the competing values of an open conflict
// (a side changed the parked field again).
func (w *WriteTx) SetConflictCandidates(id int64, cands map[string]string) error {
	b, _ := json.Marshal(cands)
	_, err := w.exec(`UPDATE conflicts SET candidates = ? WHERE id = ?`, string(b), id)
	return err
}

// GetConflict returns one conflict.
func (w *WriteTx) GetConflict(id int64) (Conflict, bool, error) {
	var c Conflict
	found := false
	err := w.query(`SELECT `+conflictCols+` FROM conflicts WHERE id = ?`, func(rows *sql.Rows) error {
		var err error
		c, err = scanConflict(rows)
		found = err == nil
		return err
	}, id)
	return c, found, err
}

// ErrNoConflict is returned for an unknown conflict id.
var ErrNoConflict = errors.New("no such conflict")

// ResolveConflict settles a conflict by an operator's choice: the value
// of connector take, or value when not nil. The entity takes the value
// and is marked for reconciling, so the next run writes it everywhere.
func (s *Store) ResolveConflict(ctx context.Context, id int64, take string, value *string) error {
	return s.Update(ctx, func(w *WriteTx) error {
		c, found, err := w.GetConflict(id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("state: conflict %d: %w", id, ErrNoConflict)
		}
		var v, winner string
		switch {
		case value != nil:
			v, winner = *value, "operator"
		default:
			cv, ok := c.Candidates[take]
			if !ok {
				return fmt.Errorf("state: conflict %d has no value from connector %q", id, take)
			}
			v, winner = cv, take
		}
		e, found, err := w.GetEntity(c.EntityID)
		if err != nil {
			return err
		}
		if !found || e.Deleted {
			return fmt.Errorf("state: conflict %d: the contact was deleted", id)
		}
		if e.Fields == nil {
			e.Fields = Values{}
		}
		e.Fields[c.Field] = v
		origin := Origin{Connector: winner, At: s.now(), Run: c.RunID, How: fmt.Sprintf("resolved (conflict #%d)", id)}
		if err := w.SetEntityFields(e.ID, e.Fields, map[string]Origin{c.Field: origin}); err != nil {
			return err
		}
		if err := w.MarkEntityDirty(e.ID, EntityRekey); err != nil {
			return err
		}
		// Only the open conflict is resolved; earlier settled conflicts of
		// the same field stay as history, and the newest open one wins.
		_, err = w.exec(`UPDATE conflicts SET status = 'resolved', decision = ?, winner = ?, resolved_at = ? WHERE entity_id = ? AND field = ? AND (status = 'open' OR id = ?)`,
			v, winner, TimeText(s.now()), c.EntityID, c.Field, id)
		return err
	})
}

// Conflicts lists conflicts with status ("" for all), newest first, up to
// limit (0: 100).
func (s *Store) Conflicts(ctx context.Context, status string, limit int) ([]Conflict, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.ReadDB.QueryContext(ctx, `SELECT `+conflictCols+` FROM conflicts WHERE (? = '' OR status = ?) ORDER BY id DESC LIMIT ?`, status, status, limit)
	if err != nil {
		return nil, fmt.Errorf("state: conflicts: %w", err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		c, err := scanConflict(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

const conflictCols = `id, entity_id, field, base, candidates, policy, decision, winner, reason, status, run_id, created_at, resolved_at`

func scanConflict(rows *sql.Rows) (Conflict, error) {
	var c Conflict
	var base, decision, winner, resolved sql.NullString
	var run sql.NullInt64
	var cands, created string
	if err := rows.Scan(&c.ID, &c.EntityID, &c.Field, &base, &cands, &c.Policy, &decision, &winner, &c.Reason, &c.Status, &run, &created, &resolved); err != nil {
		return c, err
	}
	c.Base, c.Decision, c.Winner, c.RunID = base.String, decision.String, winner.String, run.Int64
	c.CreatedAt, c.ResolvedAt = ParseTime(created), ParseTime(resolved.String)
	if err := json.Unmarshal([]byte(cands), &c.Candidates); err != nil {
		return c, fmt.Errorf("state: conflict %d: bad candidates: %w", c.ID, err)
	}
	return c, nil
}
