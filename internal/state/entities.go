package state

import (
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Entity dirty levels.
const (
	// EntityClean needs nothing.
	EntityClean = 0
	// EntityDirty awaits reconciling.
	EntityDirty = 1
	// EntityRekey awaits reconciling and rebuilding its identity keys
	// (its values were changed outside a reconciliation).
	EntityRekey = 2
)

// Entity is one person.
type Entity struct {
	ID      int64
	Fields  Values
	Dirty   int
	Deleted bool
}

// Origin says where an entity's agreed value of a field came from.
type Origin struct {
	// Connector is the CRM whose value it is.
	Connector string `json:"c"`
	// At is when that CRM changed it (its modified time, or when syncd
	// pulled it).
	At time.Time `json:"at"`
	// Run is the run that agreed on it.
	Run int64 `json:"run"`
	// How names the rule: "created", "changed", "first value", "fill",
	// "conflict" or "resolved".
	How string `json:"how"`
}

// AllFields is the Origins key that stands for every field not named.
const AllFields = "*"

// CreateEntity inserts a dirty entity with fields, every one of them from
// origin, and returns its id.
func (w *WriteTx) CreateEntity(fields Values, origin Origin, now time.Time) (int64, error) {
	orig, err := OriginsJSON(origin)
	if err != nil {
		return 0, err
	}
	res, err := w.exec(`INSERT INTO entities (fields, dirty, created_at, origins) VALUES (?, 1, ?, ?)`, EncodeValues(fields), TimeText(now), orig)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// GetEntity returns an entity; found is false when it does not exist.
func (w *WriteTx) GetEntity(id int64) (e Entity, found bool, err error) {
	var fields string
	var del sql.NullString
	err = w.queryRow(`SELECT fields, dirty, deleted_at FROM entities WHERE id = ?`, id).Scan(&fields, &e.Dirty, &del)
	if err == sql.ErrNoRows {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	e.ID = id
	e.Deleted = del.Valid
	e.Fields, err = DecodeValues(fields)
	return e, true, err
}

// SetEntityFields stores an entity's agreed values, and where the values
// that changed came from (merged into the origins already stored).
func (w *WriteTx) SetEntityFields(id int64, fields Values, origins map[string]Origin) error {
	if len(origins) == 0 {
		_, err := w.exec(`UPDATE entities SET fields = ? WHERE id = ?`, EncodeValues(fields), id)
		return err
	}
	orig, err := json.Marshal(origins)
	if err != nil {
		return err
	}
	_, err = w.exec(`UPDATE entities SET fields = ?, origins = json_patch(origins, ?) WHERE id = ?`, EncodeValues(fields), string(orig), id)
	return err
}

// MarkEntityDirty raises an entity's dirty level to at least level.
func (w *WriteTx) MarkEntityDirty(id int64, level int) error {
	_, err := w.exec(`UPDATE entities SET dirty = ? WHERE id = ? AND dirty < ?`, level, id, level)
	return err
}

// DeleteEntity marks an entity deleted and drops its identity keys, so no
// record matches it again.
func (w *WriteTx) DeleteEntity(id int64, at time.Time) error {
	if _, err := w.exec(`UPDATE entities SET deleted_at = ?, dirty = 0 WHERE id = ?`, TimeText(at), id); err != nil {
		return err
	}
	_, err := w.exec(`DELETE FROM identity_keys WHERE entity_id = ?`, id)
	return err
}

// CountLiveEntities returns the number of entities not deleted.
func (w *WriteTx) CountLiveEntities() (int64, error) {
	var n int64
	err := w.queryRow(`SELECT count(*) FROM entities WHERE deleted_at IS NULL`).Scan(&n)
	return n, err
}

// IdentityKey is one matching key of an entity.
type IdentityKey struct {
	// Kind is "email", "phone" or "key:<canonical field>".
	Kind, Value string
}

// matchKeys is how many keys one query of MatchIdentities looks up.
const matchKeys = 250

// matchIdentitiesQuery looks up n keys, bound as kind and value pairs
// (bytes as they are, as they were stored).
func matchIdentitiesQuery(n int) string {
	return `WITH j(kind, value) AS (VALUES ` + rowList(n, `(?, ?)`) +
		`) SELECT k.kind, k.value, k.entity_id FROM j CROSS JOIN identity_keys AS k ON k.kind = j.kind AND k.value = j.value`
}

// MatchIdentities returns, for each of keys that any live entity holds,
// the entities holding it: a query per 250 keys instead of one per key.
// Keys given twice are looked up once.
func (w *WriteTx) MatchIdentities(keys []IdentityKey) (map[IdentityKey][]int64, error) {
	seen := make(map[IdentityKey]bool, len(keys))
	keys = slices.DeleteFunc(slices.Clone(keys), func(k IdentityKey) bool {
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
	out := map[IdentityKey][]int64{}
	for part := range slices.Chunk(keys, matchKeys) {
		n := len(part)
		args := make([]any, 0, 2*n)
		for _, k := range part {
			args = append(args, k.Kind, k.Value)
		}
		var k IdentityKey
		var id int64
		err := w.query(matchIdentitiesQuery(n), func(rows *sql.Rows) error {
			if err := rows.Scan(&k.Kind, &k.Value, &id); err != nil {
				return err
			}
			out[k] = append(out[k], id)
			return nil
		}, args...)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// HasIdentityKeys reports whether any identity key is stored.
func (w *WriteTx) HasIdentityKeys() (bool, error) {
	var has bool
	err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM identity_keys)`).Scan(&has)
	return has, err
}

// keyRows is how many keys one INSERT of AddIdentityKeyBatch carries.
const keyRows = 100

// EntityKey is an identity key of one entity.
type EntityKey struct {
	EntityID int64
	IdentityKey
}

// AddIdentityKeyBatch adds keys to entities, several per statement.
func (w *WriteTx) AddIdentityKeyBatch(keys []EntityKey) error {
	for part := range slices.Chunk(keys, keyRows) {
		n := len(part)
		args := make([]any, 0, 3*n)
		for _, k := range part {
			args = append(args, k.Kind, k.Value, k.EntityID)
		}
		q := `INSERT OR IGNORE INTO identity_keys (kind, value, entity_id) VALUES ` + rowList(n, `(?, ?, ?)`)
		if _, err := w.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}

// SetIdentityKeys replaces an entity's keys with keys. Only the keys
// that change are written: a contact whose mobile number changed
// rewrites that key, not its email addresses and other numbers too.
func (w *WriteTx) SetIdentityKeys(entityID int64, keys []IdentityKey) error {
	args := make([]any, 0, 1+2*len(keys))
	args = append(args, entityID)
	q := `DELETE FROM identity_keys WHERE entity_id = ?`
	if len(keys) > 0 {
		q += ` AND (kind, value) NOT IN (VALUES ` + rowList(len(keys), `(?, ?)`) + `)`
	}
	ek := make([]EntityKey, len(keys))
	for i, k := range keys {
		args = append(args, k.Kind, k.Value)
		ek[i] = EntityKey{EntityID: entityID, IdentityKey: k}
	}
	if _, err := w.exec(q, args...); err != nil {
		return err
	}
	return w.AddIdentityKeyBatch(ek)
}

// DirtyEntity is a dirty entity with its links, as one chunk of a
// reconciliation reads them.
type DirtyEntity struct {
	Entity
	Links []Link
}

const dirtyEntityBatchQuery = `WITH ids AS (SELECT id, fields, dirty, deleted_at FROM entities WHERE dirty <> 0 AND id > ? ORDER BY id LIMIT ?)
	SELECT ids.id, ids.fields, ids.dirty, ids.deleted_at, r.connector, r.remote_id,
		CASE WHEN r.fields IS NOT ids.fields THEN r.fields END, r.fields IS ids.fields,
		CASE WHEN r.synced IS NOT r.fields THEN r.synced END, r.synced IS r.fields, r.modified_at, r.pulled_at, r.deleted_at
	FROM ids LEFT JOIN records r ON r.entity_id = ids.id ORDER BY ids.id, r.connector`

// DirtyEntityBatch returns up to limit live or deleted dirty entities
// after id after, ascending, each with its links (live and deleted,
// ordered by connector): one query for a chunk instead of two per
// entity.
func (w *WriteTx) DirtyEntityBatch(after int64, limit int) ([]DirtyEntity, error) {
	var out []DirtyEntity
	// Scanned into once for all rows (declared in the func, each row's
	// would be allocated anew).
	var (
		id                           int64
		efields                      string
		dirty                        int
		edel                         sql.NullString
		conn, remote, fields, pulled sql.NullString
		synced, mod, del             sql.NullString
		agreed, same                 sql.NullBool
	)
	err := w.query(dirtyEntityBatchQuery, func(rows *sql.Rows) error {
		// A snapshot equal to the entity's values, and a base equal to
		// the snapshot (most links), are not read twice: they are the
		// same map (see Link).
		if err := rows.Scan(&id, &efields, &dirty, &edel, &conn, &remote, &fields, &agreed, &synced, &same, &mod, &pulled, &del); err != nil {
			return err
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			ef, err := DecodeValues(efields)
			if err != nil {
				return err
			}
			out = append(out, DirtyEntity{Entity: Entity{ID: id, Fields: ef, Dirty: dirty, Deleted: edel.Valid}})
		}
		if !conn.Valid {
			return nil
		}
		var decoded Values
		if agreed.Bool {
			fields.String, decoded = efields, out[len(out)-1].Fields
		}
		if same.Bool {
			synced = sql.NullString{String: fields.String, Valid: true}
		}
		l, err := decodeLink(conn.String, remote.String, fields.String, decoded, synced, mod, pulled.String, del)
		if err != nil {
			return err
		}
		d := &out[len(out)-1]
		d.Links = append(d.Links, l)
		return nil
	}, after, limit)
	return out, err
}

// syncLinksQuery goes through the entities' links (records_link): left
// to itself the planner can prefer walking every live record of the
// connectors.
const syncLinksQuery = `UPDATE records INDEXED BY records_link SET synced = fields
	WHERE entity_id IN (SELECT value FROM json_each(?)) AND connector IN (SELECT value FROM json_each(?))
		AND deleted_at IS NULL AND synced IS NOT fields`

// SyncLinks makes the pulled snapshot the synced base of every live
// record of connectors linked to the entities ids, where it is not
// already: what a reconciliation of those entities settles.
func (w *WriteTx) SyncLinks(ids []int64, connectors []string) error {
	if len(ids) == 0 || len(connectors) == 0 {
		return nil
	}
	_, err := w.exec(syncLinksQuery, jsonIDs(ids), jsonStrings(connectors))
	return err
}

const clearEntitiesDirtyQuery = `UPDATE entities SET dirty = 0 WHERE id IN (SELECT value FROM json_each(?)) AND dirty <> 0`

// ClearEntitiesDirty marks the entities ids reconciled.
func (w *WriteTx) ClearEntitiesDirty(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := w.exec(clearEntitiesDirtyQuery, jsonIDs(ids))
	return err
}

// jsonIDs writes ids as a JSON array, for json_each.
func jsonIDs(ids []int64) string {
	return jsonArray(ids, 8, func(b []byte, id int64) []byte { return strconv.AppendInt(b, id, 10) })
}

// jsonStrings writes strings as a JSON array, for json_each.
func jsonStrings(ss []string) string { return jsonArray(ss, 16, appendJSONString) }

// jsonArray writes xs as a JSON array, each element by add; size is a
// guess of an element's length.
func jsonArray[T any](xs []T, size int, add func([]byte, T) []byte) string {
	b := make([]byte, 0, size*len(xs)+2)
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = add(b, x)
	}
	return string(append(b, ']'))
}

// NewEntity is an entity to insert with a chosen id (see MaxEntityID).
type NewEntity struct {
	ID     int64
	Fields Values
	// Encoded is Fields as EncodeValues writes them, when the caller has
	// it already (an entity made from a record just mapped).
	Encoded string
	// Origins is the JSON of the entity's origins (see OriginsJSON).
	Origins string
	Created time.Time
}

// MaxEntityID returns the largest entity id in use (0 for none). Ids
// above it are free for InsertEntities within the same transaction:
// entities are never removed, only marked deleted, so an id is never
// used twice.
func (w *WriteTx) MaxEntityID() (int64, error) {
	var n int64
	err := w.queryRow(`SELECT coalesce(max(id), 0) FROM entities`).Scan(&n)
	return n, err
}

// OriginsJSON is the origins column of an entity whose every field came
// from origin.
func OriginsJSON(origin Origin) (string, error) {
	b, err := json.Marshal(map[string]Origin{AllFields: origin})
	return string(b), err
}

// entityRows is how many entities one INSERT of InsertEntities carries.
const entityRows = 100

// InsertEntities inserts dirty entities, several per statement.
func (w *WriteTx) InsertEntities(ents []NewEntity) error {
	for part := range slices.Chunk(ents, entityRows) {
		n := len(part)
		args := make([]any, 0, 4*n)
		var created time.Time
		var createdText string
		for _, e := range part {
			enc := e.Encoded
			if enc == "" {
				enc = EncodeValues(e.Fields)
			}
			// A chunk's entities are made at one time.
			if createdText == "" || !e.Created.Equal(created) {
				created, createdText = e.Created, TimeText(e.Created)
			}
			args = append(args, e.ID, enc, createdText, e.Origins)
		}
		q := `INSERT INTO entities (id, fields, dirty, created_at, origins) VALUES ` + rowList(n, `(?, ?, 1, ?, ?)`)
		if _, err := w.exec(q, args...); err != nil {
			return err
		}
	}
	return nil
}
