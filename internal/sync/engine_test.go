package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/state"
)

func ann() map[string]string {
	return map[string]string{"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com", "phone": "+44 20 7946 0001", "company": "Acme"}
}

func TestFirstSyncOfSharedPeopleMakesNoDuplicates(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	for i := range 120 {
		v := map[string]string{"given_name": fmt.Sprint("P", i), "family_name": "X", "email": fmt.Sprintf("p%d@example.com", i), "phone": fmt.Sprintf("+44 20 7946 %04d", i)}
		h.insert("a", v)
		if i%2 == 0 {
			// Shared people, written as b writes them.
			v["email"] = strings.ToUpper(v["email"])
			v["phone"] = fmt.Sprintf("020 7946 %04d", i)
			h.insert("b", v)
		}
	}
	for i := range 30 {
		h.insert("b", map[string]string{"given_name": "Q", "email": fmt.Sprintf("q%d@example.com", i)})
	}
	rep := h.sync()
	if rep.ExitCode() != 0 {
		t.Fatalf("exit %d: %+v", rep.ExitCode(), rep)
	}
	if n := h.conns["a"].Table.Len(); n != 150 {
		t.Errorf("a holds %d contacts, want 150", n)
	}
	if n := h.conns["b"].Table.Len(); n != 150 {
		t.Errorf("b holds %d contacts, want 150", n)
	}
	if st := h.status(); st.Entities != 150 {
		t.Errorf("%d entities, want 150", st.Entities)
	}
	if a, b := rep.Connectors[0], rep.Connectors[1]; a.Matched+b.Matched != 60 || a.Created != 30 || b.Created != 60 {
		t.Errorf("matched %d+%d, created a %d b %d; want 60 matched, 30 and 60 created", a.Matched, b.Matched, a.Created, b.Created)
	}
	before := h.writes()
	rep = h.sync()
	if w := h.writes() - before; w != 0 {
		t.Errorf("second sync made %d writes, want 0", w)
	}
	if rep.Connectors[0].Changed != 0 || rep.Connectors[1].Changed != 0 {
		t.Errorf("second sync saw changes: %+v", rep.Connectors)
	}
}

func TestEditOnAReachesB(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	id := h.insert("a", ann())
	h.sync()
	if got := h.one("b", "ann@example.com"); got["company"] != "Acme" || got["phone"] != "+442079460001" {
		t.Fatalf("b after create: %v", got)
	}
	h.edit("a", id, map[string]string{"company": "Beta Ltd"})
	rep := h.sync()
	if got := h.one("b", "ann@example.com")["company"]; got != "Beta Ltd" {
		t.Errorf("b company = %q, want Beta Ltd", got)
	}
	if rep.Connectors[1].Updated != 1 {
		t.Errorf("b updated %d, want 1", rep.Connectors[1].Updated)
	}
	// The echo of the push changes nothing.
	before := h.writes()
	h.sync()
	if w := h.writes() - before; w != 0 {
		t.Errorf("echo run made %d writes", w)
	}
}

func TestDifferentFieldsEditedOnBothSidesSurvive(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	ida := h.insert("a", ann())
	h.sync()
	idb := h.findID("b", "ann@example.com")
	h.edit("a", ida, map[string]string{"company": "Beta"})
	h.edit("b", idb, map[string]string{"family_name": "Smith"})
	rep := h.sync()
	for _, c := range []string{"a", "b"} {
		got := h.one(c, "ann@example.com")
		if got["company"] != "Beta" || got["family_name"] != "Smith" {
			t.Errorf("%s: %v, want company Beta and family_name Smith", c, got)
		}
	}
	if rep.Conflicts != 0 || len(h.conflicts("")) != 0 {
		t.Errorf("conflicts recorded for different fields")
	}
}

func (h *harness) findID(conn, email string) string {
	h.t.Helper()
	rows := h.canonicalRows(conn)
	for id, v := range rows {
		if v["email"] == email {
			return id
		}
	}
	h.t.Fatalf("%s: no record with email %s", conn, email)
	return ""
}

func TestSameFieldEditedOnBothSides(t *testing.T) {
	cases := []struct {
		name       string
		opts       []harnessOpt
		editBFirst bool
		want       string // company everywhere after the run; "" for manual
		status     string
	}{
		{name: "newest", opts: []harnessOpt{withPolicy("newest")}, want: "FromB", status: state.ConflictSettled},
		{name: "newest other order", opts: []harnessOpt{withPolicy("newest")}, editBFirst: true, want: "FromA", status: state.ConflictSettled},
		{name: "priority", opts: []harnessOpt{withPolicy("priority", "a", "b")}, want: "FromA", status: state.ConflictSettled},
		{name: "manual", opts: []harnessOpt{withPolicy("manual")}, status: state.ConflictOpen},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []string{"a", "b"}, tc.opts...)
			ida := h.insert("a", ann())
			h.sync()
			idb := h.findID("b", "ann@example.com")
			editA := func() { h.edit("a", ida, map[string]string{"company": "FromA", "given_name": "Anna"}) }
			editB := func() { h.edit("b", idb, map[string]string{"company": "FromB"}) }
			if tc.editBFirst {
				editB()
				h.tick()
				editA()
			} else {
				editA()
				h.tick()
				editB()
			}
			rep := h.sync()
			cs := h.conflicts("")
			if len(cs) != 1 {
				t.Fatalf("%d conflicts, want 1: %+v", len(cs), cs)
			}
			c := cs[0]
			if c.Field != "company" || c.Candidates["a"] != "FromA" || c.Candidates["b"] != "FromB" || c.Base != "Acme" || c.Status != tc.status || c.Reason == "" {
				t.Errorf("conflict = %+v", c)
			}
			a, b := h.one("a", "ann@example.com"), h.one("b", "ann@example.com")
			// The other field of the same contact syncs regardless.
			if b["given_name"] != "Anna" {
				t.Errorf("b given_name = %q, want Anna", b["given_name"])
			}
			if tc.status == state.ConflictOpen {
				if a["company"] != "FromA" || b["company"] != "FromB" {
					t.Errorf("manual: sides changed: a %q b %q", a["company"], b["company"])
				}
				if rep.ExitCode() != 3 || rep.Conflicts != 1 {
					t.Errorf("manual: exit %d conflicts %d, want 3 and 1", rep.ExitCode(), rep.Conflicts)
				}
				if st := h.status(); len(st.OpenConflicts) != 1 {
					t.Errorf("status shows %d open conflicts", len(st.OpenConflicts))
				}
				// A second run leaves the parked field alone.
				before := h.writes()
				h.sync()
				if w := h.writes() - before; w != 0 {
					t.Errorf("run with an open conflict made %d writes", w)
				}
				if err := h.eng.ResolveConflict(context.Background(), c.ID, "b", nil); err != nil {
					t.Fatal(err)
				}
				rep = h.sync()
				if a := h.one("a", "ann@example.com"); a["company"] != "FromB" {
					t.Errorf("after resolve: a company = %q, want FromB", a["company"])
				}
				if rep.ExitCode() != 0 {
					t.Errorf("after resolve exit %d", rep.ExitCode())
				}
				if cs := h.conflicts(state.ConflictResolved); len(cs) != 1 || cs[0].Winner != "b" {
					t.Errorf("resolved conflicts = %+v", cs)
				}
				return
			}
			if a["company"] != tc.want || b["company"] != tc.want || c.Decision != tc.want {
				t.Errorf("company a %q b %q decision %q, want %q", a["company"], b["company"], c.Decision, tc.want)
			}
			if rep.ExitCode() != 0 {
				t.Errorf("exit %d, want 0 (settled conflicts need no attention)", rep.ExitCode())
			}
		})
	}
}

func TestDeleteGuardedByMaxDelete(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withPropagate(3, 0.5))
	var ids []string
	for i := range 10 {
		ids = append(ids, h.insert("a", map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)}))
	}
	h.sync()
	if n := h.conns["b"].Table.Len(); n != 10 {
		t.Fatalf("b holds %d", n)
	}
	// Five deletions are more than max_delete_count 3: nothing happens.
	for _, id := range ids[:5] {
		var n int64
		fmt.Sscan(id, &n)
		h.conns["a"].Table.Delete(n)
	}
	rep := h.sync(RunOptions{Full: true})
	if rep.DeletionsBlocked == "" || rep.ExitCode() != 3 {
		t.Fatalf("deletions not blocked: %+v", rep)
	}
	if n := h.conns["b"].Table.Len(); n != 10 {
		t.Errorf("b holds %d after a blocked run, want 10", n)
	}
	if st := h.status(); st.Runs[0].DeletionsBlocked == "" {
		t.Errorf("status does not show the blocked deletions")
	}
	// Raised limits let the held tombstones through on the next run.
	h.cfg.Deletions.MaxDeleteCount = 10
	h.build()
	rep = h.sync()
	if rep.DeletionsBlocked != "" || rep.Connectors[1].Deleted != 5 {
		t.Fatalf("second run: %+v", rep)
	}
	if n := h.conns["b"].Table.Len(); n != 5 {
		t.Errorf("b holds %d, want 5", n)
	}
	// One deletion within the limits goes through, found by id listing
	// after an incremental pull.
	var n int64
	fmt.Sscan(ids[7], &n)
	h.conns["a"].Table.Delete(n)
	rep = h.sync()
	if rep.Connectors[1].Deleted != 1 || h.conns["b"].Table.Len() != 4 {
		t.Errorf("single deletion: %+v, b holds %d", rep.Connectors[1], h.conns["b"].Table.Len())
	}
}

func TestDeletionsNotPropagatedByDefault(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	id := h.insert("a", ann())
	h.sync()
	var n int64
	fmt.Sscan(id, &n)
	h.conns["a"].Table.Delete(n)
	rep := h.sync()
	if h.conns["b"].Table.Len() != 1 || rep.ExitCode() != 0 {
		t.Fatalf("b lost its record or exit %d", rep.ExitCode())
	}
	// The person is not created again in a.
	h.sync()
	if h.conns["a"].Table.Len() != 0 {
		t.Errorf("a got the deleted person back")
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withPolicy("manual"))
	ida := h.insert("a", ann())
	h.sync()
	idb := h.findID("b", "ann@example.com")
	h.edit("a", ida, map[string]string{"company": "FromA"})
	h.edit("b", idb, map[string]string{"family_name": "Smith", "company": "FromB"})
	h.insert("a", map[string]string{"given_name": "Bob", "email": "bob@example.com"})
	before := h.writes()
	stBefore := h.status()
	rep := h.sync(RunOptions{DryRun: true})
	if w := h.writes() - before; w != 0 {
		t.Fatalf("dry run made %d writes", w)
	}
	plan := h.out.String()
	for _, want := range []string{"create b", `bob@example.com`, "update a", `family_name: "Lee" → "Smith"`, "conflict", "company"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	st := h.status()
	if len(st.OpenConflicts) != 0 || st.Entities != stBefore.Entities || st.Runs[0].Status != state.RunDry || !rep.DryRun {
		t.Errorf("dry run left state behind: %+v", st)
	}
	// The real run then does what the plan said.
	h.sync()
	if h.one("a", "ann@example.com")["family_name"] != "Smith" || len(h.findBy("b", "bob@example.com")) != 1 {
		t.Errorf("real run after dry run did not apply the plan")
	}
}

func TestPullOnlyConnectorIsNeverWritten(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withDirection("b", "pull"))
	h.insert("a", ann())
	idb := h.insert("b", map[string]string{"given_name": "Bo", "email": "bo@example.com"})
	h.sync()
	h.edit("b", idb, map[string]string{"company": "Zed"})
	h.sync()
	if c := h.conns["b"]; c.Hooks.Calls("create")+c.Hooks.Calls("update")+c.Hooks.Calls("delete") != 0 {
		t.Errorf("pull-only b was written: %v", c.Hooks.CallCounts())
	}
	if h.conns["b"].Table.Len() != 1 {
		t.Errorf("b holds %d", h.conns["b"].Table.Len())
	}
	if got := h.one("a", "bo@example.com")["company"]; got != "Zed" {
		t.Errorf("a did not receive b's edit: %q", got)
	}
}

func TestPushConnectorOnlyReceives(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withDirection("b", "push"))
	h.insert("a", ann())
	h.sync()
	idb := h.findID("b", "ann@example.com")
	h.edit("b", idb, map[string]string{"company": "Local edit"})
	h.sync()
	if got := h.one("a", "ann@example.com")["company"]; got != "Acme" {
		t.Errorf("a took a push connector's value: %q", got)
	}
	if got := h.one("b", "ann@example.com")["company"]; got != "Acme" {
		t.Errorf("b not brought back to the agreed value: %q", got)
	}
}

func TestRejectedRecordFailsAndRunContinues(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	for i := range 5 {
		h.insert("a", map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)})
	}
	h.conns["b"].Hooks.FailNext("create", 1, emulator.Fault{Status: 422})
	rep := h.sync()
	if rep.Failed != 1 || rep.Connectors[1].Failed != 1 || rep.Connectors[1].Created != 4 || rep.ExitCode() != 3 {
		t.Fatalf("report: %+v", rep)
	}
	st := h.status()
	if len(st.Failures) != 1 || !strings.Contains(st.Failures[0].LastError, "422") {
		t.Errorf("status failures: %+v", st.Failures)
	}
	rep = h.sync()
	if rep.Failed != 0 || h.conns["b"].Table.Len() != 5 || rep.ExitCode() != 0 {
		t.Errorf("retry: %+v, b holds %d", rep, h.conns["b"].Table.Len())
	}
}

// authFail is a connector whose writes fail authentication.
type authFail struct {
	connectors.Connector
	connectors.Writer
}

func (authFail) Create(context.Context, map[string]string) (string, error) {
	return "", fmt.Errorf("fake: create: %w", connectors.ErrAuth)
}

func TestAuthFailureStopsOnlyThatConnector(t *testing.T) {
	h := newHarness(t, []string{"a", "b", "c"})
	h.wrap["b"] = authFail{Connector: h.conns["b"], Writer: h.conns["b"]}
	h.build()
	for i := range 3 {
		h.insert("a", map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)})
	}
	rep := h.sync()
	if !errors.Is(rep.Connectors[1].Err, connectors.ErrAuth) || rep.ExitCode() != 1 {
		t.Fatalf("b: %+v", rep.Connectors[1])
	}
	if h.conns["c"].Table.Len() != 3 {
		t.Errorf("c holds %d, want 3", h.conns["c"].Table.Len())
	}
}

func TestAmbiguousMatchIsParked(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	h.insert("a", map[string]string{"given_name": "A", "email": "a@x.org", "phone": "+44 20 7946 0001"})
	h.insert("a", map[string]string{"given_name": "A", "email": "a@x.org"})
	rep := h.sync()
	if rep.Parked != 1 || rep.ExitCode() != 3 {
		t.Fatalf("report %+v", rep)
	}
	st := h.status()
	if len(st.Parked) != 1 || !strings.Contains(st.Parked[0].Reason, "already linked") {
		t.Errorf("parked: %+v", st.Parked)
	}
	if n := h.conns["b"].Table.Len(); n != 1 {
		t.Errorf("b holds %d, want 1", n)
	}
}

// An incremental pull of a connector that counts its records lists every
// id only when the count differs from the records the store holds: a
// no-op run spares the listing, and a deletion is still found.
func TestRecordCountSparesIDListing(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withPropagate(5, 0.5))
	var ids []string
	for i := range 6 {
		ids = append(ids, h.insert("a", map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)}))
	}
	h.sync()
	h.tick()
	a := h.conns["a"]
	a.Hooks.ResetCalls()
	h.sync()
	if n := a.Hooks.Calls("ids"); n != 0 {
		t.Errorf("no-op run listed ids %d times, want 0 (count %d)", n, a.Hooks.Calls("count"))
	}
	if n := a.Hooks.Calls("count"); n != 1 {
		t.Errorf("no-op run counted %d times, want 1", n)
	}

	var n int64
	fmt.Sscan(ids[2], &n)
	a.Table.Delete(n)
	h.tick()
	a.Hooks.ResetCalls()
	rep := h.sync()
	if a.Hooks.Calls("ids") != 1 {
		t.Errorf("run after a deletion listed ids %d times, want 1", a.Hooks.Calls("ids"))
	}
	if rep.Connectors[1].Deleted != 1 || h.conns["b"].Table.Len() != 5 {
		t.Errorf("deletion not found: %+v, b holds %d", rep.Connectors[1], h.conns["b"].Table.Len())
	}

	// A failing count falls back to the listing.
	fmt.Sscan(ids[3], &n)
	a.Table.Delete(n)
	h.tick()
	a.Hooks.ResetCalls()
	a.Hooks.FailNext("count", 1, emulator.Fault{Status: 500})
	rep = h.sync()
	if a.Hooks.Calls("ids") != 1 || rep.Connectors[1].Deleted != 1 {
		t.Errorf("failed count: listed %d times, deleted %d", a.Hooks.Calls("ids"), rep.Connectors[1].Deleted)
	}
}

// Push progress names how many writes the drain will make, so that a
// long push (a first sync into a rate-limited CRM) shows an ETA.
func TestPushProgressHasATotal(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	for i := range 5 {
		h.insert("a", map[string]string{"given_name": fmt.Sprint("P", i), "email": fmt.Sprintf("p%d@example.com", i)})
	}
	var mu sync.Mutex
	var pushes []ProgressEvent
	h.eng.progress = func(ev ProgressEvent) {
		if ev.Phase == "push" {
			mu.Lock()
			pushes = append(pushes, ev)
			mu.Unlock()
		}
	}
	h.sync()
	if len(pushes) == 0 {
		t.Fatal("no push progress")
	}
	for _, ev := range pushes {
		if ev.Connector != "b" || ev.Total != 5 {
			t.Errorf("push progress %+v, want connector b with total 5", ev)
		}
	}
	if last := pushes[len(pushes)-1]; !last.Done || last.Records != 5 {
		t.Errorf("last push progress %+v, want 5 records, done", last)
	}
}
