package engine

import (
	"testing"
	"time"

	"github.com/syncd/syncd/internal/state"
)

// BenchmarkMerge is the three-way merge of one entity linked in three
// CRMs: one side changed two fields, another changed one of them to a
// different value (a conflict settled by the newest policy), the rest
// agree with the synced values.
func BenchmarkMerge(b *testing.B) {
	h := newHarness(b, []string{"a", "b", "c"})
	synced := state.Values{"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com", "phone": "+442079460958", "company": "Acme"}
	changedA := state.Values{"given_name": "Ann", "family_name": "Lee-Smith", "email": "ann@example.com", "phone": "+442079460999", "company": "Acme"}
	changedB := state.Values{"given_name": "Ann", "family_name": "Lee-Jones", "email": "ann@example.com", "phone": "+442079460958", "company": "Acme"}
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	sides := []side{
		{cn: h.eng.byName["a"], link: state.Link{Connector: "a", RemoteID: "1", Fields: changedA, Synced: synced, Modified: t0.Add(time.Minute)}},
		{cn: h.eng.byName["b"], link: state.Link{Connector: "b", RemoteID: "1", Fields: changedB, Synced: synced, Modified: t0.Add(2 * time.Minute)}},
		{cn: h.eng.byName["c"], link: state.Link{Connector: "c", RemoteID: "1", Fields: synced, Synced: synced, Modified: t0}},
	}
	var res mergeResult
	b.ReportAllocs()
	for b.Loop() {
		res = h.eng.merge(1, synced, sides, nil, 1)
	}
	if len(res.conflicts) != 1 || res.fields["family_name"] != "Lee-Jones" || res.fields["phone"] != "+442079460999" {
		b.Fatalf("merge: %d conflicts, fields %v", len(res.conflicts), res.fields)
	}
}
