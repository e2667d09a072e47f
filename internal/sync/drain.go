package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/state"
)

// drainBatch is how many outbox items one round sends before committing
// their results.
const drainBatch = 200

// maxTemporaryInARow stops a connector's drain when the CRM keeps failing
// temporarily even after the pacer's retries: the rest waits for the next
// run instead of failing one by one.
const maxTemporaryInARow = 5

// result is the outcome of sending one outbox item.
type result struct {
	it       state.OutboxItem
	remoteID string
	err      error
	sent     bool
}

// drain sends one connector's open outbox items. Creates are marked
// attempted before they are sent; an attempted create is only sent again
// when this run's pull of the connector finished (and so would have
// linked the record if the CRM made it). Each item's outcome is committed
// with the link update it implies, a batch per transaction. Failures stay
// with the item (failed, with the CRM's message) and are retried on later
// runs; an authentication failure stops the connector.
//
// The drain may start while reconciliation still plans items (see
// startPushes): f then counts the items reconciliation has committed for
// this connector, and the drain reads a batch only once a whole batch is
// there or reconciliation is over. That is sound only when every open
// item is this run's (the outbox held none before): reconciliation
// walks each entity once and never replans what it planned in the same
// run, so the batches read here are those the drain would read after
// reconciliation.
func (r *run) drain(ctx context.Context, cn *conn, f *feed) (err error) {
	if r.isStopped(cn.name) {
		return nil
	}
	start := time.Now()
	defer func() { r.count(cn.name, func(c *ConnectorReport) { c.Duration += time.Since(start) }) }()
	r.mu.Lock()
	pulled := r.pulled[cn.name]
	r.mu.Unlock()
	defer func() {
		// Only when every outcome was committed.
		if pulled && err == nil {
			r.advanceCursor(cn)
		}
	}()
	var after int64
	tempRow, sent := 0, 0
	// What the drain will send, for a progress display's ETA: counted
	// once reconciliation is over, since the display takes the phases in
	// turn (until then the drain reports nothing).
	total := -1
	counted := false
	progress := func(done bool) error {
		if _, over := f.state(); r.e.progress == nil || !over {
			return nil
		}
		if !counted && cn.writable {
			counted = true
			if err := r.update(func(w *state.WriteTx) (err error) {
				total, err = w.CountSendable(cn.name, cn.del != nil, pulled)
				total += sent
				return err
			}); err != nil {
				return err
			}
		}
		r.e.emit(ProgressEvent{Connector: cn.name, Phase: "push", Records: sent, Total: total, Done: done})
		return nil
	}
	defer func() {
		if sent > 0 {
			_ = progress(true)
		}
	}()
	// read counts the items read; ready says whether a whole batch more
	// is planned (or reconciliation is over), waiting for it when asked
	// to.
	read := 0
	ready := func(wait bool) bool {
		var total int
		var over bool
		if wait {
			total, over = f.wait(read, drainBatch)
		} else {
			total, over = f.state()
		}
		return over || total-read >= drainBatch
	}
	// next reads the batch after the last item read and marks its creates
	// attempted before they are sent: after a crash, such a create is
	// only sent again once a pull has shown the CRM did not make it. It
	// gives the sendable items and whether any item was left to read.
	// Only one goroutine at a time runs it (the drain, or the commit of
	// the batch before, which the drain waits for).
	next := func(w *state.WriteTx) (batch []state.OutboxItem, more bool, err error) {
		items, err := w.OpenOutbox(cn.name, after, drainBatch)
		if err != nil || len(items) == 0 {
			return nil, false, err
		}
		read += len(items)
		from := after
		creates := false
		for _, it := range items {
			after = it.ID
			if !r.sendable(cn, it, pulled) {
				continue
			}
			// This run's creates were planned as attempted.
			creates = creates || it.Op == state.OpCreate && (it.State != state.OutboxAttempted || it.RunID != r.id)
			batch = append(batch, it)
		}
		if creates {
			err = w.MarkCreatesAttempted(cn.name, from, after, r.e.now())
		}
		return batch, true, err
	}
	if ctx.Err() != nil {
		return nil
	}
	var (
		batch []state.OutboxItem
		more  bool
	)
	ready(true)
	if err := r.update(func(w *state.WriteTx) (err error) { batch, more, err = next(w); return err }); err != nil {
		return err
	}
	// A batch's outcomes commit in the background while the batch after
	// it is sent, one commit at a time and in order: the drain waits for
	// the commit before it starts the next one. A commit also reads the
	// batch after the next one when that is planned already, so a batch
	// costs one transaction. Sending a batch before the outcomes of the
	// one before are committed is what a crash at that point leaves
	// anyway: attempted creates, which the next pull settles, and
	// updates sent again with the same values.
	var (
		committing chan commitResult
		committed  int
		ahead      []state.OutboxItem
		aheadMore  bool
		aheadRead  bool
	)
	wait := func() error {
		if committing == nil {
			return nil
		}
		c := <-committing
		committing = nil
		if c.panicked != nil {
			panic(c.panicked)
		}
		if c.err != nil {
			return c.err
		}
		sent += committed
		if err := progress(false); err != nil {
			return err
		}
		return c.readErr
	}
	defer func() {
		if committing != nil {
			<-committing
		}
	}()
	for more {
		results, stop := r.sendBatch(ctx, cn, batch, &tempRow)
		r.flush(ctx, cn, results)
		if err := wait(); err != nil {
			return err
		}
		// The batch after this one: read by the commit of the one
		// before, or now. This batch's outcomes commit even when
		// reading it fails.
		batch, more = nil, false
		var readErr error
		if !stop && ctx.Err() == nil {
			if aheadRead {
				batch, more = ahead, aheadMore
			} else {
				ready(true)
				readErr = r.update(func(w *state.WriteTx) (err error) { batch, more, err = next(w); return err })
			}
		}
		ahead, aheadMore, aheadRead = nil, false, false
		readAhead := readErr == nil && more && ready(false)
		ch := make(chan commitResult, 1)
		committing, committed = ch, len(results)
		go func() {
			var c commitResult
			defer func() {
				if v := recover(); v != nil {
					c = commitResult{panicked: v}
				}
				ch <- c
			}()
			// The outcomes commit even when reading the batch after
			// fails (a failed statement changes nothing); the drain
			// then stops with that error, as it stops when it reads.
			c.err = r.update(func(w *state.WriteTx) error {
				if err := r.apply(w, cn, results); err != nil || !readAhead {
					return err
				}
				ahead, aheadMore, c.readErr = next(w)
				aheadRead = c.readErr == nil
				return nil
			})
		}()
		if readErr != nil {
			if err := wait(); err != nil {
				return err
			}
			return readErr
		}
	}
	return wait()
}

// commitResult is how the commit of a batch's outcomes ended: err when
// it failed, readErr when the outcomes committed but reading the batch
// after next failed, panicked for a panic in it.
type commitResult struct {
	err, readErr error
	panicked     any
}

// sendBatch sends a batch with up to cn.inFlight writes in flight (the
// pacer still spaces them by the connector's rate) and returns the
// results in batch order. Once an authentication failure or
// maxTemporaryInARow temporary failures in a row stop the connector, the
// writes not yet started are returned unsent; those in flight finish.
func (r *run) sendBatch(ctx context.Context, cn *conn, batch []state.OutboxItem, tempRow *int) ([]result, bool) {
	results := make([]result, len(batch))
	var (
		mu   sync.Mutex
		stop bool
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, max(1, cn.inFlight))
	for i, it := range batch {
		sem <- struct{}{}
		mu.Lock()
		halt := stop
		mu.Unlock()
		if halt || ctx.Err() != nil {
			<-sem
			results[i] = result{it: it}
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res := r.sendRecovered(ctx, cn, it)
			// The CRM's values are not needed once sent (the outcome
			// is committed with the canonical ones), and the batch
			// waits for that commit beside the next one.
			res.it.Fields = nil
			results[i] = res
			mu.Lock()
			defer mu.Unlock()
			switch {
			case res.err == nil:
				*tempRow = 0
			case errors.Is(res.err, errPanic):
				if !stop {
					r.stop(cn.name, res.err)
				}
				stop = true
			case errors.Is(res.err, connectors.ErrAuth):
				if !stop {
					r.stop(cn.name, fmt.Errorf("push: %w", res.err))
				}
				stop = true
			case errors.Is(res.err, connectors.ErrTemporary), errors.Is(res.err, connectors.ErrRateLimited):
				*tempRow++
				if *tempRow >= maxTemporaryInARow && !stop {
					r.stop(cn.name, fmt.Errorf("push: %d temporary failures in a row, the rest waits for the next run: %w", *tempRow, res.err))
					stop = true
				}
			}
		}()
	}
	wg.Wait()
	return results, stop
}

// flush makes a batch's writes durable on a connector that batches that
// work (connectors.Flusher) before their outcomes are recorded: a write
// whose flush failed is a failed write (a create an uncertain one, which
// the next pull settles).
func (r *run) flush(ctx context.Context, cn *conn, results []result) {
	f, ok := cn.writer.(connectors.Flusher)
	if !ok {
		return
	}
	// Like a write already sent, a flush is let finish when stopping.
	err := f.Flush(context.WithoutCancel(ctx))
	if err == nil {
		return
	}
	var fe *connectors.FlushError
	partial := errors.As(err, &fe)
	for i := range results {
		res := &results[i]
		if !res.sent || res.err != nil {
			continue
		}
		id := res.it.RemoteID
		if res.it.Op == state.OpCreate {
			id = res.remoteID
		}
		if !partial {
			res.err = err
		} else if e, failed := fe.Failed[id]; failed {
			res.err = e
		}
	}
}

// advanceCursor lets a connector that can (connectors.CursorAdvancer)
// note in its cursor the writes recorded in this run, so that its next
// pull does not return them as changes. It runs after the outcomes were
// committed: a write whose outcome a crash lost is pulled again.
func (r *run) advanceCursor(cn *conn) {
	a, ok := cn.c.(connectors.CursorAdvancer)
	if !ok {
		return
	}
	err := r.update(func(w *state.WriteTx) error {
		cur, err := w.GetCursor(cn.name)
		if err != nil || cur.InProgress || cur.Cursor == "" {
			return err
		}
		next, err := a.AdvanceCursor(cur.Cursor)
		if err != nil || next == cur.Cursor {
			return err
		}
		return w.ReplaceCursor(cn.name, next)
	})
	if err != nil {
		// Harmless: the next pull returns this run's writes, unchanged.
		r.e.log.Warn("cursor not advanced", "connector", cn.name, "err", err)
	}
}

// sendable says whether an item goes out in this run.
func (r *run) sendable(cn *conn, it state.OutboxItem, pulled bool) bool {
	switch it.Op {
	case state.OpCreate, state.OpUpdate:
		if !cn.writable {
			return false
		}
	case state.OpDelete:
		if cn.del == nil || !cn.writable {
			return false
		}
	}
	if it.Op == state.OpCreate && it.State == state.OutboxAttempted && !pulled {
		// It may have reached the CRM: wait for a pull that can tell.
		return false
	}
	return true
}

// sendRecovered is send with a panic in the connector's write turned
// into that write's error (an uncertain one: the write may have reached
// the CRM), which stops the connector for this run.
func (r *run) sendRecovered(ctx context.Context, cn *conn, it state.OutboxItem) (res result) {
	defer func() {
		if p := recover(); p != nil {
			res = result{it: it, sent: true, err: fmt.Errorf("%s: %w", cn.name, r.panicError(cn.name, "push "+it.Op, p))}
		}
	}()
	return r.send(ctx, cn, it)
}

// send performs one write. Once started it is allowed to finish for up to
// stopGrace after ctx is cancelled.
func (r *run) send(ctx context.Context, cn *conn, it state.OutboxItem) result {
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(stopGrace, cancel)
		context.AfterFunc(callCtx, func() { t.Stop() })
	})
	defer stopAfter()
	res := result{it: it, sent: true}
	switch it.Op {
	case state.OpCreate:
		res.remoteID, res.err = cn.writer.Create(callCtx, it.Fields)
		if res.err == nil && res.remoteID == "" {
			res.err = fmt.Errorf("%s: create returned no id: %w", cn.name, connectors.ErrMalformed)
		}
	case state.OpUpdate:
		res.err = cn.writer.Update(callCtx, it.RemoteID, it.Fields)
	case state.OpDelete:
		res.err = cn.del.Delete(callCtx, it.RemoteID)
		if errors.Is(res.err, connectors.ErrNotFound) {
			res.err = nil // already gone
		}
	}
	return res
}

// surelyNotCreated reports whether a failed create certainly did not make
// a record: the CRM refused it, or the request never left.
func surelyNotCreated(err error) bool {
	return errors.Is(err, connectors.ErrRejected) || errors.Is(err, connectors.ErrAuth) ||
		errors.Is(err, connectors.ErrNotSent) || errors.Is(err, connectors.ErrRateLimited) ||
		errors.Is(err, connectors.ErrUnsupported)
}

// apply commits the outcomes of a batch. The records it created and the
// items done are written in bulk at the end: no two items of a batch
// concern one record.
func (r *run) apply(w *state.WriteTx, cn *conn, results []result) error {
	now := r.e.now()
	var created []state.CreatedRecord
	var done []int64
	for _, res := range results {
		it := res.it
		if !res.sent {
			// Not sent (stopping): a create marked attempted goes back to
			// its earlier state, since it never left.
			if it.Op == state.OpCreate {
				if err := w.SetOutboxState(it.ID, it.State, it.LastError, false, now); err != nil {
					return err
				}
			}
			continue
		}
		if res.err != nil {
			state_ := state.OutboxFailed
			if it.Op == state.OpCreate && !surelyNotCreated(res.err) {
				// The CRM may have made the record: the next pull decides.
				state_ = state.OutboxAttempted
			}
			if errors.Is(res.err, connectors.ErrAuth) {
				state_ = it.State
				if state_ == state.OutboxAttempted && it.Op == state.OpCreate {
					state_ = state.OutboxPending
				}
			}
			if err := w.SetOutboxState(it.ID, state_, res.err.Error(), it.Op != state.OpCreate, now); err != nil {
				return err
			}
			if state_ == state.OutboxFailed {
				r.count(cn.name, func(c *ConnectorReport) { c.Failed++ })
				r.e.log.Warn("write failed", "connector", cn.name, "op", it.Op, "remote_id", it.RemoteID, "contact", it.EntityID, "err", res.err)
			}
			continue
		}
		switch it.Op {
		case state.OpCreate:
			created = append(created, state.CreatedRecord{RemoteID: res.remoteID, EntityID: it.EntityID, Fields: it.Canonical, Hash: cn.mapper.Hash(it.Canonical)})
			r.count(cn.name, func(c *ConnectorReport) { c.Created++ })
		case state.OpUpdate:
			if err := w.SetPushed(cn.name, it.RemoteID, it.Canonical, cn.mapper.Hash(it.Canonical)); err != nil {
				return err
			}
			r.count(cn.name, func(c *ConnectorReport) { c.Updated++ })
		case state.OpDelete:
			if err := w.MarkRecordDeleted(cn.name, it.RemoteID, now); err != nil {
				return err
			}
			r.count(cn.name, func(c *ConnectorReport) { c.Deleted++ })
		}
		done = append(done, it.ID)
	}
	if err := w.InsertCreated(cn.name, created, now, r.id); err != nil {
		return err
	}
	return w.DeleteOutboxItems(done)
}
