package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/state"
)

// Over several chunks of entities, the run (which reads each chunk
// beside the writer while the one before commits) plans exactly what a
// dry run (which reads every chunk in its own transaction) plans, and
// does it: no duplicates, no person missed, nothing left to write.
func TestChunksReadAheadPlanWhatTheDryRunPlans(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	const people = 2*chunk + 100
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

func (panickyReader) DirtyEntityBatch(int64, int) ([]state.DirtyEntity, error) { panic("boom") }
func (panickyReader) OpenConflicts(int64) (map[string]state.Conflict, error) {
	return nil, errors.New("unused")
}
func (panickyReader) EntityOutbox(int64) ([]state.OutboxItem, error) {
	return nil, errors.New("unused")
}

// A panic while a chunk is read or merged, in the goroutine that reads
// ahead, travels with the chunk and is raised again by the goroutine that
// takes it, where the run's recovery catches it.
func TestPreparedChunkCarriesPanics(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	r := &run{e: h.eng}
	pc := r.prepareChunk(panickyReader{}, 0)
	if pc.panicked != "boom" {
		t.Fatalf("prepared chunk: panicked %v, want boom", pc.panicked)
	}
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("raise: recovered %v, want boom", v)
		}
	}()
	pc.raise()
}
