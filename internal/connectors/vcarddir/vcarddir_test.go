package vcarddir_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/vcarddir"
	"github.com/syncd/syncd/internal/connectors/vcarddir/vcarddirtest"
)

type env struct {
	conn   *vcarddir.Connector
	folder *vcarddirtest.Folder
	logs   *bytes.Buffer
}

func newEnv(t testing.TB, pageSize int, version string) *env {
	t.Helper()
	return newEnvAt(t, t.TempDir(), pageSize, version)
}

// newEnvIn is a second connector (as in a new process) on dir.
func newEnvIn(t testing.TB, dir string) *env {
	t.Helper()
	return newEnvAt(t, dir, 10, "3.0")
}

func newEnvAt(t testing.TB, dir string, pageSize int, version string) *env {
	t.Helper()
	logs := &bytes.Buffer{}
	pacer := connectors.NewPacer(connectors.PacerConfig{Name: "vdir", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	c, err := vcarddir.New(connectors.Settings{
		Name:      "vdir",
		PageSize:  pageSize,
		Options:   &vcarddir.Options{Path: filepath.Base(dir), Version: version},
		ConfigDir: filepath.Dir(dir),
		Pacer:     pacer,
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{conn: c, folder: &vcarddirtest.Folder{Dir: dir, Version: version, Conn: c}, logs: logs}
}

func TestContract(t *testing.T) {
	contract.Run(t, contract.Harness{
		New: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			e := newEnv(t, 3, "3.0")
			return e.conn, e.folder
		},
		// A folder has no credentials; a permission error is the same
		// permanent failure, injected here since tests may run as root.
		NewBadCredentials: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			e := newEnv(t, 3, "3.0")
			e.folder.FailNext("*", 10, emulator.Fault{Status: 403})
			return e.conn, e.folder
		},
		PageSize:    3,
		GivenField:  "N.given",
		FamilyField: "N.family",
		EmailField:  "EMAIL",
		ListMethod:  "list",
	})
}

func pull(t *testing.T, c connectors.Connector, cursor string) ([]connectors.Record, string) {
	t.Helper()
	recs, _, cur := contract.PullAll(t, c, connectors.PullOptions{Cursor: cursor})
	return recs, cur
}

func recIDs(recs []connectors.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

// A pull with a cursor reads only the files changed since; a file put
// back with an old modification time (cp -p, rsync -t) still counts.
func TestIncrementalReadsOnlyChangedFiles(t *testing.T) {
	e := newEnv(t, 4, "3.0")
	e.conn.SetLookback(0)
	var ids []string
	for i := range 10 {
		ids = append(ids, e.folder.Seed(map[string]string{"N.given": fmt.Sprint("G", i), "EMAIL": fmt.Sprintf("p%d@example.com", i)}))
	}
	recs, cur := pull(t, e.conn, "")
	if len(recs) != 10 || e.conn.FilesRead() != 10 {
		t.Fatalf("first pull: %d records, %d files read", len(recs), e.conn.FilesRead())
	}
	time.Sleep(30 * time.Millisecond) // past the file-system clock's tick
	recs, cur = pull(t, e.conn, cur)
	if len(recs) != 0 || e.conn.FilesRead() != 10 {
		t.Fatalf("no-op pull: %d records, %d files read in all", len(recs), e.conn.FilesRead())
	}

	time.Sleep(30 * time.Millisecond)
	e.folder.EditAsUser(ids[3], map[string]string{"N.given": "Edited"})
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(e.folder.Dir, ids[3]+".vcf"), old, old); err != nil {
		t.Fatal(err)
	}
	recs, _ = pull(t, e.conn, cur)
	if len(recs) != 1 || recs[0].ID != ids[3] || recs[0].Fields["N.given"] != "Edited" {
		t.Fatalf("after one edit: %+v", recs)
	}
	if !recs[0].Modified.Equal(old.Truncate(time.Microsecond)) && recs[0].Modified.Sub(old).Abs() > time.Second {
		t.Errorf("Modified = %v, want the file's mtime %v", recs[0].Modified, old)
	}
}

// A full pull reads and returns every record, with its current contents.
func TestFullPullReadsEveryFile(t *testing.T) {
	e := newEnv(t, 100, "4.0")
	a := e.folder.Seed(map[string]string{"N.given": "A"})
	e.folder.Seed(map[string]string{"N.given": "B"})
	contract.PullAll(t, e.conn, connectors.PullOptions{Full: true})
	e.folder.EditAsUser(a, map[string]string{"N.given": "A2"})
	recs, _, _ := contract.PullAll(t, e.conn, connectors.PullOptions{Full: true})
	if len(recs) != 2 || e.conn.FilesRead() != 4 {
		t.Fatalf("%d records, %d files read; want 2 records, 4 reads", len(recs), e.conn.FilesRead())
	}
	for _, r := range recs {
		if r.ID == a && r.Fields["N.given"] != "A2" {
			t.Errorf("full pull returned %v for the edited card", r.Fields)
		}
	}
}

// An interrupted pull resumes after the last delivered page.
func TestResumeAfterPage(t *testing.T) {
	e := newEnv(t, 2, "3.0")
	for i := range 5 {
		e.folder.Seed(map[string]string{"N.given": fmt.Sprint(i)})
	}
	var first []string
	var cursor string
	stop := errors.New("stop")
	err := e.conn.Pull(context.Background(), connectors.PullOptions{}, func(ctx context.Context, p connectors.Page) error {
		first = append(first, recIDs(p.Records)...)
		cursor = p.Cursor
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	rest, _ := pull(t, e.conn, cursor)
	all := append(first, recIDs(rest)...)
	slices.Sort(all)
	if len(all) != 5 || len(slices.Compact(all)) != 5 {
		t.Fatalf("resumed pull delivered %v", all)
	}
}

func TestDeletionAndListIDs(t *testing.T) {
	e := newEnv(t, 10, "3.0")
	a := e.folder.Seed(map[string]string{"N.given": "A"})
	b := e.folder.Seed(map[string]string{"N.given": "B"})
	e.folder.SeedRaw("broken", []byte("not a vcard"))
	if err := os.WriteFile(filepath.Join(e.folder.Dir, ".hidden.vcf"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.folder.Dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only regular files are contacts: not a link to one, not a folder.
	if err := os.Symlink(filepath.Join(e.folder.Dir, b+".vcf"), filepath.Join(e.folder.Dir, "link.vcf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(e.folder.Dir, "folder.vcf"), 0o700); err != nil {
		t.Fatal(err)
	}
	recs, _ := pull(t, e.conn, "")
	if got := recIDs(recs); !slices.Equal(got, sorted(a, b)) {
		t.Fatalf("pulled %v", got)
	}
	if !strings.Contains(e.logs.String(), "broken.vcf") {
		t.Errorf("no warning about the malformed file: %s", e.logs)
	}
	// Right after a pull, Count is that pull's listing (the malformed file
	// counts: it exists).
	if n, err := e.conn.Count(context.Background()); err != nil || n != 3 {
		t.Errorf("Count after the pull = %d, %v; want 3", n, err)
	}
	e.folder.Delete(a)
	var listed []string
	err := e.conn.ListIDs(context.Background(), func(ctx context.Context, ids []string) error {
		listed = append(listed, ids...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The malformed file is listed: it exists, so it is not a deletion.
	if !slices.Equal(listed, sorted(b, "broken")) {
		t.Fatalf("ListIDs = %v", listed)
	}
	// Later, Count counts what ListIDs lists, and a staged create once
	// flushed.
	if n, err := e.conn.Count(context.Background()); err != nil || n != len(listed) {
		t.Errorf("Count = %d, %v; want %d", n, err, len(listed))
	}
	if _, err := e.conn.Create(context.Background(), map[string]string{"N.given": "C"}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.conn.Count(context.Background()); err != nil || n != len(listed)+1 {
		t.Errorf("Count after a create = %d, %v; want %d", n, err, len(listed)+1)
	}
	if err := e.conn.Delete(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.folder.Fields(b); ok {
		t.Fatal("deleted file still there")
	}
	if err := e.conn.Delete(context.Background(), b); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// Create writes an atomic file named by a fresh UID; Update keeps every
// property it does not change; no temporary file is left behind.
func TestWrites(t *testing.T) {
	e := newEnv(t, 10, "3.0")
	ctx := context.Background()
	id, err := e.conn.Create(ctx, map[string]string{"N.given": "Ann", "N.family": "Lee", "EMAIL": "ann@example.com", "TEL.cell": "+44 7700 900000"})
	if err != nil {
		t.Fatal(err)
	}
	raw := string(e.folder.Raw(id))
	for _, want := range []string{"UID:" + id + "\r\n", "VERSION:3.0\r\n", "FN:Ann Lee\r\n", "N:Lee;Ann;;;\r\n", "TEL;TYPE=cell:+44 7700 900000\r\n"} {
		if !strings.Contains(raw, want) {
			t.Errorf("created card lacks %q:\n%s", want, raw)
		}
	}
	if len(id) != 36 {
		t.Errorf("id %q is not a UUID", id)
	}
	orig, err := os.ReadFile("../vcardmap/testdata/apple3.vcf")
	if err != nil {
		t.Fatal(err)
	}
	e.folder.SeedRaw("apple", orig)
	applePath := filepath.Join(e.folder.Dir, "apple"+vcarddir.Ext)
	if err := os.Chmod(applePath, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Update(ctx, "apple", map[string]string{"TITLE": "CTO"}); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(orig), "TITLE:Head of R&D", "TITLE:CTO", 1)
	if got := string(e.folder.Raw("apple")); got != want {
		t.Errorf("update changed more than TITLE:\n%s", got)
	}
	if info, err := os.Stat(applePath); err != nil {
		t.Error(err)
	} else if info.Mode().Perm() != 0o640 {
		t.Errorf("updated file's mode is %v, want 0640 kept", info.Mode().Perm())
	}
	if err := e.conn.Update(ctx, "nobody", map[string]string{"TITLE": "x"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("update of a missing card: %v", err)
	}
	if err := e.conn.Update(ctx, "apple", map[string]string{"HAT": "x"}); !errors.Is(err, connectors.ErrRejected) {
		t.Errorf("update of an unknown field: %v", err)
	}
	names, _ := filepath.Glob(filepath.Join(e.folder.Dir, ".*"))
	if len(names) != 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

func TestBadIDsAndFolder(t *testing.T) {
	e := newEnv(t, 10, "3.0")
	ctx := context.Background()
	for _, id := range []string{"../etc/passwd", "a/b", "", ".hidden", ".."} {
		if _, err := e.conn.Get(ctx, id); !errors.Is(err, connectors.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
	missing, err := vcarddir.New(connectors.Settings{Options: &vcarddir.Options{Path: filepath.Join(e.folder.Dir, "nope"), Version: "3.0"}})
	if err != nil {
		t.Fatal(err)
	}
	err = missing.Pull(ctx, connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "does not exist") || errors.Is(err, connectors.ErrTemporary) {
		t.Errorf("pull of a missing folder: %v", err)
	}
	if _, err := vcarddir.New(connectors.Settings{Options: &vcarddir.Options{Path: "x", Version: "2.1"}}); err == nil {
		t.Error("version 2.1 accepted")
	}
}

func BenchmarkPull10000(b *testing.B) {
	e := newEnv(b, 500, "3.0")
	for i := range 10000 {
		e.folder.Seed(map[string]string{"N.given": fmt.Sprint("Given", i), "N.family": "Family", "EMAIL": fmt.Sprintf("p%d@example.com", i), "TEL.cell": "+44 7700 900000", "ADR.locality": "London", "ORG": "Acme"})
	}
	ctx := context.Background()
	pullAll := func(opts connectors.PullOptions) (n int, cursor string) {
		err := e.conn.Pull(ctx, opts, func(ctx context.Context, p connectors.Page) error {
			n += len(p.Records)
			cursor = p.Cursor
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return n, cursor
	}
	_, cursor := pullAll(connectors.PullOptions{})
	e.conn.SetLookback(0)
	_, cursor = pullAll(connectors.PullOptions{})
	time.Sleep(20 * time.Millisecond)
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fresh := newEnv(b, 500, "3.0")
			fresh.conn, _ = vcarddir.New(connectors.Settings{Options: &vcarddir.Options{Path: e.folder.Dir, Version: "3.0"}, PageSize: 500})
			n := 0
			_ = fresh.conn.Pull(ctx, connectors.PullOptions{}, func(ctx context.Context, p connectors.Page) error { n += len(p.Records); return nil })
			if n != 10000 {
				b.Fatalf("pulled %d", n)
			}
		}
		b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "contacts/s")
	})
	b.Run("noop-cursor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, _ := pullAll(connectors.PullOptions{Cursor: cursor}); n != 0 {
				b.Fatalf("no-op pull returned %d", n)
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, _ := pullAll(connectors.PullOptions{Full: true}); n != 10000 {
				b.Fatalf("full pull returned %d", n)
			}
		}
	})
}

// Writes are staged until Flush: a create is not in the folder before it;
// an update that lost a race with another writer is dropped and reported
// by id, the other writes of the batch go through; Close flushes too.
func TestFlushBatches(t *testing.T) {
	e := newEnv(t, 10, "3.0")
	ctx := context.Background()
	raced := e.folder.Seed(map[string]string{"N.given": "Rae", "EMAIL": "rae@example.com"})
	kept := e.folder.Seed(map[string]string{"N.given": "Kit", "EMAIL": "kit@example.com"})
	id, err := e.conn.Create(ctx, map[string]string{"N.given": "Ann", "EMAIL": "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.folder.Dir, id+vcarddir.Ext)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a create is in the folder before Flush: %v", err)
	}
	for _, u := range []string{raced, kept} {
		if err := e.conn.Update(ctx, u, map[string]string{"TITLE": "CTO"}); err != nil {
			t.Fatal(err)
		}
	}
	// Another tool rewrites one of them before the flush.
	path := filepath.Join(e.folder.Dir, raced+vcarddir.Ext)
	b, _ := os.ReadFile(path)
	user := strings.Replace(string(b), "END:VCARD", "NOTE:mine\r\nEND:VCARD", 1)
	if err := os.WriteFile(path, []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	err = e.conn.Flush(ctx)
	var fe *connectors.FlushError
	if !errors.As(err, &fe) || len(fe.Failed) != 1 || !errors.Is(fe.Failed[raced], vcarddir.ErrChangedConcurrently) || !errors.Is(fe.Failed[raced], connectors.ErrTemporary) {
		t.Fatalf("Flush: %v, want a FlushError for %s only, ErrChangedConcurrently", err, raced)
	}
	if got, _ := os.ReadFile(path); string(got) != user {
		t.Errorf("the other tool's edit was overwritten:\n%s", got)
	}
	if f, _ := e.folder.Fields(kept); f["TITLE"] != "CTO" {
		t.Errorf("update of %s lost: %v", kept, f)
	}
	if f, ok := e.folder.Fields(id); !ok || f["EMAIL"] != "ann@example.com" {
		t.Errorf("create lost: %v", f)
	}
	if err := e.conn.Flush(ctx); err != nil {
		t.Errorf("empty Flush: %v", err)
	}
	id2, err := e.conn.Create(ctx, map[string]string{"N.given": "Bo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.folder.Dir, id2+vcarddir.Ext)); err != nil {
		t.Errorf("Close did not flush: %v", err)
	}
	// A create whose name was taken meanwhile leaves the other file alone.
	id3, err := e.conn.Create(ctx, map[string]string{"N.given": "Cy"})
	if err != nil {
		t.Fatal(err)
	}
	taken := filepath.Join(e.folder.Dir, id3+vcarddir.Ext)
	if err := os.WriteFile(taken, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = e.conn.Flush(ctx)
	if !errors.As(err, &fe) || !errors.Is(fe.Failed[id3], connectors.ErrRejected) {
		t.Errorf("Flush of a create whose name was taken: %v, want a FlushError with ErrRejected", err)
	}
	if b, _ := os.ReadFile(taken); string(b) != "theirs" {
		t.Errorf("the file that took the name was replaced: %q", b)
	}
	// A failure found by an early flush (a read before the batch's Flush)
	// is reported by the next Flush, where the engine looks for it.
	id4, err := e.conn.Create(ctx, map[string]string{"N.given": "Di"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.folder.Dir, id4+vcarddir.Ext), []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.Get(ctx, kept); err != nil {
		t.Fatal(err)
	}
	err = e.conn.Flush(ctx)
	if !errors.As(err, &fe) || !errors.Is(fe.Failed[id4], connectors.ErrRejected) {
		t.Errorf("Flush after an early flush: %v, want the create's failure", err)
	}
	if err := e.conn.Flush(ctx); err != nil {
		t.Errorf("a failure was reported twice: %v", err)
	}
	names, _ := filepath.Glob(filepath.Join(e.folder.Dir, ".*"))
	if len(names) != 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

// A pull after AdvanceCursor passes over the files the connector wrote,
// in this process or a new one, until someone else changes them.
func TestAdvanceCursorPassesOverOwnWrites(t *testing.T) {
	e := newEnv(t, 10, "3.0")
	e.conn.SetLookback(time.Hour) // everything is "recent": only the list keeps files out
	ctx := context.Background()
	other := e.folder.Seed(map[string]string{"N.given": "Oli", "EMAIL": "oli@example.com"})
	mine := e.folder.Seed(map[string]string{"N.given": "Mo", "EMAIL": "mo@example.com"})
	time.Sleep(30 * time.Millisecond) // past the file-system clock's tick
	pull := func(c *vcarddir.Connector, cur string) (ids []string, next string) {
		t.Helper()
		err := c.Pull(ctx, connectors.PullOptions{Cursor: cur}, func(_ context.Context, p connectors.Page) error {
			for _, r := range p.Records {
				ids = append(ids, r.ID)
			}
			next = p.Cursor
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids, next
	}
	_, cur := pull(e.conn, "")
	// A file the pull read is passed over too while unchanged; another
	// tool's edit of it after the pull makes it count again.
	if got, _ := pull(e.conn, cur); len(got) != 0 {
		t.Errorf("pull right after the first returned %v, want nothing", got)
	}
	e.folder.EditAsUser(other, map[string]string{"TITLE": "Ops"})
	created, err := e.conn.Create(ctx, map[string]string{"N.given": "Ann", "EMAIL": "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Update(ctx, mine, map[string]string{"TITLE": "CTO"}); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	adv, err := e.conn.AdvanceCursor(cur)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pull(e.conn, adv); !slices.Equal(got, []string{other}) {
		t.Errorf("pull after AdvanceCursor returned %v, want only %s", got, other)
	}
	// A new process with the stored cursor: nothing of its own is read.
	fresh := newEnvIn(t, e.folder.Dir)
	fresh.conn.SetLookback(time.Hour)
	if got, _ := pull(fresh.conn, adv); !slices.Equal(got, []string{other}) || fresh.conn.FilesRead() != 1 {
		t.Errorf("new process: pull returned %v reading %d files, want only %s, 1 file", got, fresh.conn.FilesRead(), other)
	}
	// Someone else edits a file the connector wrote: it is returned.
	e.folder.EditAsUser(created, map[string]string{"TITLE": "Boss"})
	if got, _ := pull(fresh.conn, adv); !slices.Equal(got, sorted(other, created)) {
		t.Errorf("after an edit by another tool the pull returned %v, want %v", got, sorted(other, created))
	}
	// A cursor of an interrupted pull is left alone.
	mid := `{"since":5,"start":7,"after":"x"}`
	if got, _ := e.conn.AdvanceCursor(mid); got != mid {
		t.Errorf("AdvanceCursor changed an unfinished pull's cursor to %s", got)
	}
}
