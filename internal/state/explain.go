package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Explanation is what `syncd explain` shows of one entity.
type Explanation struct {
	EntityID int64
	// Fields are the entity's current canonical values.
	Fields Values
	// Records are the linked records, one per connector.
	Records []ExplainedRecord
	// Conflicts are every conflict recorded for the entity, newest first.
	Conflicts []Conflict
	// Origins says where each agreed value came from; the AllFields
	// member stands for the fields not named.
	Origins map[string]Origin
}

// Origin returns where field's agreed value came from.
func (ex *Explanation) Origin(field string) (Origin, bool) {
	if o, ok := ex.Origins[field]; ok {
		return o, true
	}
	o, ok := ex.Origins[AllFields]
	return o, ok
}

// ExplainedRecord is one connector's record of the entity.
type ExplainedRecord struct {
	Connector, RemoteID string
	// Current is the last pulled (or pushed) canonical snapshot, Synced
	// the base both sides agreed on.
	Current, Synced Values
	ModifiedAt      string
	PulledAt        string
	Deleted         bool
}

// Explain finds an entity by id or by e-mail address (matched against the
// normalised e-mail identity key) and reads what is known of it.
func (s *Store) Explain(ctx context.Context, key string) (*Explanation, error) {
	db := s.ReadDB
	var id int64
	if n, err := strconv.ParseInt(key, 10, 64); err == nil {
		id = n
	} else {
		err := db.QueryRowContext(ctx, `SELECT entity_id FROM identity_keys WHERE value = ? ORDER BY entity_id LIMIT 1`, strings.ToLower(strings.TrimSpace(key))).Scan(&id)
		if err == sql.ErrNoRows {
			return nil, fmt.Errorf("no contact with e-mail %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("state: explain: %w", err)
		}
	}
	ex := &Explanation{EntityID: id}
	var fields, origins string
	err := db.QueryRowContext(ctx, `SELECT fields, origins FROM entities WHERE id = ?`, id).Scan(&fields, &origins)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("no entity %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("state: explain: %w", err)
	}
	_ = json.Unmarshal([]byte(fields), &ex.Fields)
	_ = json.Unmarshal([]byte(origins), &ex.Origins)
	rows, err := db.QueryContext(ctx, `SELECT connector, remote_id, fields, COALESCE(synced, '{}'), COALESCE(modified_at, ''), pulled_at, deleted_at IS NOT NULL
		FROM records WHERE entity_id = ? ORDER BY connector`, id)
	if err != nil {
		return nil, fmt.Errorf("state: explain: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ExplainedRecord
		var cur, syn string
		if err := rows.Scan(&r.Connector, &r.RemoteID, &cur, &syn, &r.ModifiedAt, &r.PulledAt, &r.Deleted); err != nil {
			return nil, fmt.Errorf("state: explain: %w", err)
		}
		_ = json.Unmarshal([]byte(cur), &r.Current)
		_ = json.Unmarshal([]byte(syn), &r.Synced)
		ex.Records = append(ex.Records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: explain: %w", err)
	}
	crows, err := db.QueryContext(ctx, `SELECT id, entity_id, field, base, candidates, policy, decision, winner, reason, status, run_id, created_at, resolved_at
		FROM conflicts WHERE entity_id = ? ORDER BY id DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("state: explain: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		c, err := scanConflict(crows)
		if err != nil {
			return nil, fmt.Errorf("state: explain: %w", err)
		}
		ex.Conflicts = append(ex.Conflicts, c)
	}
	return ex, crows.Err()
}
