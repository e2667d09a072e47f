package state

import (
	"database/sql"
	"time"
)

// Cursor is a connector's stored pull position.
type Cursor struct {
	Connector string
	Cursor    string
	// InProgress is set when a pull stored some pages but not its last.
	InProgress bool
	UpdatedAt  time.Time
	CompleteAt time.Time
}

// GetCursor returns a connector's cursor (zero when none).
func (w *WriteTx) GetCursor(connector string) (Cursor, error) {
	c := Cursor{Connector: connector}
	var upd string
	var complete sql.NullString
	err := w.queryRow(`SELECT cursor, in_progress, updated_at, complete_at FROM cursors WHERE connector = ?`, connector).Scan(&c.Cursor, &c.InProgress, &upd, &complete)
	if err == sql.ErrNoRows {
		return c, nil
	}
	c.UpdatedAt, c.CompleteAt = ParseTime(upd), ParseTime(complete.String)
	return c, err
}

// SetCursor stores the position after a page; done marks a finished pull.
func (w *WriteTx) SetCursor(connector, cursor string, done bool, now time.Time) error {
	var complete any
	if done {
		complete = TimeText(now)
	}
	_, err := w.exec(`INSERT INTO cursors (connector, cursor, in_progress, updated_at, complete_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (connector) DO UPDATE SET cursor = excluded.cursor, in_progress = excluded.in_progress,
			updated_at = excluded.updated_at, complete_at = COALESCE(excluded.complete_at, cursors.complete_at)`,
		connector, cursor, !done, TimeText(now), complete)
	return err
}

// ReplaceCursor replaces the cursor of a finished pull, leaving its times
// alone; it does nothing while a pull is in progress. (The engine stores
// there what a connector says about its own writes since that pull.)
func (w *WriteTx) ReplaceCursor(connector, cursor string) error {
	_, err := w.exec(`UPDATE cursors SET cursor = ? WHERE connector = ? AND in_progress = 0`, cursor, connector)
	return err
}
