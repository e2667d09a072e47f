package state

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenCreatesPrivateFileAndMigrates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("database mode = %v, want 0600", st.Mode().Perm())
	}
	cur, known, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur == 0 || cur != known {
		t.Errorf("schema version = %d (known %d), want the newest applied", cur, known)
	}
	// WAL and SHM files are private too.
	if _, err := s.DB.ExecContext(ctx, "INSERT INTO runs(started_at) VALUES ('x')"); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if st, err := os.Stat(path + suffix); err == nil && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", suffix, st.Mode().Perm())
		}
	}
}

func TestSecondInstanceRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "pid") {
		t.Errorf("refusal does not name the running instance: %v", err)
	}
	// A read-only open beside the writer works.
	ro, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open beside the daemon: %v", err)
	}
	ro.Close()
	s.Close()
	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestBadFilesAreRefusedUntouched(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	junk := []byte(strings.Repeat("this is not sqlite\n", 300))
	if err := os.WriteFile(corrupt, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, corrupt, Options{})
	if err == nil || !strings.Contains(err.Error(), corrupt) || !strings.Contains(err.Error(), "not a SQLite database") {
		t.Fatalf("corrupt file: err = %v", err)
	}
	if b, _ := os.ReadFile(corrupt); string(b) != string(junk) {
		t.Fatal("corrupt file was modified")
	}
	_, err = Open(ctx, dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("directory: err = %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, "INSERT INTO goose_db_version(version_id, is_applied) VALUES (9999, 1)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this syncd") {
		t.Fatalf("newer schema: err = %v", err)
	}
}

func TestReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores folder permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	_, err := Open(context.Background(), filepath.Join(dir, "state.db"), Options{})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("read-only folder: err = %v", err)
	}
}

// TestFullDatabase: a write that finds no room (here the database capped
// at its size plus two pages, as a full disk would stop it) fails with
// ErrFull and a message naming the database, the transaction leaves
// nothing behind, and with room again the same write succeeds.
func TestFullDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := s.DB.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path, Options{MaxPageCount: pages + 2})
	if err != nil {
		t.Fatal(err)
	}
	const rows = 100 // of 1 KB: more than two pages hold
	fill := func(s *Store) error {
		return s.Update(ctx, func(w *WriteTx) error {
			for range rows {
				if _, err := w.exec(`INSERT INTO runs (started_at, error) VALUES ('x', ?)`, strings.Repeat("e", 1000)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = fill(s)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("writing past the cap: err = %v, want ErrFull", err)
	}
	want := "state: " + path + ": database or disk is full: free space on the disk that holds it and run syncd again (the database keeps every batch saved before this one; the next run resumes from there)"
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	var n int
	if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM runs").Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed transaction left %d runs (err %v)", n, err)
	}
	s.Close()

	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := fill(s); err != nil {
		t.Fatalf("with room again: %v", err)
	}
	var check string
	if err := s.DB.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
}

// A checkpoint of the log runs beside an open write transaction without
// waiting for it, and copies what was committed: the database file alone
// then holds it.
func TestCheckpointBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.Update(ctx, func(w *WriteTx) error {
		return w.InsertEntities([]NewEntity{{ID: 1, Fields: Values{"email": "ann@example.com"}, Origins: "{}", Created: now}})
	}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Rollback()
	if err := w.InsertEntities([]NewEntity{{ID: 2, Fields: Values{}, Origins: "{}", Created: now}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.CheckpointLog(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the checkpoint waited for the write transaction")
	}
	// The committed entity is in the database file itself: a copy of
	// the file without its log still holds it.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("ann@example.com")) {
		t.Error("the committed row is not in the database file after the checkpoint")
	}
}

// A new store is made with 8 KiB pages in write-ahead-log mode; a store
// made with SQLite's default 4 KiB pages keeps them and opens as before.
// The driver runs the DSN's pragmas in its own order, so a page size set
// after the log mode would silently not take effect.
func TestPageSizeOfNewAndOldStores(t *testing.T) {
	ctx := context.Background()
	settings := func(s *Store) (pageSize int, mode string) {
		t.Helper()
		if err := s.DB.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
			t.Fatal(err)
		}
		if err := s.DB.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		return pageSize, mode
	}
	s, err := Open(ctx, filepath.Join(t.TempDir(), "new.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if size, mode := settings(s); size != 8192 || mode != "wal" {
		t.Errorf("new store: page size %d, %s mode; want 8192, wal", size, mode)
	}
	s.Close()

	old := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+old+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE before_syncd (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(ctx, old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if size, mode := settings(s); size != 4096 || mode != "wal" {
		t.Errorf("store made with 4 KiB pages: page size %d, %s mode; want 4096, wal", size, mode)
	}
	if err := s.Update(ctx, func(w *WriteTx) error {
		_, err := w.exec(`INSERT INTO runs (started_at) VALUES ('x')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
