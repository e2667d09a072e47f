package state

import (
	"context"
	"errors"
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

// InsertLinkedRecords stores more records than one statement carries,
// each with its link, handled (not dirty): a link with Base takes the
// snapshot as its synced base, one without starts with none, a record
// without an entity stays unlinked. A record stored before fails the
// call with ErrStoredBefore.
func TestInsertLinkedRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 250
	var recs []NewLinkedRecord
	for i := range n {
		r := NewLinkedRecord{PulledRecord: PulledRecord{Connector: "a", RemoteID: fmt.Sprint(i), Fields: Values{"email": fmt.Sprintf("p%d@example.com", i)}, Hash: fmt.Sprint("h", i), Pulled: now, Run: 1, New: true}}
		switch i % 3 {
		case 0:
			r.EntityID, r.Base = 1, i == 0
		case 1:
			r.EntityID = 2
		}
		recs = append(recs, r)
	}
	// One record per entity and connector: the others go to connector b.
	for i := 3; i < n; i++ {
		recs[i].Connector = "b"
		if recs[i].EntityID != 0 {
			recs[i].EntityID = int64(i)
		}
	}
	err := s.Update(ctx, func(w *WriteTx) error {
		var ents []NewEntity
		for id := int64(1); id < n; id++ {
			ents = append(ents, NewEntity{ID: id, Fields: Values{}, Origins: "{}", Created: now})
		}
		if err := w.InsertEntities(ents); err != nil {
			return err
		}
		if err := w.InsertLinkedRecords(recs); err != nil {
			return err
		}
		if dirty, err := w.DirtyRecords(0, 2*n); err != nil || len(dirty) != 0 {
			return fmt.Errorf("%d dirty records (%v), want none", len(dirty), err)
		}
		for _, r := range recs {
			if r.EntityID == 0 {
				continue
			}
			links, err := w.EntityLinks(r.EntityID)
			if err != nil || len(links) != 1 {
				return fmt.Errorf("entity %d: %d links, %v", r.EntityID, len(links), err)
			}
			l := links[0]
			if l.RemoteID != r.RemoteID || l.Fields["email"] != r.Fields["email"] || (l.Synced != nil) != r.Base || r.Base && l.Synced["email"] != r.Fields["email"] {
				return fmt.Errorf("entity %d: link %+v, want record %s (base %v)", r.EntityID, l, r.RemoteID, r.Base)
			}
		}
		var unlinked int
		if err := w.queryRow(`SELECT count(*) FROM records WHERE entity_id IS NULL`).Scan(&unlinked); err != nil {
			return err
		}
		if want := n / 3; unlinked != want {
			return fmt.Errorf("%d unlinked records, want %d", unlinked, want)
		}
		again := recs[5]
		again.Fields = Values{"email": "changed@example.com"}
		if err := w.InsertLinkedRecords([]NewLinkedRecord{again}); !errors.Is(err, ErrStoredBefore) {
			return fmt.Errorf("a record stored again: %v, want ErrStoredBefore", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
