package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/syncd/syncd/internal/mapping"
	"github.com/syncd/syncd/internal/state"
)

// chunk is how many records or entities one transaction handles.
const chunk = 500

// entityChunk is how many entities a transaction of reconciling handles:
// fewer than chunk, since a chunk waits, read and merged, while the one
// before is written, and a merged entity with its planned writes takes
// several times the memory of a dirty record.
const entityChunk = 250

// link gives every dirty live record an entity: a linked record marks its
// entity for reconciling; an unlinked one is matched by identity (email,
// then phone, then the configured keys) or, from a readable connector,
// becomes a new entity. Ambiguous matches are parked, never merged.
func (r *run) link(ctx context.Context) error {
	if err := r.countPending(); err != nil {
		return err
	}
	// Linking is bound by the writer: reading ahead took about 10 % off
	// its time in the engine benchmark but added 3 MB to the peak memory
	// of a 10,000-contact first sync.
	p := chunked[linkRecord]{read: readDirtyRecords, size: chunk, prepare: r.addKeys, last: func(d *linkRecord) int64 { return d.Row }, inline: true}
	return inChunks(ctx, r, "link", p, r.linkChunk)
}

// countPending notes whether the store holds parked records or open
// outbox items, which linking then has to look at for each record.
func (r *run) countPending() error {
	return r.update(func(w *state.WriteTx) error {
		n, err := w.CountParked()
		r.anyParked = n > 0
		if err == nil {
			n, err = w.CountOpenOutbox()
			r.anyOutbox = n > 0
		}
		return err
	})
}

// filterKeys starts the run's key filter when the store holds no
// identity key (see keyFilter). Not in a dry run, whose writes are
// rolled back.
func (r *run) filterKeys() error {
	if r.dry {
		return nil
	}
	return r.update(func(w *state.WriteTx) error {
		has, err := w.HasIdentityKeys()
		if err == nil && !has {
			r.keys = newKeyFilter()
		}
		return err
	})
}

// keysStored adds keys a transaction stored to the run's key filter.
// (Keys of a transaction rolled back stay in it: a filter may answer
// yes for a key nobody holds.)
func (r *run) keysStored(keys ...state.IdentityKey) {
	if r.keys == nil {
		return
	}
	for _, k := range keys {
		r.keys.add(k)
	}
}

// linkChunk links a chunk of dirty records (read and given their keys
// by readDirtyRecords and addKeys) in the write transaction w.
func (r *run) linkChunk(w *state.WriteTx, recs []linkRecord) error {
	lc, err := r.linkRecords(w, recs)
	if err != nil {
		return err
	}
	lc.countMatched(r)
	return nil
}

// linkRecords links a chunk of records in the write transaction w: dirty
// stored ones, or (with Row 0) records about to be stored, whose links
// it leaves in the chunk's fresh map for the caller to store with them.
func (r *run) linkRecords(w *state.WriteTx, recs []linkRecord) (*linkChunk, error) {
	lc, err := r.startChunk(w, recs)
	if err != nil {
		return nil, err
	}
	for _, d := range recs {
		if err := r.linkOne(w, d, lc); err != nil {
			return nil, fmt.Errorf("link %s/%s: %w", d.Connector, d.RemoteID, err)
		}
	}
	if err := lc.flush(w); err != nil {
		return nil, err
	}
	for _, k := range lc.keys {
		r.keysStored(k.IdentityKey)
	}
	return lc, nil
}

// linkRecord is a dirty record with its identity keys (of an unlinked
// record of a configured connector).
type linkRecord struct {
	state.DirtyRecord
	keys []state.IdentityKey
	// encoded is Fields encoded, for a record just mapped (see
	// state.NewEntity).
	encoded string
}

// readDirtyRecords reads up to size dirty records after after.
func readDirtyRecords(rd storeReader, after int64, size int) ([]linkRecord, error) {
	dirty, err := rd.DirtyRecords(after, size)
	if err != nil {
		return nil, err
	}
	recs := make([]linkRecord, len(dirty))
	for i, d := range dirty {
		recs[i].DirtyRecord = d
	}
	return recs, nil
}

// addKeys works out the identity keys of the unlinked records of
// configured connectors, on every core.
func (r *run) addKeys(recs []linkRecord) {
	spread(len(recs), func(i int) {
		d := &recs[i]
		if d.EntityID == 0 && r.e.byName[d.Connector] != nil {
			d.keys = r.e.identityKeys(d.Fields)
		}
	})()
}

// linkChunk is what one chunk of linking sees and makes. Matching reads
// the identity keys of the store once (those of the chunk's records) and
// adds the keys of the entities the chunk makes: linking only adds keys,
// so the set stays exact through the chunk. The new entities, their keys
// and the new links are written in bulk when the chunk ends (flush);
// until then linked holds the links the chunk made.
type linkChunk struct {
	known    map[state.IdentityKey][]int64
	keys     []state.EntityKey
	entities []state.NewEntity
	links    []state.RecordLink
	// linked holds the records the chunk linked, by entity and
	// connector.
	linked map[state.EntityConnector]string
	// nextID is the id of the next new entity.
	nextID int64
	// origins memoises the origins JSON of new entities.
	origins map[state.Origin]string
	// now is when the chunk links (one time for the chunk, so that the
	// origins of its new entities are written once per connector).
	now time.Time
	// fresh holds the links of records not stored yet, by remote id.
	fresh map[string]freshLink
	// matched counts, per connector, the records linked to an existing
	// entity; they reach the run's report once the chunk is done.
	matched map[string]int
	// stored holds the links of the stored entities that any key of the
	// chunk matched, as the chunk began.
	stored map[state.EntityConnector]state.LinkRef
}

// freshLink is the link of a record not stored yet: its entity, and
// whether its snapshot is the link's base.
type freshLink struct {
	entity int64
	base   bool
}

// countMatched adds the chunk's matches to the run's report.
func (c *linkChunk) countMatched(r *run) {
	for name, n := range c.matched {
		r.count(name, func(cr *ConnectorReport) { cr.Matched += n })
	}
}

// newEntity gives the record d a new entity, every value from origin,
// with the identity keys keys.
func (c *linkChunk) newEntity(d state.DirtyRecord, encoded string, origin state.Origin, keys []state.IdentityKey, now time.Time) error {
	orig, ok := c.origins[origin]
	if !ok {
		var err error
		if orig, err = state.OriginsJSON(origin); err != nil {
			return err
		}
		c.origins[origin] = orig
	}
	c.nextID++
	ent := c.nextID
	c.entities = append(c.entities, state.NewEntity{ID: ent, Fields: d.Fields, Encoded: encoded, Origins: orig, Created: now})
	for _, key := range keys {
		c.known[key] = append(c.known[key], ent)
		c.keys = append(c.keys, state.EntityKey{EntityID: ent, IdentityKey: key})
	}
	c.linkAs(d, ent, true)
	return nil
}

// link links the record d to the entity ent.
func (c *linkChunk) link(d state.DirtyRecord, ent int64) { c.linkAs(d, ent, false) }

// linkAs links the record d to the entity ent; with base, d's values are
// the link's synced base (the entity was made from them, so they are
// what both agree on), and reconciling has no base to write for it.
func (c *linkChunk) linkAs(d state.DirtyRecord, ent int64, base bool) {
	if d.Row == 0 {
		c.fresh[d.RemoteID] = freshLink{entity: ent, base: base}
	} else {
		c.links = append(c.links, state.RecordLink{Row: d.Row, EntityID: ent, Base: base})
	}
	c.linked[state.EntityConnector{EntityID: ent, Connector: d.Connector}] = d.RemoteID
}

// linkedRecord returns the record of connector linked to the entity ent,
// counting the chunk's own links. A stored entity a record can match is
// one that a key of the chunk matched as it began (known), whose links
// the chunk read then (stored); since then only the chunk linked
// records to it.
func (c *linkChunk) linkedRecord(ent int64, connector string) (remoteID string, deleted, found bool) {
	if id, ok := c.linked[state.EntityConnector{EntityID: ent, Connector: connector}]; ok {
		return id, false, true
	}
	l, ok := c.stored[state.EntityConnector{EntityID: ent, Connector: connector}]
	return l.RemoteID, l.Deleted, ok
}

// flush writes what the chunk made: entities, then their keys and the
// links that refer to them.
func (c *linkChunk) flush(w *state.WriteTx) error {
	if err := w.InsertEntities(c.entities); err != nil {
		return err
	}
	if err := w.AddIdentityKeyBatch(c.keys); err != nil {
		return err
	}
	return w.LinkRecords(c.links)
}

// startChunk reads the stored entities holding any key of the chunk's
// unlinked records, and where new entity ids start.
func (r *run) startChunk(w *state.WriteTx, recs []linkRecord) (*linkChunk, error) {
	var want []state.IdentityKey
	for _, d := range recs {
		for _, k := range d.keys {
			if r.keys == nil || r.keys.mayHold(k) {
				want = append(want, k)
			}
		}
	}
	known, err := w.MatchIdentities(want)
	if err != nil {
		return nil, err
	}
	last, err := w.MaxEntityID()
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, ents := range known {
		ids = append(ids, ents...)
	}
	slices.Sort(ids)
	stored, err := w.LinksOf(slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	return &linkChunk{known: known, linked: map[state.EntityConnector]string{}, nextID: last, origins: map[state.Origin]string{}, now: r.e.now(),
		fresh: map[string]freshLink{}, matched: map[string]int{}, stored: stored}, nil
}

func (r *run) linkOne(w *state.WriteTx, lr linkRecord, lc *linkChunk) error {
	d := lr.DirtyRecord
	cn := r.e.byName[d.Connector]
	if cn == nil {
		// A connector no longer configured: its records wait.
		return w.ClearRecordDirty(d.Connector, d.RemoteID)
	}
	if d.EntityID != 0 {
		if err := w.MarkEntityDirty(d.EntityID, state.EntityDirty); err != nil {
			return err
		}
		return w.ClearRecordDirty(d.Connector, d.RemoteID)
	}
	matches, kind := r.e.match(lc.known, lr.keys)
	switch {
	case len(matches) > 1:
		reason := fmt.Sprintf("matches %d different contacts by %s", len(matches), kind)
		return r.park(w, d, reason, matches)
	case len(matches) == 1:
		ent := matches[0]
		other, deleted, found := lc.linkedRecord(ent, cn.name)
		if found && !deleted {
			reason := fmt.Sprintf("matches contact %d by %s, which is already linked to %s record %s", ent, kind, cn.name, other)
			return r.park(w, d, reason, matches)
		}
		if found {
			// The person was deleted in this CRM and made again: the new
			// record takes the old one's place.
			if err := w.UnlinkRecord(cn.name, other); err != nil {
				return err
			}
		}
		lc.link(d, ent)
		// A create that reached the CRM before a crash is now linked.
		if r.anyOutbox {
			if _, err := w.CancelCreates(ent, cn.name); err != nil {
				return err
			}
		}
		if err := w.MarkEntityDirty(ent, state.EntityDirty); err != nil {
			return err
		}
		lc.matched[cn.name]++
		return r.unpark(w, cn.name, d.RemoteID)
	}
	if !cn.readable {
		// Push connectors receive only: their own records found no
		// person and stay unlinked.
		return w.ClearRecordDirty(cn.name, d.RemoteID)
	}
	if err := lc.newEntity(d, lr.encoded, state.Origin{Connector: cn.name, At: lc.now.UTC(), Run: r.id, How: "created"}, lr.keys, lc.now); err != nil {
		return err
	}
	return r.unpark(w, cn.name, d.RemoteID)
}

// unpark clears a record's parking, when anything is parked at all.
func (r *run) unpark(w *state.WriteTx, connector, remoteID string) error {
	if !r.anyParked {
		return nil
	}
	return w.Unpark(connector, remoteID)
}

func (r *run) park(w *state.WriteTx, d state.DirtyRecord, reason string, matches []int64) error {
	if r.dry {
		fmt.Fprintf(r.out, "park %s %s: %s\n", d.Connector, d.RemoteID, reason)
	}
	r.anyParked = true
	if err := w.Park(d.Connector, d.RemoteID, reason, matches, r.e.now()); err != nil {
		return err
	}
	return w.ClearRecordDirty(d.Connector, d.RemoteID)
}

// identityKinds are the key kinds in matching order after the configured
// extra keys are appended.
func (e *Engine) identityKinds() []string {
	kinds := []string{"email", "phone"}
	for _, k := range e.cfg.Identity.Keys {
		kinds = append(kinds, "key:"+k)
	}
	return kinds
}

// identityFields says which canonical fields feed each built-in kind.
var identityFields = map[string][]string{
	"email": {"email", "email2"},
	"phone": {"phone", "mobile"},
}

// identityKeys returns the matching keys of canonical values.
func (e *Engine) identityKeys(v state.Values) []state.IdentityKey {
	var keys []state.IdentityKey
	for _, kind := range e.identityKinds() {
		keys = append(keys, e.keysOf(kind, v)...)
	}
	return keys
}

func (e *Engine) keysOf(kind string, v state.Values) []state.IdentityKey {
	fields, ok := identityFields[kind]
	if !ok {
		fields = []string{kind[len("key:"):]}
	}
	var keys []state.IdentityKey
	for _, f := range fields {
		if v[f] == "" {
			continue
		}
		if k := e.identityKey(f, v[f]); k != "" && !slices.Contains(keys, state.IdentityKey{Kind: kind, Value: k}) {
			keys = append(keys, state.IdentityKey{Kind: kind, Value: k})
		}
	}
	return keys
}

// match returns the entities a record's identity keys (keys, as
// identityKeys gives them) match by the first key kind that matches
// anything (known holds the entities of each key), and a
// description of the match. When that kind names one entity but a later
// kind matches only other entities (the e-mail is one person's, the
// phone another's), all of them are returned, so the record is parked
// rather than merged into either. A later kind that also matches the
// chosen entity (a phone several people share) agrees with it.
func (e *Engine) match(known map[state.IdentityKey][]int64, keys []state.IdentityKey) ([]int64, string) {
	var chosen []int64
	var how string
	for _, kind := range e.identityKinds() {
		var found []int64
		for _, k := range keys {
			if k.Kind != kind {
				continue
			}
			for _, id := range known[k] {
				if !slices.Contains(found, id) {
					found = append(found, id)
				}
			}
		}
		if len(found) == 0 {
			continue
		}
		slices.Sort(found)
		if chosen == nil {
			if len(found) > 1 {
				return found, kind
			}
			chosen, how = found, kind
			continue
		}
		if slices.Contains(found, chosen[0]) {
			continue
		}
		all := slices.Concat(chosen, found)
		return all, fmt.Sprintf("%s (contact %d) and %s (contact %s)", how, chosen[0], kind, joinIDs(found))
	}
	return chosen, how
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ", ")
}

// keysDiffer reports whether two value sets give different identity keys.
func (e *Engine) keysDiffer(a, b state.Values) bool {
	for _, kind := range e.identityKinds() {
		fields, ok := identityFields[kind]
		if !ok {
			fields = []string{kind[len("key:"):]}
		}
		for _, f := range fields {
			if a[f] != b[f] {
				return true
			}
		}
	}
	return false
}

// identityKey is mapping.IdentityKey, sparing the phone parser for values
// that are already plain E.164 (as canonical values are).
func (e *Engine) identityKey(field, value string) string {
	if kind := field; kind == "phone" || kind == "mobile" {
		if plainE164(value) {
			return value
		}
	}
	return mapping.IdentityKey(field, value, e.region)
}

func plainE164(v string) bool {
	if len(v) < 4 || v[0] != '+' {
		return false
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}
