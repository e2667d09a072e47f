package engine

import (
	"fmt"
	"strings"
	"testing"
)

// seedShared puts n people on a, every other one also on b as b writes
// them, and returns a's ids.
func seedShared(h *harness, n int, extra func(i int) map[string]string) []string {
	var ids []string
	for i := range n {
		v := map[string]string{"given_name": fmt.Sprint("P", i), "family_name": "X", "email": fmt.Sprintf("p%d@example.com", i), "phone": fmt.Sprintf("+44 20 7946 %04d", i)}
		id := h.insert("a", v)
		if extra != nil {
			h.editRaw("a", id, extra(i))
		}
		ids = append(ids, id)
		if i%2 == 0 {
			v["email"] = strings.ToUpper(v["email"])
			v["phone"] = fmt.Sprintf("020 7946 %04d", i)
			h.insert("b", v)
		}
	}
	return ids
}

// A full rescan of CRMs already in sync reads everything and changes
// nothing: no write, no duplicate, no new contact.
func TestFullRescanAfterSyncIsANoOp(t *testing.T) {
	h := newHarness(t, []string{"a", "b", "c"})
	seedShared(h, 80, nil)
	h.sync()
	entities := h.status().Entities
	lens := map[string]int{}
	for n, c := range h.conns {
		lens[n] = c.Table.Len()
	}
	before := h.writes()
	rep := h.sync(RunOptions{Full: true})
	if w := h.writes() - before; w != 0 {
		t.Errorf("full rescan made %d writes, want 0", w)
	}
	for _, c := range rep.Connectors {
		if c.Pulled != 80 || c.Changed != 0 || c.Matched != 0 || c.Created != 0 || c.Updated != 0 {
			t.Errorf("%s: %+v, want 80 pulled and nothing else", c.Name, c)
		}
	}
	if st := h.status(); st.Entities != entities || entities != 80 {
		t.Errorf("%d contacts after the rescan, %d before, want 80", st.Entities, entities)
	}
	for n, c := range h.conns {
		if c.Table.Len() != lens[n] {
			t.Errorf("%s holds %d after the rescan, %d before", n, c.Table.Len(), lens[n])
		}
	}
	if rep.ExitCode() != 0 || rep.Conflicts != 0 {
		t.Errorf("exit %d, %d conflicts", rep.ExitCode(), rep.Conflicts)
	}
}

// After a mapping gains a field, a full rescan reads it for every
// record, including those no one edited since the last sync, and brings
// it to the other side.
func TestFullRescanAfterMappingChangePicksUpTheField(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	tier := func(i int) string { return fmt.Sprintf("T%d", i%5) }
	seedShared(h, 60, func(i int) map[string]string { return map[string]string{"tier": tier(i)} })
	h.sync()
	h.extendMapping("a", "custom.tier", "tier")
	h.extendMapping("b", "custom.tier", "Tier")
	h.build()
	rep := h.sync(RunOptions{Full: true})
	for i := range 60 {
		email := fmt.Sprintf("p%d@example.com", i)
		for _, c := range []string{"a", "b"} {
			if got := h.one(c, email)["custom.tier"]; got != tier(i) {
				t.Errorf("%s %s: tier %q, want %q", c, email, got, tier(i))
			}
		}
	}
	if rep.Connectors[1].Updated != 60 || rep.Conflicts != 0 || len(h.conflicts("")) != 0 {
		t.Errorf("b updated %d (want 60), %d conflicts (want 0)", rep.Connectors[1].Updated, len(h.conflicts("")))
	}
	before := h.writes()
	h.sync(RunOptions{Full: true})
	if w := h.writes() - before; w != 0 {
		t.Errorf("second full rescan made %d writes", w)
	}
}
