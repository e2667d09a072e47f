package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/state"
)

// pull streams one connector's pages into the store. Each page, its
// records' snapshots and the cursor after it are one transaction, so the
// cursor never runs ahead of what is stored. A connector error stops this
// connector only; a store error is returned.
func (r *run) pull(ctx context.Context, cn *conn) error {
	start := time.Now()
	defer func() { r.count(cn.name, func(c *ConnectorReport) { c.Duration += time.Since(start) }) }()
	var cur state.Cursor
	if err := r.update(func(w *state.WriteTx) (err error) { cur, err = w.GetCursor(cn.name); return err }); err != nil {
		return err
	}
	// A pull interrupted in an earlier run resumes after its last stored
	// page. Records on the pages before it may have been edited since that
	// run, and this run would push over those edits unseen: once the
	// resumed pull is done, the connector is pulled once more from the
	// cursor it ended with.
	resumed := cur.InProgress && cur.Cursor != "" && !r.full
	done, err := r.pullFrom(ctx, cn, cur.Cursor, !resumed)
	if err != nil || !done {
		return err
	}
	if resumed {
		if err := r.update(func(w *state.WriteTx) (err error) { cur, err = w.GetCursor(cn.name); return err }); err != nil {
			return err
		}
		if done, err := r.pullFrom(ctx, cn, cur.Cursor, true); err != nil || !done {
			return err
		}
	}
	r.mu.Lock()
	r.pulled[cn.name] = !r.stopped[cn.name]
	r.mu.Unlock()
	return nil
}

// pullFrom pulls one connector from cursor to its last page and, when
// last, checks it for deletions. It reports whether the pull got there
// (false when it was interrupted or the connector failed).
func (r *run) pullFrom(ctx context.Context, cn *conn, cursor string, last bool) (bool, error) {
	opts := connectors.PullOptions{Cursor: cursor, Full: r.full}
	// A pull from the start that reaches its last page saw every record:
	// what it did not see is gone. A pull resumed after an interruption
	// did not see the records of the pages before it.
	complete := r.full || cursor == ""
	// A connector with nothing stored yet (its first pull) has no hashes
	// to compare with: its records are stored without looking them up.
	fresh := false
	if complete {
		if err := r.update(func(w *state.WriteTx) (err error) {
			has, err := w.HasRecords(cn.name)
			fresh = !has
			return err
		}); err != nil {
			return false, err
		}
	}
	total := -1
	if complete && cn.counter != nil && r.e.progress != nil {
		total = r.progressTotal(ctx, cn)
	}
	// The connector fetches the next page while the one before is mapped
	// and stored: pages go through a channel of one to a goroutine that
	// stores them in order. Small pages are held until a chunk's worth
	// has come (or holdPages has passed without a page, or the last page
	// came) and stored together, with the last one's cursor, so that
	// linking them as they are stored takes chunks of a useful size.
	// Every page handed over is stored before the pull is judged, so the
	// pages in hand when the run stops are kept.
	pages, records := 0, 0
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan connectors.Page, 1)
	var (
		storeErr error
		panicked any
		consumer sync.WaitGroup
	)
	consumer.Go(func() {
		defer func() {
			if p := recover(); p != nil {
				panicked = p
				cancel()
				for range queue {
				}
			}
		}()
		var held []connectors.Page
		heldRecords := 0
		store := func() {
			if len(held) == 0 || storeErr != nil {
				held, heldRecords = nil, 0
				return
			}
			page := joinPages(held)
			n := len(held)
			held, heldRecords = nil, 0
			if err := r.handlePage(cn, page, fresh, complete); err != nil {
				storeErr = err
				cancel()
				return
			}
			pages += n
			records += len(page.Records)
			if page.Total >= 0 {
				total = page.Total
			}
			r.e.emit(ProgressEvent{Connector: cn.name, Phase: "pull", Pages: pages, Records: records, Total: total, Done: page.Done})
		}
		wait := time.NewTimer(holdPages)
		defer wait.Stop()
		for {
			var page connectors.Page
			var ok bool
			if len(held) == 0 {
				page, ok = <-queue
			} else {
				select {
				case page, ok = <-queue:
				case <-wait.C:
					store()
					continue
				}
			}
			if !ok {
				store()
				return
			}
			if storeErr != nil {
				continue
			}
			held = append(held, page)
			heldRecords += len(page.Records)
			if heldRecords >= chunk || page.Done {
				store()
			} else if len(held) == 1 {
				wait.Reset(holdPages)
			}
		}
	})
	err := func() error {
		defer func() {
			close(queue)
			consumer.Wait()
		}()
		return cn.c.Pull(pctx, opts, func(_ context.Context, page connectors.Page) error {
			select {
			case queue <- page:
			case <-pctx.Done():
				return pctx.Err()
			}
			if page.Done {
				return nil
			}
			// Stop between pages: the page handed over is stored, the
			// pull resumes after it next time.
			return ctx.Err()
		})
	}()
	if panicked != nil {
		panic(panicked)
	}
	if storeErr != nil {
		err = storeError{storeErr}
	}
	var se storeError
	switch {
	case errors.As(err, &se):
		return false, se.err
	case err != nil && ctx.Err() != nil:
		r.setInterrupted()
		return false, nil
	case err != nil:
		r.e.log.Error("pull failed", "connector", cn.name, "err", err)
		r.stop(cn.name, fmt.Errorf("pull: %w", err))
		return false, nil
	}
	if !last {
		return true, nil
	}
	if err := r.detectDeletions(ctx, cn, complete); err != nil {
		return false, err
	}
	return true, nil
}

// holdPages is how long a pull holds small pages for more to come.
const holdPages = time.Second

// joinPages makes one page of pages pulled one after the other: their
// records in order, and the position, end and total of the last (the
// last cursor given, if the last page gives none).
func joinPages(pages []connectors.Page) connectors.Page {
	if len(pages) == 1 {
		return pages[0]
	}
	n := 0
	for _, p := range pages {
		n += len(p.Records)
	}
	last := pages[len(pages)-1]
	out := connectors.Page{Records: make([]connectors.Record, 0, n), Done: last.Done, Total: last.Total}
	for _, p := range pages {
		out.Records = append(out.Records, p.Records...)
		if p.Cursor != "" {
			out.Cursor = p.Cursor
		}
	}
	return out
}

// handlePage maps and stores one pulled page. What the store holds of
// the page's records is read first: a record whose CRM values hash as
// they did when it was last pulled is not mapped again (a full run maps
// every record). Mapping and hashing happen outside the single writer's
// transaction, so they overlap with the other connectors' stores; the
// read and the store may be two transactions because during a pull only
// this pull writes this connector's records.
func (r *run) handlePage(cn *conn, page connectors.Page, fresh, complete bool) error {
	var stored map[string]state.StoredHash
	if !fresh {
		ids := make([]string, 0, len(page.Records))
		for _, rec := range page.Records {
			if rec.ID != "" && !rec.Deleted {
				ids = append(ids, rec.ID)
			}
		}
		if err := r.update(func(w *state.WriteTx) (err error) { stored, err = w.RecordHashes(cn.name, ids); return err }); err != nil {
			return err
		}
	}
	// Outside a dry run (which links after its pulls, in its one
	// transaction) the page's new records are linked as it is stored.
	link := !r.dry
	mapped := r.mapPage(cn, page, stored, link)
	err := r.update(func(w *state.WriteTx) error { return r.storePage(w, cn, page, mapped, stored, complete, link) })
	if link && errors.Is(err, state.ErrStoredBefore) {
		// A record taken as new was stored already (the page names it
		// twice, or a first pull repeats it on a later page): the page
		// is stored again the ordinary way, its records left to linking.
		err = r.update(func(w *state.WriteTx) error { return r.storePage(w, cn, page, mapped, stored, complete, false) })
	}
	return err
}

// mappedRecord is a pulled record's canonical values, their encoding
// and their hash, and the hash of its CRM values (raw). same says the
// CRM values hash as they did when the record was last pulled: it was
// not mapped again.
type mappedRecord struct {
	fields  state.Values
	encoded string
	hash    string
	raw     string
	same    bool
	// keys are the identity keys of a record new to the store, when it
	// is linked as it is stored.
	keys []state.IdentityKey
}

// mapPage maps every live record of a page to canonical values, except
// those whose CRM values are as stored (outside a full run). A large page
// is mapped on every core: a single connector's first pull would
// otherwise map on one. With link, the identity keys of records new to
// the store are worked out too.
func (r *run) mapPage(cn *conn, page connectors.Page, stored map[string]state.StoredHash, link bool) []mappedRecord {
	out := make([]mappedRecord, len(page.Records))
	spread(len(page.Records), func(i int) {
		rec := page.Records[i]
		if rec.ID == "" || rec.Deleted {
			return
		}
		raw := cn.rawHash(rec.Fields)
		if old, ok := stored[rec.ID]; ok && !r.full && !old.Deleted && old.Raw == raw {
			out[i] = mappedRecord{raw: raw, same: true}
			return
		}
		fields := cn.canonical(rec.Fields)
		out[i] = mappedRecord{fields: fields, encoded: state.EncodeValues(fields), hash: cn.mapper.Hash(fields), raw: raw}
		if _, found := stored[rec.ID]; link && !found {
			out[i].keys = r.e.identityKeys(fields)
		}
	})()
	return out
}

// storePage stores one page (mapped by mapPage, with what the store held
// of its records in stored; nil for a connector's first pull): new or
// changed snapshots are marked dirty, unchanged ones only noted as seen.
// With link, the records new to the store are linked as they are stored
// (storeNew).
func (r *run) storePage(w *state.WriteTx, cn *conn, page connectors.Page, mapped []mappedRecord, stored map[string]state.StoredHash, complete, link bool) error {
	now := r.e.now()
	var pulled, changed int
	var touched []string
	var raws []state.RawHash
	var fresh []int
	// A page that flags deletions is stored the ordinary way, record by
	// record in page order: a record it names live and deleted ends as
	// it says last.
	link = link && !slices.ContainsFunc(page.Records, func(rec connectors.Record) bool { return rec.Deleted })
	for i, rec := range page.Records {
		if rec.ID == "" {
			continue
		}
		pulled++
		if rec.Deleted {
			if _, err := w.TombstoneRecord(cn.name, rec.ID, now); err != nil {
				return err
			}
			continue
		}
		m := mapped[i]
		old, found := stored[rec.ID]
		if m.same || found && !old.Deleted && old.Hash == m.hash {
			if complete {
				touched = append(touched, rec.ID)
			}
			if !m.same && old.Raw != m.raw {
				raws = append(raws, state.RawHash{RemoteID: rec.ID, Raw: m.raw})
			}
			continue
		}
		changed++
		if link && !found {
			fresh = append(fresh, i)
			continue
		}
		if err := w.PutPulledRecord(state.PulledRecord{Connector: cn.name, RemoteID: rec.ID, Fields: m.fields, Encoded: m.encoded, Hash: m.hash, Modified: rec.Modified, Pulled: now, Run: r.id, Raw: m.raw, New: !found}); err != nil {
			return err
		}
	}
	matched, err := r.storeNew(w, cn, page, mapped, fresh, now)
	if err != nil {
		return err
	}
	if err := w.SetRawHashes(cn.name, raws); err != nil {
		return err
	}
	if err := w.TouchRecords(cn.name, touched, r.id); err != nil {
		return err
	}
	if page.Cursor != "" || page.Done {
		if err := w.SetCursor(cn.name, page.Cursor, page.Done, now); err != nil {
			return err
		}
	}
	if page.Done && complete {
		if _, err := w.TombstoneUnseen(cn.name, r.id, now); err != nil {
			return err
		}
	}
	r.count(cn.name, func(c *ConnectorReport) {
		c.Pulled += pulled
		c.Changed += changed
		c.Unchanged += pulled - changed
		c.Matched += matched
	})
	return nil
}

// storeNew links the records of a page at idx, new to the store, and
// stores them with their links, in the transaction that stores the page,
// a chunk at a time (linkRecords): the writer passes over each record
// once, and nothing is read back. It returns how many records it linked
// to existing entities. A record stored before after all fails it with
// state.ErrStoredBefore.
func (r *run) storeNew(w *state.WriteTx, cn *conn, page connectors.Page, mapped []mappedRecord, idx []int, now time.Time) (matched int, err error) {
	for part := range slices.Chunk(idx, chunk) {
		recs := make([]linkRecord, len(part))
		for k, i := range part {
			recs[k] = linkRecord{DirtyRecord: state.DirtyRecord{Connector: cn.name, RemoteID: page.Records[i].ID, Fields: mapped[i].fields}, keys: mapped[i].keys, encoded: mapped[i].encoded}
		}
		lc, err := r.linkRecords(w, recs)
		if err != nil {
			return 0, err
		}
		out := make([]state.NewLinkedRecord, len(part))
		for k, i := range part {
			rec, m := page.Records[i], mapped[i]
			l := lc.fresh[rec.ID]
			out[k] = state.NewLinkedRecord{PulledRecord: state.PulledRecord{Connector: cn.name, RemoteID: rec.ID, Fields: m.fields, Encoded: m.encoded, Hash: m.hash,
				Modified: rec.Modified, Pulled: now, Run: r.id, Raw: m.raw}, EntityID: l.entity, Base: l.base}
		}
		if err := w.InsertLinkedRecords(out); err != nil {
			return 0, err
		}
		matched += lc.matched[cn.name]
	}
	return matched, nil
}

// canonical maps a CRM record to the canonical values this connector
// syncs; fields left out of comparison are dropped, so they never cause
// a change.
func (cn *conn) canonical(remote map[string]string) state.Values {
	all := cn.mapper.ToCanonical(remote)
	out := make(state.Values, len(cn.compared))
	for _, f := range cn.compared {
		out[f] = all[f]
	}
	return out
}

// detectDeletions turns records missing from a complete id listing into
// tombstones, after an incremental pull of a connector that can list ids.
func (r *run) detectDeletions(ctx context.Context, cn *conn, complete bool) error {
	if complete || cn.lister == nil || r.isStopped(cn.name) {
		return nil
	}
	if cn.counter != nil {
		same, err := r.countAgrees(ctx, cn)
		if err != nil || same {
			return err
		}
	}
	// The listing is compared with the stored ids in memory: marking
	// every listed id in the store made a no-op run write every record.
	listed := map[string]bool{}
	err := cn.lister.ListIDs(ctx, func(_ context.Context, ids []string) error {
		for _, id := range ids {
			listed[id] = true
		}
		return ctx.Err()
	})
	var se storeError
	switch {
	case errors.As(err, &se):
		return se.err
	case err != nil && ctx.Err() != nil:
		r.setInterrupted()
		return nil
	case err != nil:
		// Without a complete listing nothing is taken as deleted.
		r.e.log.Warn("id listing failed; deletions not checked", "connector", cn.name, "err", err)
		return nil
	}
	return r.update(func(w *state.WriteTx) error {
		_, err := w.TombstoneUnlisted(cn.name, listed, r.id, r.e.now())
		return err
	})
}

// countAgrees reports whether the connector's record count equals the
// live records the store holds for it, in which case the incremental
// pull that just finished left nothing to tombstone. A failed count is
// logged and answered false: the complete listing decides instead.
func (r *run) countAgrees(ctx context.Context, cn *conn) (bool, error) {
	n, err := cn.counter.Count(ctx)
	if err != nil {
		if ctx.Err() != nil {
			r.setInterrupted()
			return true, nil
		}
		r.e.log.Warn("record count failed; listing every id instead", "connector", cn.name, "err", err)
		return false, nil
	}
	var live int64
	if err := r.update(func(w *state.WriteTx) (err error) { live, err = w.CountLive(cn.name); return err }); err != nil {
		return false, err
	}
	if int64(n) == live {
		r.e.log.Debug("record count unchanged; id listing skipped", "connector", cn.name, "count", n)
		return true, nil
	}
	r.e.log.Debug("record count differs; listing every id", "connector", cn.name, "count", n, "stored", live)
	return false, nil
}

// progressTotal asks a counting connector how many records a pull from
// the start will return, for the progress display only: a failed count
// leaves the total unknown (-1).
func (r *run) progressTotal(ctx context.Context, cn *conn) int {
	n, err := cn.counter.Count(ctx)
	if err != nil {
		r.e.log.Debug("record count for progress failed", "connector", cn.name, "err", err)
		return -1
	}
	return n
}
