package state

import (
	"context"
	"path/filepath"
	"testing"
)

// openTemp opens a new store in a temporary folder, closed when the
// test ends, and returns it with its path.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}
