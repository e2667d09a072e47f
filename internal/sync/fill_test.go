package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/mapping"
	"github.com/syncd/syncd/internal/state"
)

// editRaw sets CRM fields by their own names, mapped or not.
func (h *harness) editRaw(conn, id string, fields map[string]string) {
	h.t.Helper()
	var n int64
	fmt.Sscan(id, &n)
	if !h.conns[conn].Table.Update(n, fields) {
		h.t.Fatalf("edit %s %s: no such record", conn, id)
	}
}

// extendMapping maps canonical to remote on connector name from now on,
// as an operator editing the config would (h.build restarts the engine).
func (h *harness) extendMapping(name, canonical, remote string) {
	h.t.Helper()
	cc, ok := h.cfg.ConnectorByName(name)
	if !ok {
		h.t.Fatalf("no connector %s", name)
	}
	cc.Fields = append(slices.Clone(cc.Fields), mapping.Field{Canonical: canonical, Remote: remote})
}

// A field mapped for the first time, after the contacts were in sync, is
// filled from the side that has it; when the sides hold different values
// the policy picks one, and no conflict is recorded (there was no agreed
// value to disagree about). Under policy manual the difference waits for
// an operator as a conflict.
func TestExtendedMappingIsAnInitialFill(t *testing.T) {
	cases := []struct {
		name         string
		opts         []harnessOpt
		aTier, bTier string
		want         string // tier on both sides afterwards ("" for manual)
		conflict     bool
	}{
		{name: "one side has a value", aTier: "Gold", want: "Gold"},
		{name: "other side has a value", bTier: "Silver", want: "Silver"},
		{name: "both differ, newest", aTier: "Gold", bTier: "Silver", want: "Silver"},
		{name: "both differ, priority", opts: []harnessOpt{withPolicy("priority", "a", "b")}, aTier: "Gold", bTier: "Silver", want: "Gold"},
		{name: "both differ, manual", opts: []harnessOpt{withPolicy("manual")}, aTier: "Gold", bTier: "Silver", conflict: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []string{"a", "b"}, tc.opts...)
			ida := h.insert("a", ann())
			h.sync()
			idb := h.findID("b", "ann@example.com")
			// The CRMs hold a field syncd does not map yet; b's value is
			// the newer one.
			if tc.aTier != "" {
				h.editRaw("a", ida, map[string]string{"tier": tc.aTier})
			}
			h.tick()
			if tc.bTier != "" {
				h.editRaw("b", idb, map[string]string{"Tier": tc.bTier})
			}
			h.tick()
			h.extendMapping("a", "custom.tier", "tier")
			h.extendMapping("b", "custom.tier", "Tier")
			h.build()
			rep := h.sync(RunOptions{Full: true})
			a, b := h.one("a", "ann@example.com"), h.one("b", "ann@example.com")
			cs := h.conflicts("")
			if tc.conflict {
				if len(cs) != 1 || cs[0].Field != "custom.tier" || cs[0].Status != state.ConflictOpen || cs[0].Candidates["a"] != "Gold" || cs[0].Candidates["b"] != "Silver" {
					t.Fatalf("conflicts = %+v, want one open conflict on custom.tier", cs)
				}
				if a["custom.tier"] != "Gold" || b["custom.tier"] != "Silver" {
					t.Errorf("manual: sides changed: a %q b %q", a["custom.tier"], b["custom.tier"])
				}
				return
			}
			if len(cs) != 0 || rep.Conflicts != 0 {
				t.Errorf("initial fill recorded conflicts: %+v", cs)
			}
			if a["custom.tier"] != tc.want || b["custom.tier"] != tc.want {
				t.Errorf("tier a %q b %q, want %q on both", a["custom.tier"], b["custom.tier"], tc.want)
			}
			if rep.ExitCode() != 0 {
				t.Errorf("exit %d, want 0", rep.ExitCode())
			}
			// Filled once: the next run has nothing to do.
			before := h.writes()
			h.sync()
			if w := h.writes() - before; w != 0 {
				t.Errorf("run after the fill made %d writes", w)
			}
		})
	}
}

// A first value that competes with a real edit on the other side is a
// conflict: b changed the field from its synced (empty) value.
func TestFirstValueAgainstAnEditIsAConflict(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	h.extendMapping("b", "custom.tier", "Tier")
	h.build()
	ida := h.insert("a", ann())
	h.sync()
	idb := h.findID("b", "ann@example.com")
	h.editRaw("a", ida, map[string]string{"tier": "Gold"})
	h.tick()
	h.editRaw("b", idb, map[string]string{"Tier": "Silver"})
	h.tick()
	h.extendMapping("a", "custom.tier", "tier")
	h.build()
	h.sync(RunOptions{Full: true})
	cs := h.conflicts("")
	if len(cs) != 1 || cs[0].Field != "custom.tier" || cs[0].Decision != "Silver" {
		t.Fatalf("conflicts = %+v, want one on custom.tier settled for Silver", cs)
	}
}

// noModifiedTimes hides a connector's modified times, as a CRM without
// them would.
func noModifiedTimes(c connectors.Connector) *fakeConn {
	f := &fakeConn{}
	f.pull = func(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
		return c.Pull(ctx, opts, func(ctx context.Context, p connectors.Page) error {
			for i := range p.Records {
				p.Records[i].Modified = time.Time{}
			}
			return fn(ctx, p)
		})
	}
	return f
}

// Policy newest takes the pull time of a record whose CRM reports no
// modified time: a's edit, made before b's but learnt of at this run's
// pull, counts as the newer one.
func TestNewestFallsBackToPullTime(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	mem := h.conns["a"]
	fc := noModifiedTimes(mem)
	fc.mem = mem
	h.wrap["a"] = fc
	h.build()
	ida := h.insert("a", ann())
	h.sync()
	idb := h.findID("b", "ann@example.com")
	h.edit("a", ida, map[string]string{"company": "FromA"})
	h.tick()
	h.edit("b", idb, map[string]string{"company": "FromB"})
	h.tick()
	pullTime := h.clock.Now()
	h.sync()
	cs := h.conflicts("")
	if len(cs) != 1 {
		t.Fatalf("%d conflicts, want 1", len(cs))
	}
	c := cs[0]
	if c.Winner != "a" || c.Decision != "FromA" || !strings.Contains(c.Reason, pullTime.UTC().Format(time.RFC3339)) {
		t.Errorf("conflict = %+v, want a to win at its pull time %s", c, pullTime.UTC().Format(time.RFC3339))
	}
	if got := h.one("b", "ann@example.com")["company"]; got != "FromA" {
		t.Errorf("b company = %q, want FromA", got)
	}
}
