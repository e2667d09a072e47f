package state

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrFull is matched (errors.Is) by a write that found no room: the disk
// holding the state database is full, or the database reached its size
// limit (Options.MaxPageCount).
var ErrFull = errors.New("database or disk is full")

// fullError is a write that failed for want of room. Its message names
// the database and what to do; the SQLite error stays in the chain.
type fullError struct {
	path string
	err  error
}

func (e *fullError) Error() string {
	return fmt.Sprintf("state: %s: database or disk is full: free space on the disk that holds it and run syncd again (the database keeps every batch saved before this one; the next run resumes from there)", e.path)
}

func (e *fullError) Unwrap() []error { return []error{ErrFull, e.err} }

// isFull reports whether err is SQLite's SQLITE_FULL (or an extended code
// of it).
func isFull(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}

// writeErr wraps a failed write: a full disk becomes the one message a
// user can act on, anything else is prefixed with what failed.
func (s *Store) writeErr(what string, err error) error {
	if errors.Is(err, ErrFull) {
		return err
	}
	if isFull(err) {
		return &fullError{path: s.Path, err: err}
	}
	return fmt.Errorf("state: %s: %w", what, err)
}
