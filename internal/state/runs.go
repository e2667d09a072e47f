package state

import (
	"context"
	"time"
)

// Run statuses.
const (
	RunRunning     = "running"
	RunOK          = "ok"
	RunAttention   = "attention"
	RunFailed      = "failed"
	RunInterrupted = "interrupted"
	RunDry         = "dry"
)

// Run is one run in the journal.
type Run struct {
	ID               int64
	StartedAt        time.Time
	FinishedAt       time.Time
	Status           string
	DryRun, Full     bool
	Conflicts        int64
	Failed           int64
	Parked           int64
	DeletionsBlocked string
	Error            string
	Connectors       []RunConnector
}

// RunConnector is one connector's counts in a run.
type RunConnector struct {
	Connector                                 string
	Pulled, Changed, Matched                  int64
	Created, Updated, Deleted, Unchanged      int64
	Conflicts, Failed, Reads, Writes, Retries int64
	Duration                                  time.Duration
	Error                                     string
}

// StartRun opens a journal entry and returns its id.
func (s *Store) StartRun(ctx context.Context, dry, full bool) (int64, error) {
	var id int64
	err := s.Update(ctx, func(w *WriteTx) error {
		res, err := w.exec(`INSERT INTO runs (started_at, status, dry_run, full) VALUES (?, 'running', ?, ?)`, TimeText(s.now()), dry, full)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// FinishRun stores a run's outcome and per-connector counts.
func (s *Store) FinishRun(ctx context.Context, r Run) error {
	return s.Update(ctx, func(w *WriteTx) error {
		if _, err := w.exec(`UPDATE runs SET finished_at = ?, status = ?, conflicts = ?, failed = ?, parked = ?, deletions_blocked = ?, error = ? WHERE id = ?`,
			TimeText(r.FinishedAt), r.Status, r.Conflicts, r.Failed, r.Parked, nullString(r.DeletionsBlocked), nullString(r.Error), r.ID); err != nil {
			return err
		}
		for _, c := range r.Connectors {
			if _, err := w.exec(`INSERT OR REPLACE INTO run_connectors (run_id, connector, pulled, changed, matched, created, updated, deleted, unchanged, conflicts, failed, reads, writes, retries, duration_ms, error)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.ID, c.Connector, c.Pulled, c.Changed, c.Matched, c.Created, c.Updated, c.Deleted, c.Unchanged, c.Conflicts, c.Failed, c.Reads, c.Writes, c.Retries, c.Duration.Milliseconds(), nullString(c.Error)); err != nil {
				return err
			}
		}
		return nil
	})
}

// InterruptStaleRuns marks runs left "running" by a process that died.
func (s *Store) InterruptStaleRuns(ctx context.Context) error {
	return s.Update(ctx, func(w *WriteTx) error {
		_, err := w.exec(`UPDATE runs SET status = 'interrupted', error = 'the process stopped before the run finished' WHERE status = 'running'`)
		return err
	})
}
