package co3_test

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/memory"
	"github.com/syncd/syncd/internal/connectors/registry"
	"github.com/syncd/syncd/internal/state"
	engine "github.com/syncd/syncd/internal/sync"
	"github.com/syncd/syncd/internal/sync/synctest"
)

const (
	engineAPIKey   = "engine-test-api-key"
	engineUser     = "petra"
	enginePassword = "engine-test-password"
)

// co3Rig is the engine syncing a CO3 account (the emulator on loopback)
// with a memory connector, wired as cmd/syncd wires it.
type co3Rig struct {
	emu *co3test.Server
	cfg *config.Config
	st  *state.Store
	// mem outlives the engines built by build: its contacts live as long
	// as the process, unlike CO3's, which live in the emulator.
	mem *registry.Built
	eng *engine.Engine
}

func newCO3Rig(t *testing.T, format string) *co3Rig {
	t.Helper()
	emu := co3test.New(co3test.Config{APIKey: engineAPIKey, Username: engineUser, Password: enginePassword})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	text := fmt.Sprintf(`state = %q

[[connectors]]
name = "co3"
type = "co3"
base_url = %q
rate = 1000
burst = 100
credentials = { api_key = %q, username = %q, password = %q }
[connectors.options]
format = %q
[[connectors.fields]]
canonical = "given_name"
remote = "contact_firstname"
[[connectors.fields]]
canonical = "family_name"
remote = "contact_lastname"
[[connectors.fields]]
canonical = "email"
remote = "contact_email"
transforms = ["trim", "lower"]
[[connectors.fields]]
canonical = "job_title"
remote = "contact_job"

[[connectors]]
name = "book"
type = "memory"
[[connectors.fields]]
canonical = "given_name"
remote = "first"
[[connectors.fields]]
canonical = "family_name"
remote = "last"
[[connectors.fields]]
canonical = "email"
remote = "email"
[[connectors.fields]]
canonical = "job_title"
remote = "title"
`, filepath.Join(dir, "state.db"), srv.URL+"/api", engineAPIKey, engineUser, enginePassword, format)
	cfg, st := synctest.Load(t, dir, text, nil)
	r := &co3Rig{emu: emu, cfg: cfg, st: st}
	r.build(t)
	return r
}

// build makes a new engine and a new CO3 connector over the same store,
// as a new process would; the memory connector is kept.
func (r *co3Rig) build(t *testing.T) {
	t.Helper()
	built := synctest.Connectors(t, r.cfg)
	for i, b := range built {
		if b.Name != "book" {
			continue
		}
		if _, ok := b.Connector.(*memory.Connector); !ok {
			t.Fatalf("book is a %T", b.Connector)
		}
		if r.mem == nil {
			r.mem = &built[i]
		}
		built[i] = *r.mem
	}
	r.eng = synctest.Engine(t, r.cfg, r.st, built)
}

// run runs once and returns the reports by connector name and the number
// of write calls made to any connector.
func (r *co3Rig) run(t *testing.T) (map[string]engine.ConnectorReport, int64) {
	t.Helper()
	rep := synctest.RunOK(t, r.eng)
	byName := map[string]engine.ConnectorReport{}
	for _, c := range rep.Connectors {
		byName[c.Name] = c
	}
	return byName, synctest.Writes(rep)
}

// CO3 has no change filter: every run pulls every contact, and the state
// store's content hashes are what tell the changed ones. With 1,000
// contacts, a run after the first sync finds none changed and writes
// nothing; after one contact is edited in CO3, exactly that one is
// changed and written to the other side.
func TestEngineDetectsCO3ChangesByContentHash(t *testing.T) {
	const total = 1000
	for _, format := range []string{"json", "xml"} {
		t.Run(format, func(t *testing.T) {
			r := newCO3Rig(t, format)
			var ids []string
			for i := range total {
				ids = append(ids, r.emu.Seed(map[string]string{
					"contact_type":      "0",
					"contact_firstname": fmt.Sprintf("Given%04d", i),
					"contact_lastname":  "Family",
					"contact_email":     fmt.Sprintf("Person%04d@Example.com", i),
					"contact_job":       "Clerk",
				}))
			}

			first, writes := r.run(t)
			if c := first["co3"]; c.Pulled != total || c.Changed != total {
				t.Fatalf("first run: co3 pulled %d, changed %d; want %d and %d", c.Pulled, c.Changed, total, total)
			}
			if b := first["book"]; b.Created != total || writes != total {
				t.Fatalf("first run: %d created in book, %d writes; want %d", b.Created, writes, total)
			}

			r.build(t) // a new process: nothing known but the state store
			second, writes := r.run(t)
			if c := second["co3"]; c.Pulled != total || c.Changed != 0 || c.Unchanged != total {
				t.Errorf("second run: co3 pulled %d, changed %d, unchanged %d; want %d, 0, %d", c.Pulled, c.Changed, c.Unchanged, total, total)
			}
			if writes != 0 {
				t.Errorf("second run made %d writes, want 0: %+v", writes, second)
			}

			r.emu.EditAsUser(ids[417], map[string]string{"contact_job": "Head clerk"})
			r.build(t)
			third, writes := r.run(t)
			if c := third["co3"]; c.Pulled != total || c.Changed != 1 {
				t.Errorf("after one edit: co3 pulled %d, changed %d; want %d and 1", c.Pulled, c.Changed, total)
			}
			if b := third["book"]; b.Updated != 1 || writes != 1 {
				t.Errorf("after one edit: %d updated in book, %d writes; want 1 and 1", b.Updated, writes)
			}
			found := false
			for _, rec := range r.mem.Connector.(*memory.Connector).Table.List(nil) {
				if rec.Fields["email"] == "person0417@example.com" {
					found = true
					if rec.Fields["title"] != "Head clerk" {
						t.Errorf("the edit did not reach book: %v", rec.Fields)
					}
				}
			}
			if !found {
				t.Errorf("book holds no contact person0417@example.com")
			}
		})
	}
}
