package state

import (
	"encoding/json"
	"time"
)

// Park sets a record aside for review: it matched ambiguously.
func (w *WriteTx) Park(connector, remoteID, reason string, candidates []int64, now time.Time) error {
	if candidates == nil {
		candidates = []int64{}
	}
	b, _ := json.Marshal(candidates)
	_, err := w.exec(`INSERT INTO parked (connector, remote_id, reason, candidates, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (connector, remote_id) DO UPDATE SET reason = excluded.reason, candidates = excluded.candidates`,
		connector, remoteID, reason, string(b), TimeText(now))
	return err
}

// Unpark removes a record from review (it matched cleanly now).
func (w *WriteTx) Unpark(connector, remoteID string) error {
	_, err := w.exec(`DELETE FROM parked WHERE connector = ? AND remote_id = ?`, connector, remoteID)
	return err
}

// CountParked returns the number of parked records.
func (w *WriteTx) CountParked() (int64, error) {
	var n int64
	err := w.queryRow(`SELECT count(*) FROM parked`).Scan(&n)
	return n, err
}

// CountOpenConflicts returns the number of open conflicts.
func (w *WriteTx) CountOpenConflicts() (int64, error) {
	var n int64
	err := w.queryRow(`SELECT count(*) FROM conflicts WHERE status = 'open'`).Scan(&n)
	return n, err
}
