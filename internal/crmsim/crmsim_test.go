package crmsim_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/clientbook/clientbooktest"
	"github.com/syncd/syncd/internal/connectors/registry"
	"github.com/syncd/syncd/internal/crmsim"
	"github.com/syncd/syncd/internal/redact"
	"github.com/syncd/syncd/internal/state"
	engine "github.com/syncd/syncd/internal/sync"
)

// rig is the engine wired to a simulator the way cmd/syncd wires it.
type rig struct {
	sim *crmsim.Sim
	eng *engine.Engine
}

func newRig(t *testing.T, only ...string) *rig {
	t.Helper()
	sim, err := crmsim.Start(crmsim.Options{People: 60, Seed: 7, Only: only})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	text, err := sim.Config(crmsim.ConfigOptions{State: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(text), filepath.Join(dir, "config.toml"), registry.Types(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("crmsim config: %v", err)
	}
	ctx := context.Background()
	st, err := state.Open(ctx, cfg.StatePath(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	built, err := registry.Build(cfg, registry.BuildOptions{Redactor: redact.New(cfg.Secrets()...)})
	if err != nil {
		t.Fatal(err)
	}
	conns := map[string]connectors.Connector{}
	pacers := map[string]*connectors.Pacer{}
	for _, b := range built {
		conns[b.Name], pacers[b.Name] = b.Connector, b.Pacer
	}
	eng, err := engine.New(engine.Options{Config: cfg, Store: st, Connectors: conns, Pacers: pacers})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{sim: sim, eng: eng}
}

func (r *rig) run(t *testing.T) *engine.Report {
	t.Helper()
	rep, err := r.eng.Run(context.Background(), engine.RunOptions{Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func writes(rep *engine.Report) (n int64) {
	for _, c := range rep.Connectors {
		n += c.Writes
	}
	return n
}

// The hosting account's holder reaches the other CRMs once; a login, which
// changes lastlogin, is not a contact change and makes no write.
func TestClientAPISyncsOnceAndIgnoresLastLogin(t *testing.T) {
	r := newRig(t, "opencrm", "clientapi")
	// Make the holder someone OpenCRM does not know yet.
	r.sim.ClientAPI.EditAsUser(r.sim.ClientAPI.ID(), map[string]string{"email": "holder@hosting.example", "firstname": "Hana", "lastname": "Holder"})
	rep := r.run(t)
	if code := rep.ExitCode(); code != 0 {
		t.Fatalf("first run exit %d: %+v", code, rep)
	}
	id := r.sim.FindByEmail("opencrm", "holder@hosting.example")
	if id == "" {
		t.Fatalf("the client-area account did not reach OpenCRM")
	}
	if f, _ := r.sim.OpenCRM.Fields(id); f["firstname"] != "Hana" || f["lastname"] != "Holder" {
		t.Errorf("OpenCRM holds %v", f)
	}
	r.sim.ClientAPI.Login()
	rep = r.run(t)
	if w := writes(rep); w != 0 {
		t.Fatalf("a run after a login made %d writes, want 0", w)
	}
	if n := r.sim.ClientAPI.Calls("*"); n == 0 {
		t.Fatal("client API never called")
	}
	// A real edit in the client area travels; the client area is never written.
	r.sim.ClientAPI.EditAsUser(r.sim.ClientAPI.ID(), map[string]string{"city": "Łódź"})
	r.run(t)
	if f, _ := r.sim.OpenCRM.Fields(id); f["mailingcity"] != "Łódź" {
		t.Errorf("city edit did not reach OpenCRM: %v", f)
	}
}

// Client Book's permanent auth errors stop Client Book only; the other
// connectors of the run carry on and say nothing about it.
func TestClientBookAuthErrorsStopOnlyClientBook(t *testing.T) {
	for _, status := range []int{507, 508, 509} {
		r := newRig(t, "opencrm", "co3", "clientbook")
		r.sim.ClientBook.FailNext("*", 100, clientbooktest.AuthFault(status))
		rep := r.run(t)
		var cb, others engine.ConnectorReport
		for _, c := range rep.Connectors {
			if c.Name == "clientbook" {
				cb = c
			} else if c.Err != nil {
				others = c
			}
		}
		if cb.Err == nil || !strings.Contains(cb.Err.Error(), map[int]string{507: "app_id", 508: "access token", 509: "disabled"}[status]) {
			t.Errorf("%d: clientbook error = %v", status, cb.Err)
		}
		if others.Err != nil {
			t.Errorf("%d: %s failed too: %v", status, others.Name, others.Err)
		}
		if r.sim.CO3.Table().Len() != 60 {
			t.Errorf("%d: CO3 did not receive OpenCRM's people (holds %d)", status, r.sim.CO3.Table().Len())
		}
		if got := r.sim.ClientBook.Calls("clients/list"); got > 1 {
			t.Errorf("%d: permanent error retried: %d list calls", status, got)
		}
	}
}
