package state

import (
	"context"
	"strings"
	"testing"
)

// The queries a run makes for every chunk or connector read through an
// index, whatever the size of the store: a scan of the records or
// entities would make a quiet run's cost grow with every contact held.
func TestHotQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, c := range []struct {
		name, query string
		args        []any
		want        string
	}{
		{"DirtyEntityBatch", dirtyEntityBatchQuery, []any{0, 500}, "entities USING INDEX entities_dirty (id>?)"},
		{"DirtyRecords", dirtyRecordsQuery, []any{0, 500}, "records USING INDEX records_dirty"},
		{"RecordHashes", recordHashesQuery(2), []any{"a", "1", "2"}, "records USING INDEX sqlite_autoindex_records_1 (connector=? AND remote_id=?)"},
		{"CountLive", countLiveQuery, []any{"a"}, "records USING COVERING INDEX records_live"},
		{"MatchIdentities", matchIdentitiesQuery(2), []any{"email", "a@example.com", "phone", "+441234567890"}, "k USING PRIMARY KEY (kind=? AND value=?)"},
		{"LinksOf", linksOfQuery, []any{"[1]"}, "records USING INDEX records_link (entity_id=?)"},
		{"SyncLinks", syncLinksQuery, []any{"[1]", `["a"]`}, "records USING INDEX records_link"},
		{"ClearEntitiesDirty", clearEntitiesDirtyQuery, []any{"[1]"}, "entities USING INTEGER PRIMARY KEY"},
		{"DeleteOutboxItems", deleteOutboxItemsQuery, []any{"[1]"}, "outbox USING INTEGER PRIMARY KEY"},
		{"CountSendable", countSendableQuery, []any{"a", true, false}, "outbox USING INDEX outbox_open (connector=?)"},
	} {
		rows, err := s.DB.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		for _, d := range plan {
			for _, table := range []string{"records", "entities", "identity_keys"} {
				if strings.HasPrefix(d, "SCAN "+table) {
					t.Errorf("%s scans %s: %s", c.name, table, all)
				}
			}
		}
		if !strings.Contains(all, c.want) {
			t.Errorf("%s plan is %q, want it to use %q", c.name, all, c.want)
		}
	}
}
