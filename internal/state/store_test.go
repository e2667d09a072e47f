package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
