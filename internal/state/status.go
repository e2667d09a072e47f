package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Status is what `syncd status` shows.
type Status struct {
	// SchemaVersion is the applied schema; KnownVersion the newest this
	// binary knows.
	SchemaVersion, KnownVersion int64
	// Runs are the last runs, newest first, with per-connector counts.
	Runs    []Run
	Cursors []Cursor
	// Outbox is the backlog per connector.
	Outbox []OutboxBacklog
	// Failures are the failed and attempted writes with their errors.
	Failures      []OutboxItem
	OpenConflicts []Conflict
	Parked        []Parked
	Entities      int64
	Records       int64
}

// OutboxBacklog counts a connector's open writes.
type OutboxBacklog struct {
	Connector                  string
	Pending, Attempted, Failed int64
}

// Parked is a record set aside for review.
type Parked struct {
	Connector, RemoteID string
	Reason              string
	Candidates          []int64
	CreatedAt           time.Time
}

// statusRuns is how many runs Status lists.
const statusRuns = 10

// statusList bounds the failures, conflicts and parked records listed.
const statusList = 100

// Status reads the store's state through ReadDB, beside a running daemon.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	st := &Status{}
	var err error
	if st.SchemaVersion, st.KnownVersion, err = s.SchemaVersion(ctx); err != nil {
		return nil, err
	}
	db := s.ReadDB
	q := func(query string, scan func(*sql.Rows) error, args ...any) error {
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("state: status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("state: status: %w", err)
			}
		}
		return rows.Err()
	}
	err = q(`SELECT id, started_at, finished_at, status, dry_run, full, conflicts, failed, parked, deletions_blocked, error FROM runs ORDER BY id DESC LIMIT ?`, func(rows *sql.Rows) error {
		var r Run
		var started string
		var finished, blocked, rerr sql.NullString
		if err := rows.Scan(&r.ID, &started, &finished, &r.Status, &r.DryRun, &r.Full, &r.Conflicts, &r.Failed, &r.Parked, &blocked, &rerr); err != nil {
			return err
		}
		r.StartedAt, r.FinishedAt = ParseTime(started), ParseTime(finished.String)
		r.DeletionsBlocked, r.Error = blocked.String, rerr.String
		st.Runs = append(st.Runs, r)
		return nil
	}, statusRuns)
	if err != nil {
		return nil, err
	}
	for i := range st.Runs {
		r := &st.Runs[i]
		err = q(`SELECT connector, pulled, changed, matched, created, updated, deleted, unchanged, conflicts, failed, reads, writes, retries, duration_ms, error FROM run_connectors WHERE run_id = ? ORDER BY connector`, func(rows *sql.Rows) error {
			var c RunConnector
			var ms int64
			var cerr sql.NullString
			if err := rows.Scan(&c.Connector, &c.Pulled, &c.Changed, &c.Matched, &c.Created, &c.Updated, &c.Deleted, &c.Unchanged, &c.Conflicts, &c.Failed, &c.Reads, &c.Writes, &c.Retries, &ms, &cerr); err != nil {
				return err
			}
			c.Duration, c.Error = time.Duration(ms)*time.Millisecond, cerr.String
			r.Connectors = append(r.Connectors, c)
			return nil
		}, r.ID)
		if err != nil {
			return nil, err
		}
	}
	err = q(`SELECT connector, cursor, in_progress, updated_at, complete_at FROM cursors ORDER BY connector`, func(rows *sql.Rows) error {
		var c Cursor
		var upd string
		var complete sql.NullString
		if err := rows.Scan(&c.Connector, &c.Cursor, &c.InProgress, &upd, &complete); err != nil {
			return err
		}
		c.UpdatedAt, c.CompleteAt = ParseTime(upd), ParseTime(complete.String)
		st.Cursors = append(st.Cursors, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = q(`SELECT connector, sum(state = 'pending'), sum(state = 'attempted'), sum(state = 'failed') FROM outbox WHERE state <> 'done' GROUP BY connector ORDER BY connector`, func(rows *sql.Rows) error {
		var b OutboxBacklog
		if err := rows.Scan(&b.Connector, &b.Pending, &b.Attempted, &b.Failed); err != nil {
			return err
		}
		st.Outbox = append(st.Outbox, b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var sc outboxScan
	err = q(`SELECT `+outboxCols+` FROM outbox WHERE state IN ('failed', 'attempted') ORDER BY id LIMIT ?`, func(rows *sql.Rows) error {
		it, err := sc.row(rows)
		st.Failures = append(st.Failures, it)
		return err
	}, statusList)
	if err != nil {
		return nil, err
	}
	err = q(`SELECT `+conflictCols+` FROM conflicts WHERE status = 'open' ORDER BY id LIMIT ?`, func(rows *sql.Rows) error {
		c, err := scanConflict(rows)
		st.OpenConflicts = append(st.OpenConflicts, c)
		return err
	}, statusList)
	if err != nil {
		return nil, err
	}
	err = q(`SELECT connector, remote_id, reason, candidates, created_at FROM parked ORDER BY created_at, connector, remote_id LIMIT ?`, func(rows *sql.Rows) error {
		var p Parked
		var cands, created string
		if err := rows.Scan(&p.Connector, &p.RemoteID, &p.Reason, &cands, &created); err != nil {
			return err
		}
		_ = json.Unmarshal([]byte(cands), &p.Candidates)
		p.CreatedAt = ParseTime(created)
		st.Parked = append(st.Parked, p)
		return nil
	}, statusList)
	if err != nil {
		return nil, err
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM entities WHERE deleted_at IS NULL`).Scan(&st.Entities); err != nil {
		return nil, fmt.Errorf("state: status: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE deleted_at IS NULL`).Scan(&st.Records); err != nil {
		return nil, fmt.Errorf("state: status: %w", err)
	}
	return st, nil
}
