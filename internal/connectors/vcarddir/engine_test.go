package vcarddir_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors/vcarddir"
	"github.com/syncd/syncd/internal/connectors/vcarddir/vcarddirtest"
	"github.com/syncd/syncd/internal/state"
	engine "github.com/syncd/syncd/internal/sync"
	"github.com/syncd/syncd/internal/sync/synctest"
)

// twoFolders is the engine syncing folders A and B, wired as cmd/syncd
// wires it; build makes a new engine and connectors, as a new process.
type twoFolders struct {
	dir   string
	cfg   *config.Config
	st    *state.Store
	conns map[string]*vcarddir.Connector
	eng   *engine.Engine
}

func newTwoFolders(t *testing.T) *twoFolders {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "state = %q\n", filepath.Join(dir, "state.db"))
	for _, side := range []string{"A", "B"} {
		if err := os.Mkdir(filepath.Join(dir, side), 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, `
[[connectors]]
name = %q
type = "vcarddir"
[connectors.options]
path = %q
[[connectors.fields]]
canonical = "given_name"
remote = "N.given"
[[connectors.fields]]
canonical = "family_name"
remote = "N.family"
[[connectors.fields]]
canonical = "email"
remote = "EMAIL"
transforms = ["trim", "lower"]
[[connectors.fields]]
canonical = "job_title"
remote = "TITLE"
`, side, side)
	}
	cfg, st := synctest.Load(t, dir, b.String(), nil)
	f := &twoFolders{dir: dir, cfg: cfg, st: st}
	f.build(t)
	return f
}

func (f *twoFolders) build(t *testing.T) {
	t.Helper()
	built := synctest.Connectors(t, f.cfg)
	f.conns = map[string]*vcarddir.Connector{}
	for _, b := range built {
		f.conns[b.Name] = b.Connector.(*vcarddir.Connector)
	}
	f.eng = synctest.Engine(t, f.cfg, f.st, built)
}

func (f *twoFolders) run(t *testing.T) (writes int64) {
	t.Helper()
	return synctest.Writes(synctest.RunOK(t, f.eng))
}

func (f *twoFolders) emails(t *testing.T, side string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(f.dir, side, "*"+vcarddir.Ext))
	folder := &vcarddirtest.Folder{Dir: filepath.Join(f.dir, side)}
	var out []string
	for _, n := range names {
		fields, ok := folder.Fields(strings.TrimSuffix(filepath.Base(n), vcarddir.Ext))
		if !ok {
			t.Fatalf("unreadable card %s", n)
		}
		out = append(out, fields["EMAIL"])
	}
	slices.Sort(out)
	return out
}

// Through the engine: a first sync copies every card in batches; the next
// run, in a new process, reads none of the files syncd wrote and writes
// nothing; an edit on either side travels.
func TestEngineSyncsTwoFolders(t *testing.T) {
	f := newTwoFolders(t)
	a := &vcarddirtest.Folder{Dir: filepath.Join(f.dir, "A")}
	var ids []string
	for i := range 450 {
		ids = append(ids, a.Seed(map[string]string{"N.given": fmt.Sprint("G", i), "N.family": "Fam", "EMAIL": fmt.Sprintf("p%03d@example.com", i)}))
	}
	if w := f.run(t); w != 450 {
		t.Fatalf("first sync made %d writes, want 450", w)
	}
	if got, want := f.emails(t, "B"), f.emails(t, "A"); !slices.Equal(got, want) {
		t.Fatalf("B holds %d cards, A %d; they differ", len(got), len(want))
	}
	if tmp, _ := filepath.Glob(filepath.Join(f.dir, "B", ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	f.build(t) // a new process
	if w := f.run(t); w != 0 {
		t.Errorf("no-op run made %d writes", w)
	}
	if n := f.conns["B"].FilesRead(); n != 0 {
		t.Errorf("no-op run read %d of the files syncd wrote, want 0", n)
	}

	a.EditAsUser(ids[7], map[string]string{"TITLE": "Chief"})
	f.run(t)
	b := &vcarddirtest.Folder{Dir: filepath.Join(f.dir, "B")}
	names, _ := filepath.Glob(filepath.Join(f.dir, "B", "*"+vcarddir.Ext))
	var edited string
	for _, n := range names {
		id := strings.TrimSuffix(filepath.Base(n), vcarddir.Ext)
		if fields, _ := b.Fields(id); fields["EMAIL"] == "p007@example.com" {
			edited = id
			if fields["TITLE"] != "Chief" {
				t.Errorf("the edit in A did not reach B: %v", fields)
			}
		}
	}
	b.EditAsUser(edited, map[string]string{"TITLE": "Chair"})
	f.run(t)
	if fields, _ := a.Fields(ids[7]); fields["TITLE"] != "Chair" {
		t.Errorf("the edit in B did not reach A: %v", fields)
	}
	if w := f.run(t); w != 0 {
		t.Errorf("a run with nothing new made %d writes", w)
	}
}
