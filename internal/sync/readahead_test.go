package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/state"
)

// Over several chunks of entities, the run (which reads each chunk in a
// transaction of its own and prepares it outside any, while the pushes
// run beside it, and after aheadAfter entities reads the chunks ahead on
// a reader connection) plans exactly what a dry run (which reads every
// chunk in its one transaction) plans, and does it: no duplicates, no
// person missed, nothing left to write.
// (TestPushesWaitForReconciliationOverOlderItems runs all chunks read
// ahead.)
func TestChunksReadAheadPlanWhatTheDryRunPlans(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		t.Run(fmt.Sprint("ahead=", ahead), func(t *testing.T) { testChunksPlanWhatTheDryRunPlans(t, ahead) })
	}
}

func testChunksPlanWhatTheDryRunPlans(t *testing.T, ahead bool) {
	h := newHarness(t, []string{"a", "b"})
	var logs syncBuffer
	h.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.build()
	if ahead {
		h.eng.aheadAfter = 2 * entityChunk
	}
	const people = 4*entityChunk + 100
	for i := range people {
		v := map[string]string{"given_name": fmt.Sprint("P", i), "family_name": "X", "email": fmt.Sprintf("p%d@example.com", i)}
		h.insert("a", v)
		if i%2 == 0 {
			v["email"] = strings.ToUpper(v["email"])
			v["company"] = fmt.Sprint("Co", i)
			h.insert("b", v)
		}
	}
	dry := h.sync(RunOptions{DryRun: true})
	dryPlan := sortedLines(h.out.String())
	rep := h.sync()
	if rep.ExitCode() != 0 {
		t.Fatalf("exit %d: %+v", rep.ExitCode(), rep)
	}
	if read := strings.Contains(logs.String(), `msg="reading ahead" run=2 phase=reconcile after=500`); read != ahead {
		t.Errorf("reconciliation read ahead: %v, want %v", read, ahead)
	}
	for i, c := range rep.Connectors {
		if d := dry.Connectors[i]; c.Created != d.Created || c.Updated != d.Updated {
			t.Errorf("%s: run created %d and updated %d, the dry run planned %d and %d", c.Name, c.Created, c.Updated, d.Created, d.Updated)
		}
	}
	if a, b := rep.Connectors[0], rep.Connectors[1]; a.Updated != people/2 || b.Created != people/2 {
		t.Errorf("a updated %d, b created %d; want %d each", a.Updated, b.Created, people/2)
	}
	if len(dryPlan) != people {
		t.Errorf("the dry run printed %d plan lines, want %d", len(dryPlan), people)
	}
	for _, n := range []string{"a", "b"} {
		if got := h.conns[n].Table.Len(); got != people {
			t.Errorf("%s holds %d contacts, want %d", n, got, people)
		}
	}
	if st := h.status(); st.Entities != people {
		t.Errorf("%d entities, want %d", st.Entities, people)
	}
	before := h.writes()
	h.sync()
	if w := h.writes() - before; w != 0 {
		t.Errorf("the next sync made %d writes, want 0", w)
	}
}

func sortedLines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(l, "create ") || strings.HasPrefix(l, "update ") {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// panickyReader fails the way a bug in reading or merging would.
type panickyReader struct{}

func (panickyReader) DirtyRecords(int64, int) ([]state.DirtyRecord, error) { panic("boom") }
func (panickyReader) DirtyEntityBatch(int64, int) ([]state.DirtyEntity, error) {
	panic("boom")
}
func (panickyReader) OpenConflicts(int64) (map[string]state.Conflict, error) {
	return nil, errors.New("unused")
}
func (panickyReader) EntityOutbox(int64) ([]state.OutboxItem, error) {
	return nil, errors.New("unused")
}

// A panic while a chunk is read or prepared, in the goroutine that reads
// ahead, travels with the chunk and is raised again by the goroutine that
// takes it, where the run's recovery catches it.
func TestChunkCarriesPanics(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	r := &run{e: h.eng}
	raised := func(c interface{ raise() }) (v any) {
		defer func() { v = recover() }()
		c.raise()
		return nil
	}
	link := chunked[linkRecord]{read: readDirtyRecords}.readChunk(panickyReader{}, 0)
	rec := chunked[prepared]{read: r.readEntities}.readChunk(panickyReader{}, 0)
	prep := chunkOf[prepared]{items: make([]prepared, 3)}
	chunked[prepared]{prepare: func([]prepared) { panic("boom") }}.prepareChunk(&prep)
	for name, c := range map[string]interface{ raise() }{"link read": &link, "reconcile read": &rec, "prepare": &prep} {
		if v := raised(c); v != "boom" {
			t.Errorf("%s: raise recovered %v, want boom", name, v)
		}
	}
}

// A panic while a chunk is prepared fails the run with an error
// (journalled), instead of crashing the process; the next run converges.
// (TestChunkCarriesPanics covers the goroutine that reads ahead.)
func TestPanicPreparingFailsTheRun(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	h.insert("a", ann())
	// A mapping bug panics where a create payload is written, which
	// reconciliation does while preparing a chunk.
	h.eng.byName["b"].mapper = nil
	rep, err := h.eng.Run(context.Background(), RunOptions{})
	if err == nil || !errors.Is(err, errPanic) || rep == nil {
		t.Fatalf("run: %v (report %+v), want a panic error", err, rep)
	}
	if r := h.status().Runs[0]; r.Status != state.RunFailed {
		t.Errorf("journal: status %q error %q", r.Status, r.Error)
	}
	h.build()
	if rep := h.sync(); rep.ExitCode() != 0 || h.conns["b"].Table.Len() != 1 {
		t.Errorf("next run: exit %d, b holds %d", rep.ExitCode(), h.conns["b"].Table.Len())
	}
}
