package co3

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/contract"
)

// Content hashes are only as stable as the field maps: two scans without a
// change must give identical maps, and one edit must show in exactly one
// record.
func TestContentStability(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{format: f})
			seedVaried(e, 1000)
			first, _, _ := contract.PullAll(t, e.conn, connectors.PullOptions{Full: true})
			second, _, _ := contract.PullAll(t, e.conn, connectors.PullOptions{})
			if len(first) != 1000 || len(second) != 1000 {
				t.Fatalf("scans returned %d and %d records", len(first), len(second))
			}
			if d := differing(first, second); len(d) != 0 {
				t.Fatalf("unchanged scans differ in %v", d)
			}
			e.emu.EditAsUser("417", map[string]string{"contact_email": "changed@example.com"})
			third, _, _ := contract.PullAll(t, e.conn, connectors.PullOptions{Cursor: "complete"})
			if d := differing(first, third); len(d) != 1 || d[0] != "417" {
				t.Fatalf("after one edit the scans differ in %v, want [417]", d)
			}
		})
	}
}

func differing(a, b []connectors.Record) []string {
	byID := map[string]map[string]string{}
	for _, r := range a {
		byID[r.ID] = r.Fields
	}
	var out []string
	for _, r := range b {
		if prev, ok := byID[r.ID]; !ok || !maps.Equal(prev, r.Fields) {
			out = append(out, r.ID)
		}
		delete(byID, r.ID)
	}
	for id := range byID {
		out = append(out, id)
	}
	return out
}

// A pull interrupted after a page resumes after it.
func TestPullResumesFromCursor(t *testing.T) {
	e := newEnv(t, envOptions{pageSize: 10})
	seedVaried(e, 35)
	var cursor string
	stop := fmt.Errorf("stop")
	pages := 0
	err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
		pages++
		cursor = p.Cursor
		if pages == 2 {
			return stop
		}
		return nil
	})
	if err != stop || cursor != "page:2" {
		t.Fatalf("err=%v cursor=%q", err, cursor)
	}
	recs, n, last := contract.PullAll(t, e.conn, connectors.PullOptions{Cursor: cursor})
	if n != 2 || len(recs) != 15 || recs[0].ID != "21" || last != "complete" {
		t.Fatalf("resumed pull: pages=%d records=%d first=%v cursor=%q", n, len(recs), recs[0].ID, last)
	}
}
