package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// WriteTx is one write transaction with the store's typed operations. The
// engine batches a page, a chunk of reconciliations or a batch of pushes
// in one WriteTx. Reads through it see its own uncommitted writes.
type WriteTx struct {
	s     *Store
	tx    *sql.Tx
	ctx   context.Context
	stmts map[string]*sql.Stmt
	done  bool
}

// Begin starts a write transaction. ctx bounds the whole transaction.
func (s *Store) Begin(ctx context.Context) (*WriteTx, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.writeErr("begin", err)
	}
	return &WriteTx{s: s, tx: tx, ctx: ctx, stmts: map[string]*sql.Stmt{}}, nil
}

// Update runs fn in one write transaction, committed when fn returns nil.
// A panic in fn rolls the transaction back before it goes on up, so the
// single writer connection is free for whoever recovers it.
func (s *Store) Update(ctx context.Context, fn func(w *WriteTx) error) error {
	w, err := s.Begin(ctx)
	if err != nil {
		return err
	}
	defer w.Rollback()
	if err := fn(w); err != nil {
		w.Rollback()
		return err
	}
	return w.Commit()
}

// Commit commits the transaction.
func (w *WriteTx) Commit() error {
	w.done = true
	w.closeStmts()
	if err := w.tx.Commit(); err != nil {
		return w.s.writeErr("commit", err)
	}
	return nil
}

// Rollback abandons the transaction; safe to call after Commit.
func (w *WriteTx) Rollback() {
	if w.done {
		return
	}
	w.done = true
	w.closeStmts()
	_ = w.tx.Rollback()
}

func (w *WriteTx) closeStmts() {
	for _, st := range w.stmts {
		st.Close()
	}
}

// stmt returns the statement for query, prepared once per transaction.
func (w *WriteTx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	// Prepared on the transaction itself: the single writer connection
	// is held by it, so preparing on the pool would wait forever.
	st, err := w.tx.PrepareContext(w.ctx, query)
	if err != nil {
		return nil, w.s.writeErr("prepare "+queryName(query), err)
	}
	w.stmts[query] = st
	return st, nil
}

func (w *WriteTx) exec(query string, args ...any) (sql.Result, error) {
	st, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	res, err := st.ExecContext(w.ctx, args...)
	if err != nil {
		return nil, w.s.writeErr(queryName(query), err)
	}
	return res, nil
}

func (w *WriteTx) queryRow(query string, args ...any) *sql.Row {
	st, err := w.stmt(query)
	if err != nil {
		// A failed prepare surfaces through Scan of a row that errors.
		return w.tx.QueryRowContext(w.ctx, query, args...)
	}
	return st.QueryRowContext(w.ctx, args...)
}

// query runs a query and hands each row to scan; the rows are closed
// before query returns, so scan must not start other statements.
func (w *WriteTx) query(query string, scan func(rows *sql.Rows) error, args ...any) error {
	st, err := w.stmt(query)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(w.ctx, args...)
	if err != nil {
		return w.s.writeErr(queryName(query), err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return w.s.writeErr(queryName(query), err)
	}
	return nil
}

// queryName shortens a query for error messages.
func queryName(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 60 {
		q = q[:60] + "…"
	}
	return q
}

// Values are canonical field values by field name.
type Values = map[string]string

// EncodeValues writes values as a JSON object with sorted keys.
func EncodeValues(v Values) string {
	if len(v) == 0 {
		return "{}"
	}
	var small [24]string
	keys := small[:0]
	size := 2
	for k, val := range v {
		keys = append(keys, k)
		size += len(k) + len(val) + 6
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v[k])
	}
	b = append(b, '}')
	return string(b)
}

func appendJSONString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	enc, _ := json.Marshal(s)
	return append(b, enc...)
}

// DecodeValues reads a JSON object written by EncodeValues; a NULL or
// empty column is nil.
func DecodeValues(s string) (Values, error) {
	if s == "" {
		return nil, nil
	}
	if v, ok := decodeFlat(s); ok {
		return v, nil
	}
	v := Values{}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("state: bad values %.40q: %w", s, err)
	}
	return v, nil
}

// nullString is s as a statement argument, NULL for "" (a nil, not an
// sql.NullString: database/sql takes it without a Valuer call).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullInt is n as a statement argument, NULL for 0.
func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// decodeFlat reads the common form EncodeValues writes (string values
// without escapes) without reflection; ok is false for anything else,
// which json.Unmarshal then reads.
func decodeFlat(s string) (Values, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	// One pair per `":"` (a value holding that text only over-sizes).
	v := make(Values, strings.Count(s, `":"`))
	i := 1
	str := func() (string, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", false
		}
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				return "", false
			}
			j++
		}
		if j >= len(s) {
			return "", false
		}
		out := s[i+1 : j]
		i = j + 1
		return out, true
	}
	if s[i] == '}' {
		return v, i == len(s)-1
	}
	for {
		k, ok := str()
		if !ok || i >= len(s) || s[i] != ':' {
			return nil, false
		}
		i++
		val, ok := str()
		if !ok || i >= len(s) {
			return nil, false
		}
		v[k] = val
		switch s[i] {
		case ',':
			i++
		case '}':
			return v, i == len(s)-1
		default:
			return nil, false
		}
	}
}
