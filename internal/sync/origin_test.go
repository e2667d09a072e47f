package engine

import (
	"context"
	"testing"
)

// Each agreed value remembers which side's change produced it, when and
// in which run: what `syncd explain` shows.
func TestOriginsTellWhichSideProducedAValue(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withPolicy(PolicyNewest))
	ida := h.insert("a", ann())
	h.sync()
	idb := h.findID("b", "ann@example.com")

	explain := func() map[string]string {
		t.Helper()
		ex, err := h.store.Explain(context.Background(), "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, f := range []string{"company", "family_name", "given_name"} {
			o, ok := ex.Origin(f)
			if !ok {
				t.Fatalf("no origin for %s: %v", f, ex.Origins)
			}
			out[f] = o.Connector + " " + o.How
			if o.At.IsZero() || o.Run == 0 {
				t.Errorf("origin of %s lacks its time or run: %+v", f, o)
			}
		}
		return out
	}
	if got := explain()["company"]; got != "a created" {
		t.Errorf("after the first sync company comes from %q, want a created", got)
	}

	h.tick()
	h.edit("b", idb, map[string]string{"company": "Beta Ltd"})
	h.sync()
	got := explain()
	if got["company"] != "b changed" || got["given_name"] != "a created" {
		t.Errorf("after an edit in b: %v, want company from b (changed), given_name still a's", got)
	}

	// The same field edited on both sides: the newer edit wins, and the
	// origin says it was a conflict.
	h.tick()
	h.edit("a", ida, map[string]string{"family_name": "Older"})
	h.tick()
	h.edit("b", idb, map[string]string{"family_name": "Newer"})
	h.sync()
	if got := explain()["family_name"]; got != "b conflict (newest)" {
		t.Errorf("family_name after a conflict comes from %q, want b conflict (newest)", got)
	}
}
