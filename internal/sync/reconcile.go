package engine

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/syncd/syncd/internal/state"
)

// reconcileAheadAfter is how many entities reconciliation reads through
// the writer, with the pushes beside it, before it reads ahead on a
// reader connection. Reading ahead took the engine benchmark's first
// sync (150,000 entities) from 14,800-17,200 to 18,100-18,500
// contacts/s, and added about 5 MB to the peak memory of a
// 10,000-contact vCard first sync, which stays under this.
const reconcileAheadAfter = 20_000

// reconcile merges every dirty entity and plans its writes into the
// outbox, a chunk of entities per transaction (see inChunks).
func (r *run) reconcile(ctx context.Context) error {
	p := chunked[prepared]{read: r.readEntities, size: entityChunk, last: func(p *prepared) int64 { return p.d.ID },
		prepare:   func(ents []prepared) { spread(len(ents), func(i int) { r.prepare(&ents[i]) })() },
		committed: r.planned, split: r.beside != nil, aheadAfter: r.e.aheadAfter}
	return inChunks(ctx, r, "reconcile", p, func(w *state.WriteTx, ents []prepared) error {
		var p plan
		for i := range ents {
			if err := r.reconcileOne(w, &ents[i], &p); err != nil {
				return fmt.Errorf("reconcile contact %d: %w", ents[i].d.ID, err)
			}
		}
		return r.commitPlan(w, &p)
	})
}

// countOpen notes whether the store holds open conflicts or outbox
// items, which reconciling then reads for each entity.
func (r *run) countOpen() error {
	return r.update(func(w *state.WriteTx) error {
		n, err := w.CountOpenConflicts()
		r.anyOpenConflict = n > 0
		if err == nil {
			n, err = w.CountOpenOutbox()
			r.anyOutbox = n > 0
		}
		if err == nil {
			r.outboxID, err = w.MaxOutboxID()
		}
		return err
	})
}

// planned hands the drains running beside reconciliation the items a
// committed chunk planned for their connectors.
func (r *run) planned(ents []prepared) {
	if r.beside == nil {
		return
	}
	n := map[string]int{}
	for i := range ents {
		for _, it := range ents[i].items {
			n[it.Connector]++
		}
	}
	for name, k := range n {
		if f := r.beside[name]; f != nil {
			f.add(k)
		}
	}
}

// readEntities reads up to size dirty entities after after through rd,
// with their open conflicts and outbox items when the store has any.
func (r *run) readEntities(rd storeReader, after int64, size int) ([]prepared, error) {
	batch, err := rd.DirtyEntityBatch(after, size)
	if err != nil {
		return nil, err
	}
	ents := make([]prepared, len(batch))
	for i := range batch {
		e := &ents[i]
		e.d = batch[i]
		if e.d.Deleted {
			continue
		}
		if r.anyOpenConflict {
			if e.open, err = rd.OpenConflicts(e.d.ID); err != nil {
				return nil, fmt.Errorf("reconcile contact %d: %w", e.d.ID, err)
			}
		}
		if r.anyOutbox {
			if e.stored, err = rd.EntityOutbox(e.d.ID); err != nil {
				return nil, fmt.Errorf("reconcile contact %d: %w", e.d.ID, err)
			}
		}
	}
	return ents, nil
}

// plan gathers the writes of a chunk of reconciliations that are made in
// bulk when the chunk ends: the new synced bases, the entities left clean
// and the planned outbox items.
type plan struct {
	synced []int64
	clean  []int64
	outbox []state.OutboxItem
}

// commitPlan makes a chunk's bulk writes. The planned items take rising
// ids: a drain beside reconciliation reads them in id order after the
// last one it read, and deletes what it sent meanwhile.
func (r *run) commitPlan(w *state.WriteTx, p *plan) error {
	for i := range p.outbox {
		r.outboxID++
		p.outbox[i].ID = r.outboxID
	}
	if err := w.SyncLinks(p.synced, r.e.names); err != nil {
		return err
	}
	if err := w.ClearEntitiesDirty(p.clean); err != nil {
		return err
	}
	return w.AddOutboxBatch(p.outbox, r.e.now())
}

// spreadMin is the fewest items spread gives a goroutine of its own.
const spreadMin = 64

// spread calls fn(i) for every i in [0, n) on up to GOMAXPROCS goroutines
// (at least spreadMin items each) and returns at once. The returned func
// waits for them and re-raises a panic of fn in its caller's goroutine,
// where the run's recovery catches it. Work too small to share is done
// before spread returns.
func spread(n int, fn func(i int)) (wait func()) {
	workers := min(runtime.GOMAXPROCS(0), n/spreadMin+1)
	if workers == 1 {
		for i := range n {
			fn(i)
		}
		return func() {}
	}
	var wg sync.WaitGroup
	var once sync.Once
	var panicked any
	for k := range workers {
		wg.Go(func() {
			defer func() {
				if v := recover(); v != nil {
					once.Do(func() { panicked = v })
				}
			}()
			for i := k; i < n; i += workers {
				fn(i)
			}
		})
	}
	return func() {
		wg.Wait()
		if panicked != nil {
			panic(panicked)
		}
	}
}

// prepared is one dirty entity as read and merged: its live sides, the
// outbox items stored for it and those its merge plans. Making it writes
// nothing; reconcileOne writes it.
type prepared struct {
	d     state.DirtyEntity
	sides []side
	// settled says every side's base already is its snapshot, so that
	// there is no new base to write (state.Link.Settled).
	settled bool
	// present holds the connectors linked to the entity (live or not).
	present map[string]bool
	// open holds the entity's open conflicts (when the store has any).
	open map[string]state.Conflict
	// stored are the entity's open outbox items (when the store has any);
	// attempted holds the connectors one of them was sent to.
	stored    []state.OutboxItem
	attempted map[string]bool
	res       mergeResult
	// items are the planned updates, one per side, then the creates.
	items []state.OutboxItem
	// keepDirty is set when a create had to wait for a connector whose
	// pull did not finish.
	keepDirty bool
}

// prepare merges p's entity and plans its updates and creates, with their
// CRM fields. It reads only p and the run's settled state, so the
// entities of a chunk are prepared at once.
func (r *run) prepare(p *prepared) {
	e := r.e
	d := &p.d
	if d.Deleted {
		return
	}
	p.present = map[string]bool{}
	liveReadable := false
	for _, l := range d.Links {
		p.present[l.Connector] = true
		cn := e.byName[l.Connector]
		if cn == nil || l.Deleted {
			continue
		}
		p.sides = append(p.sides, side{cn: cn, link: l})
		liveReadable = liveReadable || cn.readable
	}
	p.settled = true
	for _, s := range p.sides {
		p.settled = p.settled && s.link.Settled
	}
	p.res = e.merge(d.ID, d.Fields, p.sides, p.open, r.id)
	res := &p.res
	// What the writer does not need is let go here: chunks wait in line
	// for the writer, and the links' values are most of their memory
	// (only a dry run prints them).
	defer func() {
		if !r.dry {
			for i := range p.sides {
				p.sides[i].link.Fields, p.sides[i].link.Synced = nil, nil
			}
			d.Links, p.open = nil, nil
		}
	}()
	for _, it := range p.stored {
		if it.State == state.OutboxAttempted {
			if p.attempted == nil {
				p.attempted = map[string]bool{}
			}
			p.attempted[it.Connector] = true
		}
	}
	for _, s := range p.sides {
		changed := res.updates[s.cn.name]
		if len(changed) == 0 {
			continue
		}
		snapshot := maps.Clone(s.link.Fields)
		for _, f := range changed {
			snapshot[f] = res.fields[f]
		}
		p.items = append(p.items, state.OutboxItem{EntityID: d.ID, Connector: s.cn.name, Op: state.OpUpdate, RemoteID: s.link.RemoteID,
			Fields: s.cn.mapper.ToRemote(changed, res.fields), Canonical: snapshot, RunID: r.id})
	}
	if !liveReadable {
		return
	}
	for _, cn := range e.conns {
		if !cn.writable || p.present[cn.name] || p.attempted[cn.name] {
			continue
		}
		r.mu.Lock()
		pulled := r.pulled[cn.name]
		r.mu.Unlock()
		if !pulled {
			// Its existing records are unknown this run: creating now
			// could duplicate a person. Try again next run.
			p.keepDirty = true
			continue
		}
		// A create is planned as attempted, with this run's attempt: the
		// drain of this run sends it without marking it first, and one
		// that a crash left unsent waits, as a sent one would, for a pull
		// to show the CRM lacks the person (its pull finished now, or the
		// create would not be planned).
		p.items = append(p.items, state.OutboxItem{EntityID: d.ID, Connector: cn.name, Op: state.OpCreate,
			Fields: cn.mapper.CreateFields(res.fields), Canonical: cn.createCanonical(res.fields), RunID: r.id,
			State: state.OutboxAttempted, Attempts: 1})
	}
}

// reconcileOne writes what prepare decided for one entity; the writes
// every entity makes go into p, the rest are made here.
func (r *run) reconcileOne(w *state.WriteTx, pe *prepared, p *plan) error {
	e := r.e
	ent, id, res := pe.d.Entity, pe.d.ID, &pe.res
	if ent.Deleted {
		p.clean = append(p.clean, id)
		return nil
	}
	now := e.now()
	if !maps.Equal(res.fields, ent.Fields) {
		var origins map[string]state.Origin
		for f, o := range res.origins {
			if v, had := ent.Fields[f]; !had || v != res.fields[f] {
				if origins == nil {
					origins = map[string]state.Origin{}
				}
				origins[f] = o
			}
		}
		if err := w.SetEntityFields(id, res.fields, origins); err != nil {
			return err
		}
	}
	if ent.Dirty == state.EntityRekey || e.keysDiffer(res.fields, ent.Fields) {
		keys := e.identityKeys(res.fields)
		if err := w.SetIdentityKeys(id, keys); err != nil {
			return err
		}
		r.keysStored(keys...)
	}
	for _, c := range res.conflicts {
		if _, err := w.AddConflict(c, now); err != nil {
			return err
		}
		for name := range c.Candidates {
			r.count(name, func(cr *ConnectorReport) { cr.Conflicts++ })
		}
		if r.dry {
			fmt.Fprintf(r.out, "conflict contact %d %s: %s → %s (%s)\n", id, c.Field, formatCandidates(c.Candidates), orOpen(c.Decision, c.Status), c.Reason)
		}
	}
	for _, c := range res.reopened {
		if err := w.SetConflictCandidates(c.ID, c.Candidates); err != nil {
			return err
		}
	}
	// Each link's current values are now accounted for: they are its new
	// base. Values still to be written are in the outbox.
	if len(pe.sides) > 0 && !pe.settled {
		p.synced = append(p.synced, id)
	}
	// The new plan replaces what an earlier run planned and did not send.
	replan := false
	for _, it := range pe.stored {
		if it.State != state.OutboxAttempted {
			replan = true
			continue
		}
		// An attempted create stays (it may have reached the CRM), but if
		// it is sent again it must carry the values agreed now: once it
		// succeeds its values become the link's base, and a change made
		// since it was planned would never be pushed.
		if cn := e.byName[it.Connector]; cn != nil && it.Op == state.OpCreate && !pe.present[cn.name] {
			if canon := cn.createCanonical(res.fields); !maps.Equal(canon, it.Canonical) {
				if err := w.SetOutboxPayload(it.ID, cn.mapper.CreateFields(res.fields), canon, now); err != nil {
					return err
				}
			}
		}
	}
	if replan {
		if err := w.DropReplannable(id); err != nil {
			return err
		}
	}
	p.outbox = append(p.outbox, pe.items...)
	if r.dry {
		for _, it := range pe.items {
			if it.Op == state.OpCreate {
				r.count(it.Connector, func(c *ConnectorReport) { c.Created++ })
				fmt.Fprintf(r.out, "create %s (contact %d): %s\n", it.Connector, id, formatValues(it.Canonical))
				continue
			}
			r.count(it.Connector, func(c *ConnectorReport) { c.Updated++ })
			var parts []string
			for _, s := range pe.sides {
				if s.cn.name != it.Connector {
					continue
				}
				for _, f := range res.updates[s.cn.name] {
					parts = append(parts, fmt.Sprintf("%s: %q → %q", f, s.link.Fields[f], res.fields[f]))
				}
			}
			fmt.Fprintf(r.out, "update %s %s (contact %d): %s\n", it.Connector, it.RemoteID, id, strings.Join(parts, ", "))
		}
	}
	if !pe.keepDirty {
		p.clean = append(p.clean, id)
	}
	return nil
}

// createCanonical is what a create of an entity with values fields
// carries to this connector: its compared fields.
func (cn *conn) createCanonical(fields state.Values) state.Values {
	canon := make(state.Values, len(cn.compared))
	for _, f := range cn.compared {
		canon[f] = fields[f]
	}
	return canon
}

// deletions decides about records that disappeared. Without propagation
// a tombstone only ends that link (the person lives on elsewhere and is
// not created again there). With propagation the person is deleted
// everywhere (connectors that cannot delete are only unlinked) unless,
// for any connector, the contacts it would lose exceed max_delete_count
// or max_delete_ratio of its linked contacts: then nothing is deleted in
// any CRM, the tombstones wait, and the report names each connector over
// a limit. The guard is per connector so that a deletion that is a small
// share of a large CRM cannot wipe out a small one.
func (r *run) deletions() error {
	e := r.e
	return r.update(func(w *state.WriteTx) error {
		tombs, err := w.DirtyTombstones()
		if err != nil {
			return err
		}
		var doomed []int64
		fresh := map[state.Tombstone]bool{}
		for _, t := range tombs {
			if t.EntityID == 0 {
				if err := w.ClearRecordDirty(t.Connector, t.RemoteID); err != nil {
					return err
				}
				continue
			}
			if !e.cfg.Deletions.Propagate {
				if err := w.ClearRecordDirty(t.Connector, t.RemoteID); err != nil {
					return err
				}
				if err := w.MarkEntityDirty(t.EntityID, state.EntityDirty); err != nil {
					return err
				}
				continue
			}
			fresh[t] = true
			if !slices.Contains(doomed, t.EntityID) {
				doomed = append(doomed, t.EntityID)
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		linksOf := make(map[int64][]state.Link, len(doomed))
		for _, id := range doomed {
			if linksOf[id], err = w.EntityLinks(id); err != nil {
				return err
			}
		}
		blocked, err := r.overDeleteLimits(w, doomed, linksOf, fresh)
		if err != nil {
			return err
		}
		if blocked != "" {
			r.deletionsBlocked = blocked
			e.log.Warn("deletions blocked", "reason", blocked)
			return nil
		}
		now := e.now()
		for _, id := range doomed {
			links := linksOf[id]
			if err := w.DeleteEntity(id, now); err != nil {
				return err
			}
			outbox, err := w.EntityOutbox(id)
			if err != nil {
				return err
			}
			for _, it := range outbox {
				if err := w.DeleteOutbox(it.ID); err != nil {
					return err
				}
			}
			for _, l := range links {
				if l.Deleted {
					if err := w.ClearRecordDirty(l.Connector, l.RemoteID); err != nil {
						return err
					}
					continue
				}
				cn := e.byName[l.Connector]
				if cn != nil && cn.del != nil && cn.writable {
					it := state.OutboxItem{EntityID: id, Connector: l.Connector, Op: state.OpDelete, RemoteID: l.RemoteID, RunID: r.id}
					if _, err := w.AddOutbox(it, now); err != nil {
						return err
					}
					if r.dry {
						r.count(cn.name, func(c *ConnectorReport) { c.Deleted++ })
						fmt.Fprintf(r.out, "delete %s %s (contact %d)\n", l.Connector, l.RemoteID, id)
					}
					continue
				}
				if err := w.UnlinkRecord(l.Connector, l.RemoteID); err != nil {
					return err
				}
				if r.dry {
					fmt.Fprintf(r.out, "unlink %s %s (contact %d; the connector cannot delete)\n", l.Connector, l.RemoteID, id)
				}
			}
		}
		return nil
	})
}

// overDeleteLimits counts, per connector, the linked contacts the doomed
// entities' deletion would take from it: records deleted there that this
// run found (fresh tombstones) and records the run would delete there.
// Each count is held against max_delete_count and against
// max_delete_ratio of the connector's linked contacts before the run. It
// returns why deletions must wait, or "" when every connector is within
// the limits.
func (r *run) overDeleteLimits(w *state.WriteTx, doomed []int64, linksOf map[int64][]state.Link, fresh map[state.Tombstone]bool) (string, error) {
	e := r.e
	lost := map[string]int{}
	found := map[string]int{}
	for _, id := range doomed {
		for _, l := range linksOf[id] {
			cn := e.byName[l.Connector]
			switch {
			case l.Deleted && fresh[state.Tombstone{Connector: l.Connector, RemoteID: l.RemoteID, EntityID: id}]:
				lost[l.Connector]++
				found[l.Connector]++
			case !l.Deleted && cn != nil && cn.del != nil && cn.writable:
				lost[l.Connector]++
			}
		}
	}
	maxCount, maxRatio := e.cfg.Deletions.MaxDeleteCount, e.cfg.Deletions.MaxDeleteRatio
	var over []string
	for _, name := range slices.Sorted(maps.Keys(lost)) {
		n := lost[name]
		live, err := w.CountLinked(name)
		if err != nil {
			return "", err
		}
		// The fresh tombstones were linked contacts before this run.
		linked := live + int64(found[name])
		ratio := float64(n) / float64(max(linked, 1))
		var why []string
		if n > maxCount {
			why = append(why, fmt.Sprintf("more than max_delete_count %d", maxCount))
		}
		if ratio > maxRatio {
			why = append(why, fmt.Sprintf("more than max_delete_ratio %g", maxRatio))
		}
		if len(why) == 0 {
			continue
		}
		over = append(over, fmt.Sprintf("%s would lose %d of its %d linked contacts (%.0f%%), %s", name, n, linked, 100*ratio, strings.Join(why, " and ")))
		r.count(name, func(c *ConnectorReport) { c.DeletionsBlocked = n })
	}
	if len(over) == 0 {
		return "", nil
	}
	return strings.Join(over, "; ") + "; nothing was deleted (raise the limits for one run, or restore the records)", nil
}

func formatValues(v state.Values) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if v[k] != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v[k]))
		}
	}
	return strings.Join(parts, " ")
}

func formatCandidates(c map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, c[k]))
	}
	return strings.Join(parts, " ")
}

func orOpen(decision, status string) string {
	if status == state.ConflictOpen {
		return "open (manual)"
	}
	return fmt.Sprintf("%q", decision)
}
