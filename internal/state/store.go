// Package state is syncd's state store: one SQLite database (through
// modernc.org/sqlite, no cgo) holding entities, links with their synced
// values, remote snapshots, cursors, the outbox, conflicts and the run
// journal. The schema lives in the top-level migrations package and is
// applied by goose when the store opens.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/syncd/syncd/migrations"
)

// Store is the state database. DB is the single writer connection; reads
// that run beside a write transaction use ReadDB.
type Store struct {
	Path   string
	DB     *sql.DB
	ReadDB *sql.DB
	Now    func() time.Time

	lock *os.File
}

// Options for Open.
type Options struct {
	// ReadOnly opens without the instance lock and without migrating, for
	// inspection commands that run beside a daemon.
	ReadOnly bool
	// Logger receives migration messages (nil: discarded).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxPageCount, when positive, caps the database at that many pages
	// (SQLite's max_page_count, on the writer connection): a write that
	// needs more fails as on a full disk. Tests use it to fill the
	// "disk" at a chosen size; a cap below the current size is raised
	// to it by SQLite.
	MaxPageCount int
}

// ErrLocked is returned when another syncd holds the database.
var ErrLocked = errors.New("state database is in use by another syncd")

// Open opens (creating it with mode 0600 and its folder if missing) the
// database at path, takes the single-instance lock and applies pending
// migrations. It refuses a database whose schema is newer than this
// binary, and a file that is not a SQLite database; it never overwrites.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{Path: path, Now: opts.Now}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("state: %s is a directory, not a database file", path)
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("state: %s: no state database yet (run syncd first): %w", path, unwrapPath(err))
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("state: cannot create folder for %s: %w", path, unwrapPath(err))
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("state: cannot open %s: %w", path, unwrapPath(err))
		}
		f.Close()
		if err := s.takeLock(); err != nil {
			return nil, err
		}
	}
	var err error
	s.DB, err = sql.Open("sqlite", dsn(path, false, opts.MaxPageCount))
	if err == nil {
		s.ReadDB, err = sql.Open("sqlite", dsn(path, true, 0))
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	// One writer: every write goes through one connection, so SQLite never
	// answers "database is locked" inside our own process.
	s.DB.SetMaxOpenConns(1)
	s.ReadDB.SetMaxOpenConns(4)
	if err := s.check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func dsn(path string, readOnly bool, maxPageCount int) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// A 2 MiB page cache per connection. Each cached page costs about
	// twice its size in resident memory; 2 MiB of 8 KiB pages left the
	// vCard benchmark's first sync at the peak memory 4 MiB of 4 KiB
	// pages gave, and 8 and 64 MiB caches measured the same time as 4 on
	// a 150,000-contact first sync (the operating system's file cache
	// holds the rest of the database).
	q.Add("_pragma", "cache_size(-2048)")
	// Statement journals and sorts stay in memory: on disk, the bulk
	// writes of a first sync spent as many writes on statement journals
	// as on the database.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// A new store has 8 KiB pages (SQLite's default is 4 KiB): the
		// engine benchmark's first sync of 200,000 contacts was 7 %
		// faster on average (fewer pages and log frames to write for
		// its B-tree inserts), with 16 KiB pages slower. A store keeps
		// the page size it was made with.
		// page_size must run before the database is first written, and
		// the driver runs the _pragma list in lexical order, so the
		// journal mode is set by its own key, which comes after.
		q.Add("_pragma", "page_size(8192)")
		q.Set("_journal_mode", "WAL")
		// The write-ahead log is copied into the database once it holds
		// 5,000 pages (40 MB of 8 KiB pages, 20 MB in a store made with
		// 4 KiB ones; SQLite's default is 1,000 pages) and when the
		// store closes. A one-shot run of a few hundred edits then
		// copies each page once, at the end, instead of once in the
		// middle of the run and again at the end. After a copy the log
		// file is cut back to 16 MB.
		q.Add("_pragma", "wal_autocheckpoint(5000)")
		q.Add("_pragma", "journal_size_limit(16777216)")
		q.Set("_txlock", "immediate")
		if maxPageCount > 0 {
			q.Add("_pragma", "max_page_count("+strconv.Itoa(maxPageCount)+")")
		}
	}
	return "file:" + path + "?" + q.Encode()
}

// check makes sure the file is a readable SQLite database.
func (s *Store) check(ctx context.Context) error {
	var n int
	if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed") {
			return fmt.Errorf("state: %s is not a SQLite database or is corrupt (%s); it was left untouched", s.Path, msg)
		}
		return fmt.Errorf("state: %s: %w", s.Path, err)
	}
	return nil
}

// SchemaVersion returns the applied schema version and the newest one this
// binary knows.
func (s *Store) SchemaVersion(ctx context.Context) (current, known int64, err error) {
	p, err := s.provider(s.ReadDB, nil)
	if err != nil {
		return 0, 0, err
	}
	known = maxSource(p)
	err = s.ReadDB.QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&current)
	if err != nil {
		return 0, known, fmt.Errorf("state: read schema version: %w", err)
	}
	return current, known, nil
}

func (s *Store) provider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS, opts...)
	if err != nil {
		return nil, fmt.Errorf("state: migrations: %w", err)
	}
	return p, nil
}

func maxSource(p *goose.Provider) int64 {
	var v int64
	for _, src := range p.ListSources() {
		v = max(v, src.Version)
	}
	return v
}

func (s *Store) migrate(ctx context.Context, opts Options) error {
	var hasTable int
	err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='goose_db_version'").Scan(&hasTable)
	if err != nil {
		return fmt.Errorf("state: %s: %w", s.Path, err)
	}
	if hasTable == 1 {
		cur, known, err := s.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		if cur > known {
			return fmt.Errorf("state: %s has schema version %d, newer than this syncd knows (%d): upgrade syncd, or point state at another file", s.Path, cur, known)
		}
		if opts.ReadOnly || cur == known {
			return nil
		}
	} else if opts.ReadOnly {
		return fmt.Errorf("state: %s has no syncd schema", s.Path)
	}
	p, err := s.provider(s.DB, opts.Logger)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		if isFull(err) {
			return s.writeErr("", err)
		}
		return fmt.Errorf("state: %s: apply migrations: %w", s.Path, err)
	}
	// Parsing the migrations leaves megabytes of buffers behind (about
	// 12 MB for three files, in a sync.Pool, which a second collection
	// empties). Collected now, they do not set the heap goal, and so the
	// peak memory, of the first sync that follows.
	runtime.GC()
	runtime.GC()
	return nil
}

// takeLock takes an exclusive flock on "<path>.lock" and writes our pid
// and start time into it, so that a second instance can name us.
func (s *Store) takeLock() error {
	lockPath := s.Path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("state: cannot open lock file %s: %w", lockPath, unwrapPath(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lockPath)
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "unknown process"
		}
		return fmt.Errorf("%w: %s is held by %s", ErrLocked, s.Path, who)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte("syncd pid "+strconv.Itoa(os.Getpid())+" since "+time.Now().UTC().Format(time.RFC3339)+"\n"), 0)
	s.lock = f
	return nil
}

// CheckpointLog copies the committed pages of the write-ahead log into
// the database without waiting for the writer or blocking it (a passive
// checkpoint, on a reader connection). Run while a push waits on the
// CRMs, it leaves less to copy when the store closes or the log next
// fills.
func (s *Store) CheckpointLog(ctx context.Context) error {
	var busy, logged, copied int
	if err := s.ReadDB.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied); err != nil {
		return fmt.Errorf("state: %s: checkpoint: %w", s.Path, err)
	}
	return nil
}

// Close closes the database and releases the lock.
func (s *Store) Close() error {
	var errs []error
	if s.DB != nil {
		errs = append(errs, s.DB.Close())
	}
	if s.ReadDB != nil {
		errs = append(errs, s.ReadDB.Close())
	}
	if s.lock != nil {
		_ = s.lock.Truncate(0)
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	return errors.Join(errs...)
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Tx runs fn in one write transaction.
func (s *Store) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return s.writeErr("begin", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		if isFull(err) {
			return s.writeErr("", err)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.writeErr("commit", err)
	}
	return nil
}

// TimeText formats t for storage (UTC, sortable, nanoseconds).
func TimeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
}

// ParseTime reads a time written by TimeText; "" is the zero time.
func ParseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
