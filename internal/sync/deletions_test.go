package engine

import (
	"fmt"
	"strings"
	"testing"
)

func (h *harness) deleteRemote(conn, id string) {
	h.t.Helper()
	var n int64
	fmt.Sscan(id, &n)
	if !h.conns[conn].Table.Delete(n) {
		h.t.Fatalf("delete %s %s: no such record", conn, id)
	}
}

// The deletion guard's ratio is per connector: four deletions are 20% of
// the large CRM a but every contact the small CRM b still links, so they
// wait. The count limit is far away; only the ratio can block.
func TestDeleteRatioGuardIsPerConnector(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	var ids []string
	for i := range 20 {
		ids = append(ids, h.insert("a", map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)}))
	}
	h.sync()
	// Without propagation, deleting people in b only ends b's links: b
	// keeps four of the twenty.
	for i := 4; i < 20; i++ {
		h.deleteRemote("b", h.findID("b", fmt.Sprintf("p%d@x.org", i)))
	}
	h.sync(RunOptions{Full: true})
	if n := h.conns["b"].Table.Len(); n != 4 {
		t.Fatalf("b holds %d, want 4", n)
	}
	withPropagate(100, 0.5)(h)
	h.build()
	for _, id := range ids[:4] {
		h.deleteRemote("a", id)
	}
	rep := h.sync()
	if rep.ExitCode() != 3 {
		t.Errorf("exit %d, want 3", rep.ExitCode())
	}
	why := rep.DeletionsBlocked
	if !strings.Contains(why, "b would lose 4 of its 4 linked contacts (100%), more than max_delete_ratio 0.5") ||
		strings.Contains(why, "max_delete_count") || strings.Contains(why, "a would lose") {
		t.Errorf("reason = %q, want b named for the ratio only", why)
	}
	if rep.Connectors[1].DeletionsBlocked != 4 || rep.Connectors[0].DeletionsBlocked != 0 {
		t.Errorf("per-connector blocked counts: a %d b %d, want 0 and 4", rep.Connectors[0].DeletionsBlocked, rep.Connectors[1].DeletionsBlocked)
	}
	if n := h.conns["b"].Table.Len(); n != 4 || h.conns["b"].Hooks.Calls("delete") != 0 || rep.Connectors[1].Deleted != 0 {
		t.Errorf("b holds %d after a blocked run (%d delete calls), want 4 and none", n, h.conns["b"].Hooks.Calls("delete"))
	}
	if st := h.status(); st.Runs[0].DeletionsBlocked != why {
		t.Errorf("status shows %q, want %q", st.Runs[0].DeletionsBlocked, why)
	}
	// With the ratio raised, the waiting tombstones go through.
	h.cfg.Deletions.MaxDeleteRatio = 1
	h.build()
	rep = h.sync()
	if rep.DeletionsBlocked != "" || rep.Connectors[1].Deleted != 4 || h.conns["b"].Table.Len() != 0 {
		t.Errorf("after raising the ratio: blocked %q, b deleted %d, holds %d", rep.DeletionsBlocked, rep.Connectors[1].Deleted, h.conns["b"].Table.Len())
	}
}

// Records vanishing from a connector count against its own limits too:
// b cannot be written, so nothing would be deleted there, but a losing
// most of its contacts at once is held back all the same.
func TestDeleteGuardCountsWhatAConnectorLost(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withDirection("b", "pull"), withPropagate(100, 0.5))
	var ids []string
	for i := range 10 {
		v := map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)}
		ids = append(ids, h.insert("a", v))
		h.insert("b", v)
	}
	h.sync()
	for _, id := range ids[:6] {
		h.deleteRemote("a", id)
	}
	rep := h.sync()
	if !strings.Contains(rep.DeletionsBlocked, "a would lose 6 of its 10 linked contacts (60%)") || strings.Contains(rep.DeletionsBlocked, "b would") {
		t.Errorf("reason = %q", rep.DeletionsBlocked)
	}
	if st := h.status(); st.Entities != 10 {
		t.Errorf("%d contacts after a blocked run, want 10", st.Entities)
	}
}
