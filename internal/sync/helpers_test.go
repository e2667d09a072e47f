package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/memory"
	"github.com/syncd/syncd/internal/mapping"
	"github.com/syncd/syncd/internal/state"
)

// Three CRMs that write the same person differently.
var testMappings = map[string][]mapping.Field{
	"a": {
		{Canonical: "given_name", Remote: "first"},
		{Canonical: "family_name", Remote: "last"},
		{Canonical: "email", Remote: "email"},
		{Canonical: "phone", Remote: "phone", Transforms: []string{"phone"}},
		{Canonical: "company", Remote: "company"},
	},
	"b": {
		{Canonical: "given_name", Remote: "FirstName"},
		{Canonical: "family_name", Remote: "LastName"},
		{Canonical: "email", Remote: "EMail"},
		{Canonical: "phone", Remote: "Tel", Transforms: []string{"phone:national"}},
		{Canonical: "company", Remote: "Org"},
	},
	"c": {
		{Canonical: "given_name", Remote: "given"},
		{Canonical: "family_name", Remote: "family"},
		{Canonical: "email", Remote: "mail", Transforms: []string{"upper"}},
		{Canonical: "phone", Remote: "mobile", Transforms: []string{"phone:national"}},
		{Canonical: "company", Remote: "employer"},
	},
}

// remoteNames maps canonical fields to each CRM's field names.
func remoteName(conn, canonical string) string {
	for _, f := range testMappings[conn] {
		if f.Canonical == canonical {
			return f.Remote
		}
	}
	return ""
}

type harness struct {
	t      testing.TB
	clock  *emulator.Clock
	cfg    *config.Config
	store  *state.Store
	conns  map[string]*memory.Connector
	wrap   map[string]connectors.Connector
	names  []string
	eng    *Engine
	out    bytes.Buffer
	policy string
	// logger, when set, receives the engine's log.
	logger *slog.Logger
	// pacers, when set, go to the engine for the journal's call counts.
	pacers map[string]*connectors.Pacer
	// progress, when set, receives the engine's progress events.
	progress func(ProgressEvent)
}

type harnessOpt func(h *harness)

func withPolicy(p string, prio ...string) harnessOpt {
	return func(h *harness) { h.cfg.Conflicts.Policy, h.cfg.Conflicts.Priority = p, prio }
}

func withDirection(name, dir string) harnessOpt {
	return func(h *harness) {
		cc, _ := h.cfg.ConnectorByName(name)
		cc.Direction = dir
	}
}

func withPropagate(maxCount int, ratio float64) harnessOpt {
	return func(h *harness) {
		h.cfg.Deletions = config.Deletions{Propagate: true, MaxDeleteCount: maxCount, MaxDeleteRatio: ratio}
	}
}

// newHarness builds connectors named names (mappings from testMappings)
// over memory tables sharing one clock, and a store in a temp folder.
func newHarness(t testing.TB, names []string, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, clock: &emulator.Clock{}, conns: map[string]*memory.Connector{}, wrap: map[string]connectors.Connector{}, names: names}
	h.clock.Set(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	h.cfg = &config.Config{
		Conflicts: config.Conflicts{Policy: "newest"},
		Deletions: config.Deletions{MaxDeleteRatio: 0.05, MaxDeleteCount: 50},
		Identity:  config.Identity{DefaultRegion: "GB"},
	}
	for _, n := range names {
		h.cfg.Connector = append(h.cfg.Connector, config.Connector{Name: n, Type: "memory", Direction: "both", Fields: testMappings[n]})
		c := memory.New(emulator.NewTable(h.clock), 50)
		h.conns[n] = c
		h.wrap[n] = c
	}
	for _, o := range opts {
		o(h)
	}
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), state.Options{Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.store = st
	h.build()
	return h
}

// build (re)creates the engine, as a restarted process would.
func (h *harness) build() {
	h.t.Helper()
	conns := map[string]connectors.Connector{}
	maps.Copy(conns, h.wrap)
	e, err := New(Options{Config: h.cfg, Store: h.store, Connectors: conns, Pacers: h.pacers, Logger: h.logger, Now: h.clock.Now, Progress: h.progress})
	if err != nil {
		h.t.Fatal(err)
	}
	h.eng = e
}

// tick moves the shared clock on, so edits are newer than the cursor.
func (h *harness) tick() { h.clock.Advance(time.Second) }

func (h *harness) sync(ro ...RunOptions) *Report {
	h.t.Helper()
	var o RunOptions
	if len(ro) > 0 {
		o = ro[0]
	}
	if o.Out == nil {
		h.out.Reset()
		o.Out = &h.out
	}
	rep, err := h.eng.Run(context.Background(), o)
	if err != nil {
		h.t.Fatalf("run: %v", err)
	}
	h.tick()
	return rep
}

// writes counts create, update and delete calls on every connector.
func (h *harness) writes() int {
	n := 0
	for _, c := range h.conns {
		n += c.Hooks.Calls("create") + c.Hooks.Calls("update") + c.Hooks.Calls("delete")
	}
	return n
}

// person returns CRM fields for canonical values in conn's dialect.
func person(conn string, v map[string]string) map[string]string {
	out := map[string]string{}
	for k, val := range v {
		if r := remoteName(conn, k); r != "" {
			out[r] = val
		}
	}
	return out
}

func (h *harness) insert(conn string, v map[string]string) string {
	return fmt.Sprint(h.conns[conn].Table.Insert(person(conn, v)))
}

func (h *harness) edit(conn, id string, v map[string]string) {
	h.t.Helper()
	var n int64
	fmt.Sscan(id, &n)
	if !h.conns[conn].Table.Update(n, person(conn, v)) {
		h.t.Fatalf("edit %s %s: no such record", conn, id)
	}
}

// canonicalRows returns every live record of conn mapped to canonical.
func (h *harness) canonicalRows(conn string) map[string]state.Values {
	cn := h.eng.byName[conn]
	out := map[string]state.Values{}
	for _, r := range h.conns[conn].Table.List(nil) {
		out[fmt.Sprint(r.ID)] = cn.canonical(r.Fields)
	}
	return out
}

// findBy returns the canonical values of conn's records whose email
// matches (normalised).
func (h *harness) findBy(conn, email string) []state.Values {
	var out []state.Values
	want := mapping.Normalize("email", email, mapping.Options{})
	rows := h.canonicalRows(conn)
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		if rows[id]["email"] == want {
			out = append(out, rows[id])
		}
	}
	return out
}

func (h *harness) one(conn, email string) state.Values {
	h.t.Helper()
	got := h.findBy(conn, email)
	if len(got) != 1 {
		h.t.Fatalf("%s: %d records with email %s, want 1", conn, len(got), email)
	}
	return got[0]
}

func (h *harness) conflicts(status string) []state.Conflict {
	h.t.Helper()
	cs, err := h.store.Conflicts(context.Background(), status, 10000)
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

func (h *harness) status() *state.Status {
	h.t.Helper()
	st, err := h.store.Status(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

var _ = io.Discard
