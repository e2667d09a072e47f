package crmsim_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors/clientapi/clientapitest"
	"github.com/syncd/syncd/internal/connectors/clientbook/clientbooktest"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/registry"
	"github.com/syncd/syncd/internal/crmsim"
	engine "github.com/syncd/syncd/internal/sync"
	"github.com/syncd/syncd/internal/sync/synctest"
)

// rig is the engine wired to a simulator the way cmd/syncd wires it.
type rig struct {
	sim *crmsim.Sim
	eng *engine.Engine
}

func newRig(t *testing.T, only ...string) *rig {
	t.Helper()
	return newRigWith(t, rigOptions{}, only...)
}

// rigOptions adjust a rig.
type rigOptions struct {
	// clock is the emulators' clock (real time when nil).
	clock *emulator.Clock
	// config rewrites the generated config text.
	config func(string) string
	// types replaces the registry of connector types.
	types config.Registry
}

func newRigWith(t *testing.T, o rigOptions, only ...string) *rig {
	t.Helper()
	sim, err := crmsim.Start(crmsim.Options{People: 60, Seed: 7, Only: only, Clock: o.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	text, err := sim.Config(crmsim.ConfigOptions{State: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	if o.config != nil {
		text = o.config(text)
	}
	cfg, st := synctest.Load(t, dir, text, o.types)
	eng := synctest.Engine(t, cfg, st, synctest.Connectors(t, cfg))
	return &rig{sim: sim, eng: eng}
}

func (r *rig) run(t *testing.T) *engine.Report {
	t.Helper()
	return synctest.Run(t, r.eng)
}

// holderConfig maps the client area's lastlogin onto notes, which OpenCRM
// (description) and CO3 (contact_note) carry, and leaves out the
// config's explicit exclude of it: only the clientapi type's own default
// exclusion keeps a login from counting as a change.
func holderConfig(t *testing.T) func(string) string {
	return func(text string) string {
		const exclude = "exclude = [\"lastlogin\"]\n"
		text = strings.TrimRight(text, "\n")
		if !strings.Contains(text, exclude) || !strings.HasSuffix(text, "remote = \"country\"") {
			t.Fatalf("crmsim config no longer ends with the hosting connector excluding lastlogin:\n%s", text)
		}
		return strings.Replace(text, exclude, "", 1) + "\n\n[[connectors.fields]]\ncanonical = \"notes\"\nremote = \"lastlogin\"\n"
	}
}

// loginRig syncs the client area's account holder (also an OpenCRM
// contact, not a CO3 one) into OpenCRM and CO3 on a frozen clock, checks
// that the holder is in each exactly once, then lets an hour pass and the
// holder log in. It returns the rig and the write calls a run then makes.
func loginRig(t *testing.T, types config.Registry) (*rig, int) {
	t.Helper()
	clock := &emulator.Clock{}
	clock.Set(time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC))
	r := newRigWith(t, rigOptions{clock: clock, config: holderConfig(t), types: types}, "opencrm", "co3", "clientapi")
	holder := r.sim.People[0].Email
	if rep := r.run(t); rep.ExitCode() != 0 {
		t.Fatalf("first run exit %d: %+v", rep.ExitCode(), rep)
	}
	for _, crm := range []string{"opencrm", "co3"} {
		if n := len(r.sim.Tables()[crm].List(func(c *emulator.Contact) bool {
			return strings.EqualFold(strings.TrimSpace(c.Fields[crmsim.EmailFields[crm]]), holder)
		})); n != 1 {
			t.Errorf("%s holds the account holder %s %d times, want once", crm, holder, n)
		}
	}

	id := r.sim.ClientAPI.ID()
	before, _ := r.sim.ClientAPI.Fields(id)
	clock.Advance(time.Hour)
	r.sim.ClientAPI.Login()
	after, _ := r.sim.ClientAPI.Fields(id)
	if want := clock.Now().UTC().Format(clientapitest.DateLayout); after["lastlogin"] != want || after["lastlogin"] == before["lastlogin"] {
		t.Fatalf("the login left lastlogin %q (was %q), want %q", after["lastlogin"], before["lastlogin"], want)
	}
	writes := func() int { return r.sim.OpenCRM.Calls("edit_contact") + r.sim.CO3.Calls("setContact") }
	reads, w := r.sim.ClientAPI.Calls(clientapitest.MethodGetDetails), writes()
	if rep := r.run(t); rep.ExitCode() != 0 {
		t.Fatalf("run after the login exit %d: %+v", rep.ExitCode(), rep)
	}
	if r.sim.ClientAPI.Calls(clientapitest.MethodGetDetails) == reads {
		t.Fatal("the run after the login did not read the client area")
	}
	return r, writes() - w
}

// The hosting account's holder reaches the other CRMs once; a login, which
// changes lastlogin, is not a contact change and makes no write, though
// lastlogin is mapped, because the clientapi type excludes it from change
// detection by default.
func TestClientAPISyncsOnceAndIgnoresLastLogin(t *testing.T) {
	r, w := loginRig(t, nil)
	if w != 0 {
		t.Fatalf("a run after a login made %d write calls, want 0", w)
	}
	// A real edit in the client area travels; the client area is never written.
	r.sim.Clock.Advance(time.Minute)
	r.sim.ClientAPI.EditAsUser(r.sim.ClientAPI.ID(), map[string]string{"city": "Łódź"})
	r.run(t)
	id := r.sim.FindByEmail("opencrm", r.sim.People[0].Email)
	if f, _ := r.sim.OpenCRM.Fields(id); f["mailingcity"] != "Łódź" {
		t.Errorf("city edit did not reach OpenCRM: %v", f)
	}
}

// Without the type's default exclusion the same login is a change that is
// written to the other CRMs: the test above would see it.
func TestClientAPILastLoginWrittenWithoutDefaultExclusion(t *testing.T) {
	types := registry.Types()
	kind := types["clientapi"]
	if !slices.Contains(kind.ExcludedFields, "lastlogin") {
		t.Fatalf("the clientapi type does not exclude lastlogin: %v", kind.ExcludedFields)
	}
	kind.ExcludedFields = nil
	types["clientapi"] = kind
	if _, w := loginRig(t, types); w == 0 {
		t.Fatal("with lastlogin compared, a login made no write: the mapping does not carry it")
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
