package engine

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/mapping"
	"github.com/syncd/syncd/internal/state"
)

var (
	bigConvergence = flag.Bool("engine.big", false, "run the convergence test at a larger size")
	convergeSeed   = flag.Uint64("engine.seed", 1, "seed of the convergence test")
)

// edit is one random change a user made on one side in a round.
type userEdit struct {
	conn, id, field, value string
}

// TestRandomisedConvergence lets users edit, create and delete contacts
// on three CRMs at random, with a sync after every round, and checks the
// sync's promises after each.
func TestRandomisedConvergence(t *testing.T) {
	people, rounds := 200, 12
	if testing.Short() || raceEnabled {
		people, rounds = 40, 4
	}
	if *bigConvergence {
		people, rounds = 1500, 40
	}
	rng := rand.New(rand.NewPCG(*convergeSeed, 7))
	names := []string{"a", "b", "c"}
	h := newHarness(t, names, withPropagate(1<<30, 1))
	region := mapping.Options{DefaultRegion: "GB"}
	next := 0
	// newPerson writes a new person on one or more sides, each in its own
	// dialect: e-mail case and phone format differ, the person does not.
	newPerson := func(sides []string) {
		i := next
		next++
		for _, s := range sides {
			email := fmt.Sprintf("person%d@example.com", i)
			if rng.IntN(2) == 0 {
				email = strings.ToUpper(email[:1]) + email[1:]
			}
			phone := fmt.Sprintf("+44 20 7946 %04d", i)
			if rng.IntN(2) == 0 {
				phone = fmt.Sprintf("020 7946 %04d", i)
			}
			h.insert(s, map[string]string{"given_name": fmt.Sprint("Given", i), "family_name": "Family", "email": email, "phone": phone, "company": fmt.Sprint("Co", i%17)})
		}
	}
	randomSides := func() []string {
		var s []string
		for _, n := range names {
			if rng.IntN(2) == 0 {
				s = append(s, n)
			}
		}
		if len(s) == 0 {
			s = []string{names[rng.IntN(3)]}
		}
		return s
	}
	for range people {
		newPerson(randomSides())
	}
	rep := h.sync()
	h.checkConverged(t, rep, nil)
	uniq := 0
	for round := range rounds {
		var edits []userEdit
		touched := map[string]bool{}
		for _, side := range names {
			ids := h.conns[side].Table.IDs()
			for range len(ids) / 4 {
				id := fmt.Sprint(ids[rng.IntN(len(ids))])
				field := []string{"given_name", "family_name", "company", "phone", "email"}[rng.IntN(5)]
				key := side + "/" + id + "/" + field
				if touched[key] {
					continue
				}
				touched[key] = true
				uniq++
				var v string
				switch field {
				case "phone":
					v = fmt.Sprintf("+44 7700 9%05d", uniq)
				case "email":
					v = fmt.Sprintf("changed%d@example.org", uniq)
				default:
					v = fmt.Sprintf("%s-r%d-%d", field, round, rng.IntN(3))
				}
				h.edit(side, id, map[string]string{field: v})
				edits = append(edits, userEdit{conn: side, id: id, field: field, value: mapping.Normalize(field, v, region)})
			}
			for range 1 + rng.IntN(3) {
				if len(ids) > 0 && rng.IntN(2) == 0 {
					var n int64
					fmt.Sscan(fmt.Sprint(ids[rng.IntN(len(ids))]), &n)
					h.conns[side].Table.Delete(n)
				}
			}
		}
		for range 1 + rng.IntN(5) {
			newPerson(randomSides())
		}
		rep := h.sync()
		var conflicts, deleted int
		for _, c := range rep.Connectors {
			conflicts += c.Conflicts
			deleted += c.Deleted
		}
		t.Logf("round %d: %d edits, %d contacts, %d conflict sides, %d deletions", round, len(edits), h.conns["a"].Table.Len(), conflicts, deleted)
		h.checkConverged(t, rep, edits)
		if t.Failed() {
			t.Fatalf("round %d failed (seed %d)", round, *convergeSeed)
		}
	}
}

// checkConverged checks the promises of a finished run.
func (h *harness) checkConverged(t *testing.T, rep *Report, edits []userEdit) {
	t.Helper()
	for _, c := range rep.Connectors {
		if c.Err != nil {
			t.Errorf("%s failed: %v", c.Name, c.Err)
		}
	}
	if rep.Failed != 0 || rep.Parked != 0 || rep.DeletionsBlocked != "" || rep.Conflicts != 0 {
		t.Errorf("run left attention items: %+v", rep)
	}
	// Every side holds every person once, with the same values.
	byEmail := map[string]map[string]state.Values{}
	for _, side := range h.names {
		for id, v := range h.canonicalRows(side) {
			if byEmail[v["email"]] == nil {
				byEmail[v["email"]] = map[string]state.Values{}
			}
			if _, dup := byEmail[v["email"]][side]; dup {
				t.Errorf("%s holds %s twice (id %s)", side, v["email"], id)
			}
			byEmail[v["email"]][side] = v
		}
	}
	for email, sides := range byEmail {
		if len(sides) != len(h.names) {
			t.Errorf("%s is on %v only", email, slices.Sorted(maps.Keys(sides)))
			continue
		}
		first := sides[h.names[0]]
		for _, s := range h.names[1:] {
			if !maps.Equal(first, sides[s]) {
				t.Errorf("%s differs: %s %v, %s %v", email, h.names[0], first, s, sides[s])
			}
		}
	}
	// No two entities share an e-mail.
	rows, err := h.store.ReadDB.QueryContext(context.Background(), `SELECT value FROM identity_keys WHERE kind = 'email' GROUP BY value HAVING count(*) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v string
		rows.Scan(&v)
		t.Errorf("two contacts share e-mail %s", v)
	}
	rows.Close()
	// Every edit survived, or a recorded conflict explains its loss (or
	// the person was deleted).
	var runConflicts []state.Conflict
	for _, c := range h.conflicts("") {
		if c.RunID == rep.RunID {
			runConflicts = append(runConflicts, c)
		}
	}
	for _, ed := range edits {
		cur, ok := h.canonicalRows(ed.conn)[ed.id]
		if !ok || cur[ed.field] == ed.value {
			continue
		}
		explained := false
		for _, c := range runConflicts {
			if c.Field == ed.field && c.Candidates[ed.conn] == ed.value && c.Decision == cur[ed.field] {
				explained = true
			}
		}
		if !explained {
			t.Errorf("edit %s %s %s=%q lost without a conflict (now %q)", ed.conn, ed.id, ed.field, ed.value, cur[ed.field])
		}
	}
	// An immediate second sync writes nothing.
	before := h.writes()
	again := h.sync()
	if w := h.writes() - before; w != 0 {
		t.Errorf("second sync made %d writes: %+v", w, again.Connectors)
	}
}
