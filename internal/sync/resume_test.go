package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
)

// TestResumedPullSeesEditsOnEarlierPages: a pull stopped after its first
// page resumes in the next run after that page. A record of the first
// page edited in between must still be seen before anything is pushed
// over it: here the same field was edited on both sides, which must be a
// recorded conflict settled by policy newest (b edited last), not a
// silent overwrite of b's edit.
func TestResumedPullSeesEditsOnEarlierPages(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	var bIDs []string
	for i := range 120 {
		v := map[string]string{"given_name": fmt.Sprint("P", i), "family_name": "X", "email": fmt.Sprintf("p%d@example.com", i), "company": "Co"}
		h.insert("a", v)
		bIDs = append(bIDs, h.insert("b", v))
	}
	firstB := bIDs[0]
	h.sync()
	// Every b record is touched (same values), so b's next pull has
	// several pages; that run stops after the first.
	for i, id := range bIDs {
		h.edit("b", id, map[string]string{"given_name": fmt.Sprint("P", i)})
	}
	h.tick()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := h.conns["b"]
	h.wrap["b"] = &fakeConn{mem: mem, pull: func(ctx context.Context, o connectors.PullOptions, fn connectors.PageFunc) error {
		return mem.Pull(ctx, o, func(ctx context.Context, p connectors.Page) error {
			err := fn(ctx, p)
			cancel()
			return err
		})
	}}
	h.build()
	if rep, err := h.eng.Run(ctx, RunOptions{}); err != nil || !rep.Interrupted {
		t.Fatalf("stopped run: interrupted %v, err %v", rep != nil && rep.Interrupted, err)
	}
	h.tick()
	h.edit("a", "1", map[string]string{"company": "Edited on a"})
	h.tick()
	h.edit("b", firstB, map[string]string{"company": "Edited on b"})
	h.tick()
	h.wrap["b"] = mem
	h.build()
	h.sync()
	h.sync()
	for _, side := range []string{"a", "b"} {
		if got := h.one(side, "p0@example.com")["company"]; got != "Edited on b" {
			t.Errorf("%s company %q, want the newest edit (Edited on b)", side, got)
		}
	}
	if n := len(h.conflicts("")); n != 1 {
		t.Errorf("%d conflicts recorded, want 1", n)
	}
}
