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

// reader makes the chunk after after through rd.
type reader[T any] func(rd storeReader, after int64) chunkOf[T]

// guarded runs read, returning a panic in the chunk.
func (read reader[T]) guarded(rd storeReader, after int64) (c chunkOf[T]) {
	defer func() {
		if v := recover(); v != nil {
			c = chunkOf[T]{panicked: v}
		}
	}()
	return read(rd, after)
}

// inChunks runs a phase a chunk per write transaction: read makes a chunk
// of the items after the last one's position (last), apply writes it,
// until a chunk is empty. Outside a dry run the chunks are made on
// reader connections, each while the writer commits the one before.
//
// A chunk made beside the writer is what the writer would read itself,
// because of what linking and reconciling write: while they run they are
// the store's only writer (pulls are done, pushes not started, and a Run
// must not overlap ResolveConflict or another Run), and a chunk's writes
// touch only its own records or entities and what hangs off them (keys,
// links, conflicts, outbox items, parked records, tombstones they
// replace), never a later chunk's. The reads that depend on earlier
// chunks' writes (matching identity keys, new entity ids) stay in the
// write transaction.
func inChunks[T any](ctx context.Context, r *run, phase string, read reader[T], last func(*T) int64, apply func(w *state.WriteTx, items []T) error) error {
	var ahead <-chan chunkOf[T]
	if !r.dry {
		stop := make(chan struct{})
		ahead = readAhead(r, stop, read, last)
		defer func() {
			close(stop)
			for range ahead {
			}
		}()
	}
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
		err := r.update(func(w *state.WriteTx) error {
			if ahead == nil {
				c = read.guarded(w, after)
				c.raise()
				if c.err != nil {
					return c.err
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
		after = last(&c.items[n-1])
		handled += n
		r.e.emit(ProgressEvent{Phase: phase, Records: handled, Total: -1})
	}
}

// readAhead makes the chunks in order on reader connections, one ahead of
// the writer, until a chunk is empty or fails or stop is closed; the
// channel is closed when it ends.
func readAhead[T any](r *run, stop <-chan struct{}, read reader[T], last func(*T) int64) <-chan chunkOf[T] {
	out := make(chan chunkOf[T], 1)
	go func() {
		defer close(out)
		var after int64
		for {
			var c chunkOf[T]
			err := r.e.store.View(r.storeCtx, func(rt *state.ReadTx) error {
				c = read.guarded(rt, after)
				return nil
			})
			if c.err == nil && c.panicked == nil {
				c.err = err
			}
			select {
			case out <- c:
			case <-stop:
				return
			}
			if c.err != nil || c.panicked != nil || len(c.items) == 0 {
				return
			}
			after = last(&c.items[len(c.items)-1])
		}
	}()
	return out
}
