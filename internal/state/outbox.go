package state

import (
	"database/sql"
	"slices"
	"time"
)

// Outbox operations and states.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"

	OutboxPending = "pending"
	// OutboxAttempted is a create that may have reached the CRM: one
	// sent, or planned to be sent in the run that planned it (the engine
	// plans creates attempted). It is sent again only after a pull of
	// its connector has finished.
	OutboxAttempted = "attempted"
	OutboxFailed    = "failed"
	OutboxDone      = "done"
)

// OutboxItem is one planned write.
type OutboxItem struct {
	ID        int64
	EntityID  int64
	Connector string
	Op        string
	RemoteID  string
	// Fields are the CRM fields to send.
	Fields Values
	// Canonical are the canonical values the write carries.
	Canonical Values
	State     string
	Attempts  int
	LastError string
	RunID     int64
	UpdatedAt time.Time
}

// AddOutbox plans a write and returns its id.
func (w *WriteTx) AddOutbox(it OutboxItem, now time.Time) (int64, error) {
	res, err := w.exec(`INSERT INTO outbox (entity_id, connector, op, remote_id, fields, canonical, state, run_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
		it.EntityID, it.Connector, it.Op, nullString(it.RemoteID), EncodeValues(it.Fields), EncodeValues(it.Canonical), it.RunID, TimeText(now), TimeText(now))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// outboxRows is how many items one INSERT of AddOutboxBatch carries.
const outboxRows = 50

// AddOutboxBatch plans writes, several rows per statement. An item with
// an ID takes that id (see MaxOutboxID); one without is given the next
// free one. An item's State and Attempts are stored as given (a State
// of "" is pending).
func (w *WriteTx) AddOutboxBatch(items []OutboxItem, now time.Time) error {
	at := TimeText(now)
	for part := range slices.Chunk(items, outboxRows) {
		n := len(part)
		args := make([]any, 0, 12*n)
		for _, it := range part {
			st := it.State
			if st == "" {
				st = OutboxPending
			}
			args = append(args, nullInt(it.ID), it.EntityID, it.Connector, it.Op, nullString(it.RemoteID), EncodeValues(it.Fields), EncodeValues(it.Canonical), st, it.Attempts, it.RunID, at, at)
		}
		q := `INSERT INTO outbox (id, entity_id, connector, op, remote_id, fields, canonical, state, attempts, run_id, created_at, updated_at) VALUES ` + rowList(n, `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if _, err := w.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// MaxOutboxID returns the largest outbox id in use (0 for none). SQLite
// gives a new row the id after the largest one left, which is an id used
// before once the last items are done and deleted: a writer that hands
// out ids above MaxOutboxID itself keeps them rising while a drain
// deletes the items it sent.
func (w *WriteTx) MaxOutboxID() (int64, error) {
	var id int64
	err := w.queryRow(`SELECT coalesce(max(id), 0) FROM outbox`).Scan(&id)
	return id, err
}

// EntityOutbox returns an entity's open (not done) items.
func (w *WriteTx) EntityOutbox(entityID int64) ([]OutboxItem, error) {
	return w.scanOutbox(`SELECT `+outboxCols+` FROM outbox WHERE entity_id = ? AND state <> 'done' ORDER BY id`, entityID)
}

// DropReplannable deletes an entity's pending and failed items (not
// attempted creates, which may have reached the CRM): a new plan replaces
// them.
func (w *WriteTx) DropReplannable(entityID int64) error {
	_, err := w.exec(`DELETE FROM outbox WHERE entity_id = ? AND state IN ('pending', 'failed')`, entityID)
	return err
}

// SetOutboxPayload replaces what an open item sends (its CRM fields and
// the canonical values they carry) and keeps its state: an attempted
// create that is sent again must carry the entity's current values, not
// those of the run that first planned it.
func (w *WriteTx) SetOutboxPayload(id int64, fields, canonical Values, now time.Time) error {
	_, err := w.exec(`UPDATE outbox SET fields = ?, canonical = ?, updated_at = ? WHERE id = ?`, EncodeValues(fields), EncodeValues(canonical), TimeText(now), id)
	return err
}

// CancelCreates drops the open creates of an entity on connector, when
// the record turned out to exist already.
func (w *WriteTx) CancelCreates(entityID int64, connector string) (int64, error) {
	res, err := w.exec(`DELETE FROM outbox WHERE entity_id = ? AND connector = ? AND op = 'create' AND state <> 'done'`, entityID, connector)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// OpenOutbox returns up to limit open items of connector after id after.
func (w *WriteTx) OpenOutbox(connector string, after int64, limit int) ([]OutboxItem, error) {
	return w.scanOutbox(`SELECT `+outboxCols+` FROM outbox WHERE connector = ? AND state <> 'done' AND id > ? ORDER BY id LIMIT ?`, connector, after, limit)
}

// SetOutboxState records the outcome of an attempt. attempt counts it.
func (w *WriteTx) SetOutboxState(id int64, state, lastError string, attempt bool, now time.Time) error {
	inc := 0
	if attempt {
		inc = 1
	}
	_, err := w.exec(`UPDATE outbox SET state = ?, last_error = ?, attempts = attempts + ?, updated_at = ? WHERE id = ?`, state, nullString(lastError), inc, TimeText(now), id)
	return err
}

// DeleteOutbox removes an item (done items are not kept).
func (w *WriteTx) DeleteOutbox(id int64) error {
	_, err := w.exec(`DELETE FROM outbox WHERE id = ?`, id)
	return err
}

// DeleteOutboxItems removes the items ids (done), in one statement.
func (w *WriteTx) DeleteOutboxItems(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := w.exec(deleteOutboxItemsQuery, jsonIDs(ids))
	return err
}

const deleteOutboxItemsQuery = `DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))`

// CountOutbox returns the number of items in state.
func (w *WriteTx) CountOutbox(state string) (int64, error) {
	var n int64
	err := w.queryRow(`SELECT count(*) FROM outbox WHERE state = ?`, state).Scan(&n)
	return n, err
}

const outboxCols = `id, entity_id, connector, op, remote_id, fields, canonical, state, attempts, last_error, run_id, updated_at`

func (w *WriteTx) scanOutbox(query string, args ...any) ([]OutboxItem, error) {
	var out []OutboxItem
	var sc outboxScan
	err := w.query(query, func(rows *sql.Rows) error {
		it, err := sc.row(rows)
		out = append(out, it)
		return err
	}, args...)
	return out, err
}

// outboxScan scans outbox rows (outboxCols), its columns scanned into
// once for all rows.
type outboxScan struct {
	remote, lastErr        sql.NullString
	run                    sql.NullInt64
	fields, canon, updated string
}

func (sc *outboxScan) row(rows *sql.Rows) (OutboxItem, error) {
	var it OutboxItem
	if err := rows.Scan(&it.ID, &it.EntityID, &it.Connector, &it.Op, &sc.remote, &sc.fields, &sc.canon, &it.State, &it.Attempts, &sc.lastErr, &sc.run, &sc.updated); err != nil {
		return it, err
	}
	it.RemoteID, it.LastError, it.RunID = sc.remote.String, sc.lastErr.String, sc.run.Int64
	it.UpdatedAt = ParseTime(sc.updated)
	var err error
	if it.Fields, err = DecodeValues(sc.fields); err != nil {
		return it, err
	}
	it.Canonical, err = DecodeValues(sc.canon)
	return it, err
}

// MarkCreatesAttempted marks connector's open creates with ids in
// (after, upTo] attempted, before they are sent.
func (w *WriteTx) MarkCreatesAttempted(connector string, after, upTo int64, now time.Time) error {
	_, err := w.exec(`UPDATE outbox SET state = 'attempted', attempts = attempts + 1, updated_at = ?
		WHERE connector = ? AND op = 'create' AND state <> 'done' AND id > ? AND id <= ?`, TimeText(now), connector, after, upTo)
	return err
}

const countSendableQuery = `SELECT count(*) FROM outbox WHERE connector = ? AND state <> 'done'
	AND (op <> 'delete' OR ?) AND (op <> 'create' OR state <> 'attempted' OR ?)`

// CountSendable counts connector's open outbox items that a drain would
// send now: deletes only when deletes, attempted creates only when
// attemptedCreates (their pull has finished).
func (w *WriteTx) CountSendable(connector string, deletes, attemptedCreates bool) (int, error) {
	var n int
	err := w.queryRow(countSendableQuery, connector, deletes, attemptedCreates).Scan(&n)
	return n, err
}

// CountOpenOutbox returns the number of items not done.
func (w *WriteTx) CountOpenOutbox() (int64, error) {
	var n int64
	err := w.queryRow(`SELECT count(*) FROM outbox WHERE state <> 'done'`).Scan(&n)
	return n, err
}
