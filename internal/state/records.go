package state

import (
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
)

// PulledRecord is one remote record as a pull stores it.
type PulledRecord struct {
	Connector, RemoteID string
	// Fields are the record's canonical values (compared fields only).
	Fields   Values
	Hash     string
	Modified time.Time
	Pulled   time.Time
	Run      int64
	// Encoded, when set, is EncodeValues(Fields), computed ahead.
	Encoded string
	// Raw is the hash of the CRM values as pulled ("" when not known).
	Raw string
	// New says the store did not hold the record when its page was read
	// (so it is not linked yet).
	New bool
}

// StoredHash is a stored record's hash, the hash of its CRM values as
// last pulled ("" when not known) and whether it is a tombstone.
type StoredHash struct {
	Hash, Raw string
	Deleted   bool
}

// idRows is how many remote ids one statement of RecordHashes or
// TouchRecords names.
const idRows = 500

// rowList is n copies of row separated by commas: the parameters of a
// statement that names n values or n rows of values.
func rowList(n int, row string) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat(row+", ", n-1) + row
}

func recordHashesQuery(n int) string {
	return `SELECT remote_id, hash, coalesce(raw_hash, ''), deleted_at IS NOT NULL FROM records WHERE connector = ? AND remote_id IN (` + rowList(n, `?`) + `)`
}

// RecordHashes returns the stored hashes of those of ids that connector
// has records for (live or tombstones), a statement per 500 ids.
func (w *WriteTx) RecordHashes(connector string, ids []string) (map[string]StoredHash, error) {
	out := make(map[string]StoredHash, len(ids))
	for part := range slices.Chunk(ids, idRows) {
		n := len(part)
		args := make([]any, 0, n+1)
		args = append(args, connector)
		for _, id := range part {
			args = append(args, id)
		}
		err := w.query(recordHashesQuery(n), func(rows *sql.Rows) error {
			var id string
			var h StoredHash
			if err := rows.Scan(&id, &h.Hash, &h.Raw, &h.Deleted); err != nil {
				return err
			}
			out[id] = h
			return nil
		}, args...)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RawHash is a record's hash of its CRM values as pulled.
type RawHash struct {
	RemoteID, Raw string
}

// SetRawHashes stores the hashes of CRM values pulled again whose
// canonical values had not changed (a record syncd wrote, read back).
func (w *WriteTx) SetRawHashes(connector string, hashes []RawHash) error {
	for part := range slices.Chunk(hashes, idRows) {
		n := len(part)
		args := make([]any, 0, 2*n+1)
		for _, h := range part {
			args = append(args, h.RemoteID, h.Raw)
		}
		q := `WITH h(id, raw) AS (VALUES ` + rowList(n, `(?, ?)`) + `) UPDATE records SET raw_hash = h.raw FROM h WHERE records.connector = ? AND records.remote_id = h.id`
		args = append(args, connector)
		if _, err := w.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// TouchRecords notes that run saw the records ids unchanged.
func (w *WriteTx) TouchRecords(connector string, ids []string, run int64) error {
	for part := range slices.Chunk(ids, idRows) {
		n := len(part)
		args := make([]any, 0, n+2)
		args = append(args, run, connector)
		for _, id := range part {
			args = append(args, id)
		}
		if _, err := w.exec(`UPDATE records SET seen_run = ? WHERE connector = ? AND remote_id IN (`+rowList(n, `?`)+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// PutPulledRecord stores a new or changed snapshot; a tombstone comes
// back to life. The link and synced values are kept. A record not linked
// yet is marked dirty, for linking; a linked one marks its entity for
// reconciling in the same transaction, which is all that linking would
// do with it (so a run of edits rewrites neither again before
// reconciling). A New record is stored without reading its link back:
// if it was there after all, it is marked dirty, and linking then marks
// its entity.
func (w *WriteTx) PutPulledRecord(r PulledRecord) error {
	enc := r.Encoded
	if enc == "" {
		enc = EncodeValues(r.Fields)
	}
	args := []any{r.Connector, r.RemoteID, enc, r.Hash, nullString(TimeText(r.Modified)), TimeText(r.Pulled), r.Run, nullString(r.Raw)}
	if r.New {
		_, err := w.exec(putNewRecordQuery, args...)
		return err
	}
	st, err := w.stmt(putRecordQuery)
	if err != nil {
		return err
	}
	var ent sql.NullInt64
	if err := st.QueryRowContext(w.ctx, args...).Scan(&ent); err != nil {
		return w.s.writeErr(queryName(putRecordQuery), err)
	}
	if ent.Valid {
		return w.MarkEntityDirty(ent.Int64, EntityDirty)
	}
	return nil
}

// putRecordUpsert stores a pulled snapshot; the queries below end it
// with the record's dirty mark.
const putRecordUpsert = `INSERT INTO records (connector, remote_id, fields, hash, modified_at, pulled_at, seen_run, dirty, raw_hash)
	VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)
	ON CONFLICT (connector, remote_id) DO UPDATE SET fields = excluded.fields, hash = excluded.hash,
		modified_at = excluded.modified_at, pulled_at = excluded.pulled_at, seen_run = excluded.seen_run,
		deleted_at = NULL, raw_hash = excluded.raw_hash, dirty = `

const (
	putNewRecordQuery = putRecordUpsert + `1`
	putRecordQuery    = putRecordUpsert + `records.entity_id IS NULL RETURNING entity_id`
)

// NewLinkedRecord is a pulled record new to the store, stored with the
// outcome of its linking: the entity it is linked to (0 for none: it was
// parked, or it belongs to a connector that only receives), and whether
// its snapshot is the link's synced base (it made the entity).
type NewLinkedRecord struct {
	PulledRecord
	EntityID int64
	Base     bool
}

// newRecordRows is how many records one statement of InsertLinkedRecords
// carries.
const newRecordRows = 100

// ErrStoredBefore is returned by InsertLinkedRecords when one of its
// records was stored already: the transaction must be rolled back (its
// linking was decided for a record that is not new) and the records
// stored the ordinary way.
var ErrStoredBefore = errors.New("state: a record taken as new was stored before")

// InsertLinkedRecords stores records new to the store together with
// their links, several per statement, as handled (not dirty). It fails
// with ErrStoredBefore when one of them was stored before (a CRM that
// repeats a record on a later page of a first pull); the others may be
// stored by then.
func (w *WriteTx) InsertLinkedRecords(recs []NewLinkedRecord) error {
	for part := range slices.Chunk(recs, newRecordRows) {
		args := make([]any, 0, 10*len(part))
		var pulled time.Time
		var pulledText string
		for _, r := range part {
			// A page's records are pulled at one time.
			if pulledText == "" || !r.Pulled.Equal(pulled) {
				pulled, pulledText = r.Pulled, TimeText(r.Pulled)
			}
			enc := r.Encoded
			if enc == "" {
				enc = EncodeValues(r.Fields)
			}
			var synced any
			if r.Base {
				synced = enc
			}
			args = append(args, r.Connector, r.RemoteID, nullInt(r.EntityID), enc, synced, r.Hash,
				nullString(TimeText(r.Modified)), pulledText, r.Run, nullString(r.Raw))
		}
		q := `INSERT INTO records (connector, remote_id, entity_id, fields, synced, hash, modified_at, pulled_at, seen_run, dirty, raw_hash)
	VALUES ` + rowList(len(part), `(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`) + ` ON CONFLICT (connector, remote_id) DO NOTHING`
		res, err := w.exec(q, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != int64(len(part)) {
			return ErrStoredBefore
		}
	}
	return nil
}

// TombstoneRecord marks a stored record deleted remotely, to be
// reconciled. It reports whether a live record was marked.
func (w *WriteTx) TombstoneRecord(connector, remoteID string, at time.Time) (bool, error) {
	res, err := w.exec(`UPDATE records SET deleted_at = ?, dirty = 1 WHERE connector = ? AND remote_id = ? AND deleted_at IS NULL`, TimeText(at), connector, remoteID)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// TombstoneUnlisted marks deleted every live record of connector that a
// complete id listing (listed) did not show and that run has not seen
// otherwise, and returns how many. It writes only the records it marks:
// a listing of 10,000 unchanged files costs one read of the ids.
func (w *WriteTx) TombstoneUnlisted(connector string, listed map[string]bool, run int64, at time.Time) (int64, error) {
	var gone []string
	err := w.query(`SELECT remote_id FROM records WHERE connector = ? AND deleted_at IS NULL AND seen_run < ?`, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		if !listed[id] {
			gone = append(gone, id)
		}
		return nil
	}, connector, run)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, id := range gone {
		ok, err := w.TombstoneRecord(connector, id, at)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// TombstoneUnseen marks deleted every live record of connector that the
// complete listing of run did not show, and returns how many.
func (w *WriteTx) TombstoneUnseen(connector string, run int64, at time.Time) (int64, error) {
	res, err := w.exec(`UPDATE records SET deleted_at = ?, dirty = 1 WHERE connector = ? AND seen_run < ? AND deleted_at IS NULL`, TimeText(at), connector, run)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DirtyRecord is a live record awaiting linking or reconciling.
type DirtyRecord struct {
	Row                 int64
	Connector, RemoteID string
	EntityID            int64
	Fields              Values
}

const dirtyRecordsQuery = `SELECT rowid, connector, remote_id, entity_id, fields FROM records
	WHERE dirty = 1 AND deleted_at IS NULL AND rowid > ? ORDER BY rowid LIMIT ?`

// DirtyRecords returns up to limit live dirty records after rowid after,
// in pull order.
func (w *WriteTx) DirtyRecords(after int64, limit int) ([]DirtyRecord, error) {
	var out []DirtyRecord
	err := w.query(dirtyRecordsQuery, func(rows *sql.Rows) error {
		var d DirtyRecord
		var ent sql.NullInt64
		var fields string
		if err := rows.Scan(&d.Row, &d.Connector, &d.RemoteID, &ent, &fields); err != nil {
			return err
		}
		d.EntityID = ent.Int64
		var err error
		d.Fields, err = DecodeValues(fields)
		out = append(out, d)
		return err
	}, after, limit)
	return out, err
}

// Tombstone is a record deleted remotely that awaits a decision.
type Tombstone struct {
	Connector, RemoteID string
	EntityID            int64
}

// DirtyTombstones returns every tombstone awaiting a decision.
func (w *WriteTx) DirtyTombstones() ([]Tombstone, error) {
	var out []Tombstone
	err := w.query(`SELECT connector, remote_id, entity_id FROM records WHERE dirty = 1 AND deleted_at IS NOT NULL`, func(rows *sql.Rows) error {
		var t Tombstone
		var ent sql.NullInt64
		if err := rows.Scan(&t.Connector, &t.RemoteID, &ent); err != nil {
			return err
		}
		t.EntityID = ent.Int64
		out = append(out, t)
		return nil
	})
	return out, err
}

// ClearRecordDirty marks a record handled.
func (w *WriteTx) ClearRecordDirty(connector, remoteID string) error {
	_, err := w.exec(`UPDATE records SET dirty = 0 WHERE connector = ? AND remote_id = ?`, connector, remoteID)
	return err
}

// RecordLink links the record at Row (its rowid, as DirtyRecords
// returns it) to an entity. Base says the record's snapshot is already
// the link's synced base: the entity was made from it.
type RecordLink struct {
	Row, EntityID int64
	Base          bool
}

// linkRows is how many links one UPDATE of LinkRecords carries.
const linkRows = 100

// LinkRecords links records to entities, several per statement; each
// link's synced values start empty (a new link), or as its snapshot for
// a link with Base.
func (w *WriteTx) LinkRecords(links []RecordLink) error {
	for part := range slices.Chunk(links, linkRows) {
		n := len(part)
		args := make([]any, 0, 3*n)
		for _, l := range part {
			args = append(args, l.Row, l.EntityID, l.Base)
		}
		q := `WITH l(row, entity, base) AS (VALUES ` + rowList(n, `(?, ?, ?)`) + `) UPDATE records SET entity_id = l.entity,
			synced = CASE WHEN l.base THEN records.fields END, dirty = 0 FROM l WHERE records.rowid = l.row`
		if _, err := w.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// UnlinkRecord detaches a record from its entity.
func (w *WriteTx) UnlinkRecord(connector, remoteID string) error {
	_, err := w.exec(`UPDATE records SET entity_id = NULL, synced = NULL, dirty = 0 WHERE connector = ? AND remote_id = ?`, connector, remoteID)
	return err
}

// Link is a record linked to an entity, as the merge sees it.
type Link struct {
	Connector, RemoteID string
	// Fields is the last pulled (or pushed) snapshot. DirtyEntityBatch
	// gives it as the entity's own Fields map when the values are the
	// same: neither is changed in place.
	Fields Values
	// Synced is the base of the merge; nil for a link never reconciled.
	// It may be the same map as Fields: neither is changed in place.
	Synced Values
	// Settled says the stored base is the stored snapshot: SyncLinks
	// has nothing to write for this link.
	Settled  bool
	Modified time.Time
	Pulled   time.Time
	Deleted  bool
}

// EntityLinks returns the records linked to an entity, live and deleted.
func (w *WriteTx) EntityLinks(entityID int64) ([]Link, error) {
	var out []Link
	err := w.query(`SELECT connector, remote_id, fields, synced, modified_at, pulled_at, deleted_at FROM records WHERE entity_id = ? ORDER BY connector`, func(rows *sql.Rows) error {
		var connector, remoteID, fields, pulled string
		var synced, mod, del sql.NullString
		if err := rows.Scan(&connector, &remoteID, &fields, &synced, &mod, &pulled, &del); err != nil {
			return err
		}
		l, err := decodeLink(connector, remoteID, fields, nil, synced, mod, pulled, del)
		out = append(out, l)
		return err
	}, entityID)
	return out, err
}

// decodeLink builds a Link from its records columns; decoded, when not
// nil, is fields decoded already.
func decodeLink(connector, remoteID, fields string, decoded Values, synced, mod sql.NullString, pulled string, del sql.NullString) (Link, error) {
	l := Link{Connector: connector, RemoteID: remoteID, Fields: decoded}
	var err error
	if decoded == nil {
		if l.Fields, err = DecodeValues(fields); err != nil {
			return l, err
		}
	}
	if synced.Valid {
		// Once a link is reconciled its base is usually its snapshot:
		// both are then the same map (see Link).
		l.Settled = synced.String == fields
		if l.Settled && l.Fields != nil {
			l.Synced = l.Fields
		} else if l.Synced, err = DecodeValues(synced.String); err != nil {
			return l, err
		}
		if l.Synced == nil {
			l.Synced = Values{}
		}
	}
	l.Modified = ParseTime(mod.String)
	l.Pulled = ParseTime(pulled)
	l.Deleted = del.Valid
	return l, nil
}

// LinkRef is the record of one connector linked to an entity.
type LinkRef struct {
	RemoteID string
	Deleted  bool
}

// EntityConnector names an entity's link to one connector.
type EntityConnector struct {
	EntityID  int64
	Connector string
}

const linksOfQuery = `SELECT entity_id, connector, remote_id, deleted_at FROM records INDEXED BY records_link
	WHERE entity_id IN (SELECT value FROM json_each(?))`

// LinksOf returns the records linked to the entities ids, live or
// deleted, by entity and connector, in one query.
func (w *WriteTx) LinksOf(ids []int64) (map[EntityConnector]LinkRef, error) {
	out := make(map[EntityConnector]LinkRef, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var k EntityConnector
	var l LinkRef
	var del sql.NullString
	err := w.query(linksOfQuery, func(rows *sql.Rows) error {
		if err := rows.Scan(&k.EntityID, &k.Connector, &l.RemoteID, &del); err != nil {
			return err
		}
		l.Deleted = del.Valid
		out[k] = l
		return nil
	}, jsonIDs(ids))
	return out, err
}

// SetPushed stores what a successful push left on the remote side: the
// snapshot, synced values and hash all become the pushed values, so that
// the next pull of the same values is recognised as unchanged. The hash
// of the CRM values is forgotten: the next pull maps the record again.
func (w *WriteTx) SetPushed(connector, remoteID string, fields Values, hash string) error {
	enc := EncodeValues(fields)
	_, err := w.exec(`UPDATE records SET fields = ?, synced = ?, hash = ?, raw_hash = NULL WHERE connector = ? AND remote_id = ?`, enc, enc, hash, connector, remoteID)
	return err
}

// CreatedRecord is a record the engine created, with the values it
// carried.
type CreatedRecord struct {
	RemoteID string
	EntityID int64
	Fields   Values
	Hash     string
}

// createdRows is how many records one statement of InsertCreated
// carries.
const createdRows = 100

// InsertCreated stores records the engine created in connector, each
// linked to its entity and already in sync, several per statement.
func (w *WriteTx) InsertCreated(connector string, recs []CreatedRecord, now time.Time, run int64) error {
	at := TimeText(now)
	for part := range slices.Chunk(recs, createdRows) {
		args := make([]any, 0, 8*len(part))
		for _, c := range part {
			enc := EncodeValues(c.Fields)
			args = append(args, connector, c.RemoteID, c.EntityID, enc, enc, c.Hash, at, run)
		}
		q := `INSERT INTO records (connector, remote_id, entity_id, fields, synced, hash, pulled_at, seen_run, dirty)
		VALUES ` + rowList(len(part), `(?, ?, ?, ?, ?, ?, ?, ?, 0)`) + `
		ON CONFLICT (connector, remote_id) DO UPDATE SET entity_id = excluded.entity_id, fields = excluded.fields,
			synced = excluded.synced, hash = excluded.hash, deleted_at = NULL, dirty = 0, raw_hash = NULL`
		if _, err := w.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// MarkRecordDeleted records that the engine deleted a remote record.
func (w *WriteTx) MarkRecordDeleted(connector, remoteID string, at time.Time) error {
	_, err := w.exec(`UPDATE records SET deleted_at = ?, dirty = 0 WHERE connector = ? AND remote_id = ?`, TimeText(at), connector, remoteID)
	return err
}

// CountLinked returns the number of live linked records of connector.
func (w *WriteTx) CountLinked(connector string) (int64, error) {
	var n int64
	err := w.queryRow(`SELECT count(*) FROM records WHERE connector = ? AND entity_id IS NOT NULL AND deleted_at IS NULL`, connector).Scan(&n)
	return n, err
}

const countLiveQuery = `SELECT count(*) FROM records WHERE connector = ? AND deleted_at IS NULL`

// CountLive returns the number of records of connector not marked
// deleted, linked or not.
func (w *WriteTx) CountLive(connector string) (int64, error) {
	var n int64
	err := w.queryRow(countLiveQuery, connector).Scan(&n)
	return n, err
}

// HasRecords reports whether any record of connector is stored, live or
// deleted.
func (w *WriteTx) HasRecords(connector string) (bool, error) {
	var n int
	err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM records WHERE connector = ?)`, connector).Scan(&n)
	return n == 1, err
}
