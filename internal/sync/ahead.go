package engine

import (
	"context"

	"github.com/syncd/syncd/internal/state"
)

// storeReader is what linking and reconciling read: the write transaction
// (in a dry run) or a read transaction beside the writer.
type storeReader interface {
	DirtyRecords(after int64, limit int) ([]state.DirtyRecord, error)
	DirtyEntityBatch(after int64, limit int) ([]state.DirtyEntity, error)
	OpenConflicts(entityID int64) (map[string]state.Conflict, error)
	EntityOutbox(entityID int64) ([]state.OutboxItem, error)
}

// chunkOf is a chunk of records or entities as read and prepared for the
// writer; err or panicked say why it could not be made.
type chunkOf[T any] struct {
	items    []T
	err      error
	panicked any
}

// raise re-raises, in the caller's goroutine, a panic of the goroutine
// that made the chunk, where the run's recovery catches it.
func (c *chunkOf[T]) raise() {
	if c.panicked != nil {
		panic(c.panicked)
	}
}

// chunked is how a phase reads its chunks: read takes up to size items
// after position after through rd (store reads only), prepare works on
// them (on every core; it reads nothing from the store), last gives an
// item's position.
type chunked[T any] struct {
	read    func(rd storeReader, after int64, size int) ([]T, error)
	size    int
	prepare func(items []T)
	last    func(*T) int64
	// inline keeps the reads in the write transaction even outside a dry
	// run: where the writer's work dominates, a chunk ahead is memory
	// for little gain.
	inline bool
	// split reads each chunk in a transaction of the writer's own and
	// prepares it outside any, so that the writer is free for the work
	// running beside the phase (pushes beside reconciliation) while a
	// chunk is prepared, and no chunk waits ahead in memory with a
	// reader connection's page cache.
	split bool
	// aheadAfter, when set, ends split once that many items were
	// handled: the chunks after are read ahead (see readAhead), which
	// costs a reader connection's page cache and a chunk in memory
	// whatever the size of the phase, and pays only on a long one.
	aheadAfter int
	// committed, when set, is called with each chunk once its write
	// transaction has committed.
	committed func(items []T)
}

// readChunk reads the chunk after after, returning a panic in the chunk.
func (p chunked[T]) readChunk(rd storeReader, after int64) (c chunkOf[T]) {
	defer func() {
		if v := recover(); v != nil {
			c = chunkOf[T]{panicked: v}
		}
	}()
	items, err := p.read(rd, after, p.size)
	return chunkOf[T]{items: items, err: err}
}

// prepareChunk prepares a chunk read without error, returning a panic in
// the chunk.
func (p chunked[T]) prepareChunk(c *chunkOf[T]) {
	if c.err != nil || c.panicked != nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			*c = chunkOf[T]{panicked: v}
		}
	}()
	p.prepare(c.items)
}

// inChunks runs a phase a chunk per write transaction: p reads and
// prepares a chunk of the items after the last one, apply writes it,
// until a chunk is empty. Outside a dry run (and unless p.inline), once
// the first chunk, read in the write transaction, is full, the next
// chunks are read on a reader connection and prepared ahead of the writer
// (see readAhead). A phase of one chunk (a quiet run's) reads all through
// the writer, whose page cache then serves its writes too.
//
// A chunk read beside the writer is what the writer would read itself,
// because of what is written meanwhile: a chunk's writes touch only its
// own records or entities and what hangs off them (keys, links,
// conflicts, outbox items, parked records, tombstones they replace),
// never a later chunk's; a Run must not overlap ResolveConflict or
// another Run; and the only other writers during reconciliation are the
// drains started beside it, which write the records and outbox items of
// entities already reconciled (see drain). Linking reads in the write
// transaction (p.inline): the pulls and the reads that depend on earlier
// chunks' writes (matching identity keys, new entity ids) need it.
func inChunks[T any](ctx context.Context, r *run, phase string, p chunked[T], apply func(w *state.WriteTx, items []T) error) error {
	var ahead <-chan chunkOf[T]
	stop := make(chan struct{})
	defer func() {
		close(stop)
		if ahead != nil {
			for range ahead {
			}
		}
	}()
	var after int64
	handled := 0
	for {
		if ctx.Err() != nil {
			r.setInterrupted()
			return nil
		}
		var c chunkOf[T]
		if ahead != nil {
			c = <-ahead
			c.raise()
			if c.err != nil {
				return c.err
			}
		}
		split := ahead == nil && p.split && !r.dry
		if split {
			// Read through the writer's connection, prepare with the
			// writer free for the others, then write.
			if err := r.update(func(w *state.WriteTx) error { c = p.readChunk(w, after); return nil }); err != nil {
				return err
			}
			p.prepareChunk(&c)
			c.raise()
			if c.err != nil {
				return c.err
			}
		}
		err := r.update(func(w *state.WriteTx) error {
			if ahead == nil && !split {
				c = p.readChunk(w, after)
				p.prepareChunk(&c)
				c.raise()
				if c.err != nil {
					return c.err
				}
				if n := len(c.items); n == p.size && !r.dry && !p.inline {
					ahead = readAhead(r, stop, p, p.last(&c.items[n-1]))
				}
			}
			return apply(w, c.items)
		})
		if err != nil {
			return err
		}
		n := len(c.items)
		if n == 0 {
			return nil
		}
		if p.committed != nil {
			p.committed(c.items)
		}
		after = p.last(&c.items[n-1])
		handled += n
		if split && p.aheadAfter > 0 && handled >= p.aheadAfter && n == p.size {
			r.e.log.Debug("reading ahead", "run", r.id, "phase", phase, "after", handled)
			ahead = readAhead(r, stop, p, after)
		}
		r.e.emit(ProgressEvent{Phase: phase, Records: handled, Total: -1})
	}
}

// readAhead reads and prepares the chunks after after in order on a
// reader connection, one chunk ahead of the writer, until a chunk is empty or
// fails or stop is closed; the channel is closed when it ends. One chunk
// ahead is enough to keep both cores busy (preparing spreads over them)
// and keeps two chunks in memory at most.
func readAhead[T any](r *run, stop <-chan struct{}, p chunked[T], after int64) <-chan chunkOf[T] {
	out := make(chan chunkOf[T])
	go func() {
		defer close(out)
		for {
			var c chunkOf[T]
			err := r.e.store.View(r.storeCtx, func(rt *state.ReadTx) error {
				c = p.readChunk(rt, after)
				return nil
			})
			if c.err == nil && c.panicked == nil {
				c.err = err
			}
			p.prepareChunk(&c)
			select {
			case out <- c:
			case <-stop:
				return
			}
			if c.err != nil || c.panicked != nil || len(c.items) == 0 {
				return
			}
			after = p.last(&c.items[len(c.items)-1])
		}
	}()
	return out
}
