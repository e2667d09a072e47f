package state

import (
	"context"
	"database/sql"
	"fmt"
)

// ReadTx is a read transaction on a reader connection: a snapshot of
// what was committed when it first read, taken beside the writer without
// waiting for it or blocking it. It offers the reads linking and
// reconciling make, so the engine can read the next chunk while the
// writer commits the one before.
type ReadTx struct {
	w WriteTx
}

// View runs fn in a read transaction on a reader connection.
func (s *Store) View(ctx context.Context, fn func(r *ReadTx) error) error {
	tx, err := s.ReadDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("state: %s: begin read: %w", s.Path, err)
	}
	r := &ReadTx{w: WriteTx{s: s, tx: tx, ctx: ctx, stmts: map[string]*sql.Stmt{}}}
	defer r.w.Rollback()
	return fn(r)
}

// DirtyEntityBatch is WriteTx.DirtyEntityBatch.
func (r *ReadTx) DirtyEntityBatch(after int64, limit int) ([]DirtyEntity, error) {
	return r.w.DirtyEntityBatch(after, limit)
}

// OpenConflicts is WriteTx.OpenConflicts.
func (r *ReadTx) OpenConflicts(entityID int64) (map[string]Conflict, error) {
	return r.w.OpenConflicts(entityID)
}

// EntityOutbox is WriteTx.EntityOutbox.
func (r *ReadTx) EntityOutbox(entityID int64) ([]OutboxItem, error) {
	return r.w.EntityOutbox(entityID)
}

// DirtyRecords is WriteTx.DirtyRecords.
func (r *ReadTx) DirtyRecords(after int64, limit int) ([]DirtyRecord, error) {
	return r.w.DirtyRecords(after, limit)
}
