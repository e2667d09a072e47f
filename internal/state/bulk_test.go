package state

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// The bulk operations a chunk of linking and reconciling makes agree with
// what the store then holds: new entities with their keys, matches by
// key (byte for byte, across more keys than one query carries), links,
// synced bases and clean marks.
func TestBulkLinkAndReconcile(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 600 // more than one MatchIdentities query and one INSERT each
	odd := "Zoë\x00<&>@example.com"
	err := s.Update(ctx, func(w *WriteTx) error {
		for i := range n {
			if err := w.PutPulledRecord(PulledRecord{Connector: "a", RemoteID: fmt.Sprint(i), Fields: Values{"email": fmt.Sprintf("p%d@example.com", i)}, Hash: "h", Pulled: now, Run: 1}); err != nil {
				return err
			}
		}
		recs, err := w.DirtyRecords(0, n)
		if err != nil || len(recs) != n {
			return fmt.Errorf("dirty records: %d, %v", len(recs), err)
		}
		last, err := w.MaxEntityID()
		if err != nil {
			return err
		}
		orig, err := OriginsJSON(Origin{Connector: "a", At: now, Run: 1, How: "created"})
		if err != nil {
			return err
		}
		var ents []NewEntity
		var keys []EntityKey
		var links []RecordLink
		for i, d := range recs {
			id := last + 1 + int64(i)
			ents = append(ents, NewEntity{ID: id, Fields: d.Fields, Origins: orig, Created: now})
			keys = append(keys, EntityKey{EntityID: id, IdentityKey: IdentityKey{Kind: "email", Value: d.Fields["email"]}})
			links = append(links, RecordLink{Row: d.Row, EntityID: id})
		}
		keys = append(keys, EntityKey{EntityID: last + 1, IdentityKey: IdentityKey{Kind: "email", Value: odd}})
		if err := w.InsertEntities(ents); err != nil {
			return err
		}
		if err := w.AddIdentityKeyBatch(keys); err != nil {
			return err
		}
		return w.LinkRecords(links)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(w *WriteTx) error {
		var want []IdentityKey
		for i := range n {
			want = append(want, IdentityKey{Kind: "email", Value: fmt.Sprintf("p%d@example.com", i)})
		}
		want = append(want, IdentityKey{Kind: "email", Value: odd}, IdentityKey{Kind: "email", Value: "nobody@example.com"}, IdentityKey{Kind: "phone", Value: odd})
		got, err := w.MatchIdentities(want)
		if err != nil {
			return err
		}
		if len(got) != n+1 {
			t.Errorf("%d keys matched, want %d", len(got), n+1)
		}
		if ids := got[IdentityKey{Kind: "email", Value: "p7@example.com"}]; !slices.Equal(ids, []int64{8}) {
			t.Errorf("p7 matches %v, want [8]", ids)
		}
		if ids := got[IdentityKey{Kind: "email", Value: odd}]; !slices.Equal(ids, []int64{1}) {
			t.Errorf("a key with odd bytes matches %v, want [1]", ids)
		}
		batch, err := w.DirtyEntityBatch(0, 10)
		if err != nil {
			return err
		}
		if len(batch) != 10 || batch[0].ID != 1 || len(batch[0].Links) != 1 || batch[0].Links[0].RemoteID != "0" || batch[0].Links[0].Synced != nil {
			t.Fatalf("first dirty batch: %+v", batch[:1])
		}
		var ids []int64
		for _, d := range batch {
			ids = append(ids, d.ID)
		}
		if err := w.SyncLinks(ids, []string{"a"}); err != nil {
			return err
		}
		if err := w.ClearEntitiesDirty(ids); err != nil {
			return err
		}
		next, err := w.DirtyEntityBatch(0, 10)
		if err != nil {
			return err
		}
		if len(next) != 10 || next[0].ID != 11 {
			t.Errorf("after clearing 1-10 the next dirty entity is %d", next[0].ID)
		}
		links, err := w.EntityLinks(3)
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Synced["email"] != "p2@example.com" {
			t.Errorf("entity 3 links %+v, want synced = its pulled values", links)
		}
		// A new snapshot of a linked record marks its entity for
		// reconciling, with the new values and the old base; the record
		// itself has nothing left for linking. An unlinked one does.
		if err := w.PutPulledRecord(PulledRecord{Connector: "a", RemoteID: "2", Fields: Values{"email": "p2@example.com", "phone": "+442079460958"}, Hash: "h2", Pulled: now, Run: 2}); err != nil {
			return err
		}
		if err := w.PutPulledRecord(PulledRecord{Connector: "b", RemoteID: "x", Fields: Values{"email": "x@example.com"}, Hash: "hx", Pulled: now, Run: 2}); err != nil {
			return err
		}
		recs, err := w.DirtyRecords(0, 10)
		if err != nil {
			return err
		}
		if len(recs) != 1 || recs[0].Connector != "b" || recs[0].RemoteID != "x" {
			t.Errorf("dirty records after pulling a linked and an unlinked one: %+v, want only b/x", recs)
		}
		if err := w.ClearEntitiesDirty([]int64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}); err != nil {
			return err
		}
		again, err := w.DirtyEntityBatch(0, 1)
		if err != nil {
			return err
		}
		if len(again) != 1 || again[0].ID != 3 || again[0].Links[0].Fields["phone"] != "+442079460958" || again[0].Links[0].Synced["phone"] != "" {
			t.Errorf("first dirty entity after the pull: %+v, want 3 with the new snapshot over the old base", again)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// SetIdentityKeys leaves an entity with exactly the keys given, whatever
// it held before: kept keys stay, others go, new ones come.
func TestSetIdentityKeysReplacesExactly(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	email := IdentityKey{Kind: "email", Value: "ann@example.com"}
	oldPhone := IdentityKey{Kind: "phone", Value: "+442079460958"}
	newPhone := IdentityKey{Kind: "phone", Value: "+442079460959"}
	stale := IdentityKey{Kind: "email", Value: "old@example.com"}
	other := IdentityKey{Kind: "email", Value: "bob@example.com"}
	all := []IdentityKey{email, oldPhone, newPhone, stale, other}
	keysOf := func(w *WriteTx, id int64) []IdentityKey {
		got, err := w.MatchIdentities(all)
		if err != nil {
			t.Fatal(err)
		}
		var out []IdentityKey
		for _, k := range all {
			if slices.Contains(got[k], id) {
				out = append(out, k)
			}
		}
		return out
	}
	err := s.Update(ctx, func(w *WriteTx) error {
		if err := w.InsertEntities([]NewEntity{{ID: 1, Fields: Values{}, Origins: "{}", Created: now}, {ID: 2, Fields: Values{}, Origins: "{}", Created: now}}); err != nil {
			return err
		}
		if err := w.AddIdentityKeyBatch([]EntityKey{{EntityID: 1, IdentityKey: email}, {EntityID: 1, IdentityKey: oldPhone}, {EntityID: 1, IdentityKey: stale}, {EntityID: 2, IdentityKey: other}}); err != nil {
			return err
		}
		if err := w.SetIdentityKeys(1, []IdentityKey{email, newPhone}); err != nil {
			return err
		}
		if got := keysOf(w, 1); !slices.Equal(got, []IdentityKey{email, newPhone}) {
			t.Errorf("entity 1 keys %v, want [email newPhone]", got)
		}
		if got := keysOf(w, 2); !slices.Equal(got, []IdentityKey{other}) {
			t.Errorf("entity 2 keys %v: another entity's keys changed", got)
		}
		if err := w.SetIdentityKeys(1, nil); err != nil {
			return err
		}
		if got := keysOf(w, 1); len(got) != 0 {
			t.Errorf("entity 1 keys %v after clearing", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// PutNewRecords stores more records than one statement carries, each
// dirty with its values, and says where each went: the rowid that
// DirtyRecords gives it, and for a record stored before (a repeat), the
// link it keeps. A link made with Base takes the snapshot as its synced
// base; one without starts with none.
func TestPutNewRecordsAndBaseLinks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 250
	var recs []PulledRecord
	for i := range n {
		recs = append(recs, PulledRecord{Connector: "a", RemoteID: fmt.Sprint(i), Fields: Values{"email": fmt.Sprintf("p%d@example.com", i)}, Hash: fmt.Sprint("h", i), Pulled: now, Run: 1, New: true})
	}
	err := s.Update(ctx, func(w *WriteTx) error {
		stored, err := w.PutNewRecords(recs)
		if err != nil {
			return err
		}
		dirty, err := w.DirtyRecords(0, 2*n)
		if err != nil {
			return err
		}
		if len(stored) != n || len(dirty) != n {
			return fmt.Errorf("stored %d, dirty %d; want %d", len(stored), len(dirty), n)
		}
		row := map[string]int64{}
		for _, d := range dirty {
			row[d.RemoteID] = d.Row
			if want := recs[mustAtoi(d.RemoteID)].Fields["email"]; d.Fields["email"] != want || d.EntityID != 0 {
				return fmt.Errorf("record %s: %v linked to %d, want %s unlinked", d.RemoteID, d.Fields, d.EntityID, want)
			}
		}
		for _, st := range stored {
			if st.Row != row[st.RemoteID] || st.EntityID != 0 {
				return fmt.Errorf("stored %+v, its row is %d", st, row[st.RemoteID])
			}
		}
		if err := w.InsertEntities([]NewEntity{{ID: 1, Fields: Values{}, Origins: "{}", Created: now}, {ID: 2, Fields: Values{}, Origins: "{}", Created: now}}); err != nil {
			return err
		}
		return w.LinkRecords([]RecordLink{{Row: row["0"], EntityID: 1, Base: true}, {Row: row["1"], EntityID: 2}})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(w *WriteTx) error {
		for id, want := range map[int64]bool{1: true, 2: false} {
			links, err := w.EntityLinks(id)
			if err != nil || len(links) != 1 {
				return fmt.Errorf("entity %d: %d links, %v", id, len(links), err)
			}
			if got := links[0].Synced != nil; got != want || want && links[0].Synced["email"] != links[0].Fields["email"] {
				return fmt.Errorf("entity %d: synced %v, fields %v", id, links[0].Synced, links[0].Fields)
			}
		}
		// Stored again as new: the record keeps its link and is dirty.
		again := recs[0]
		again.Fields = Values{"email": "changed@example.com"}
		stored, err := w.PutNewRecords([]PulledRecord{again, recs[n-1]})
		if err != nil {
			return err
		}
		got := map[string]int64{}
		for _, st := range stored {
			got[st.RemoteID] = st.EntityID
		}
		if len(stored) != 2 || got["0"] != 1 || got[fmt.Sprint(n-1)] != 0 {
			return fmt.Errorf("stored again: %+v", stored)
		}
		dirty, err := w.DirtyRecords(0, 2*n)
		if err != nil {
			return err
		}
		for _, d := range dirty {
			if d.RemoteID == "0" && (d.EntityID != 1 || d.Fields["email"] != "changed@example.com") {
				return fmt.Errorf("repeated record: %+v", d)
			}
		}
		if len(dirty) != n-1 {
			return fmt.Errorf("%d dirty records, want %d (all but the one linked without a repeat)", len(dirty), n-1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
