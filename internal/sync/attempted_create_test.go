package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
)

// TestAttemptedCreateCarriesLaterEdits: a create whose answer was lost
// stays attempted; when a later run finds the CRM did not make it and
// sends it again, it must carry the edits made meanwhile, or they are
// never pushed (the created record's values become the link's base).
func TestAttemptedCreateCarriesLaterEdits(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	id := h.insert("a", map[string]string{"given_name": "Ann", "family_name": "Old", "email": "ann@example.com"})
	mem := h.conns["b"]
	h.wrap["b"] = &fakeConn{mem: mem, create: func(context.Context, map[string]string) (string, error) {
		return "", fmt.Errorf("fake: create: connection reset: %w", connectors.ErrTemporary)
	}}
	h.build()
	h.sync()
	if n := len(h.findBy("b", "ann@example.com")); n != 0 {
		t.Fatalf("b holds %d records before the create went through", n)
	}
	h.edit("a", id, map[string]string{"family_name": "New"})
	h.tick()
	h.wrap["b"] = mem
	h.build()
	h.sync()
	if got := h.one("b", "ann@example.com")["family_name"]; got != "New" {
		t.Errorf("b family_name %q after the create was sent again, want the edit made meanwhile (New)", got)
	}
	before := h.writes()
	h.sync()
	if n := h.writes() - before; n != 0 {
		t.Errorf("not converged: %d writes", n)
	}
}
