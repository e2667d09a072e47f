package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

// count runs a count query on the store's reader connection.
func (h *harness) count(query string) int {
	h.t.Helper()
	var n int
	if err := h.store.ReadDB.QueryRow(query).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// waitFor polls cond every few milliseconds for up to 10 seconds.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// sharedPeople puts n people in a and every third of them in b too,
// written differently there (upper-case e-mail, national phone).
func sharedPeople(h *harness, n int) (shared int) {
	for i := range n {
		v := map[string]string{"given_name": fmt.Sprint("P", i), "family_name": "X", "email": fmt.Sprintf("p%d@example.com", i), "phone": fmt.Sprintf("+44 20 7000 %04d", i)}
		h.insert("a", v)
		if i%3 == 0 {
			v["email"] = strings.ToUpper(v["email"])
			v["phone"] = fmt.Sprintf("020 7000 %04d", i)
			h.insert("b", v)
			shared++
		}
	}
	return shared
}

// checkConverged checks that a and b hold every person once and that the
// next sync writes nothing.
func checkConverged(t *testing.T, h *harness, people int) {
	t.Helper()
	for _, n := range []string{"a", "b"} {
		if got := h.conns[n].Table.Len(); got != people {
			t.Errorf("%s holds %d contacts, want %d", n, got, people)
		}
		seen := map[string]bool{}
		for _, v := range h.canonicalRows(n) {
			if seen[v["email"]] {
				t.Errorf("%s holds %s twice", n, v["email"])
			}
			seen[v["email"]] = true
		}
	}
	if st := h.status(); st.Entities != int64(people) {
		t.Errorf("%d contacts in the store, want %d", st.Entities, people)
	}
	before := h.writes()
	if rep := h.sync(); rep.ExitCode() != 0 {
		t.Errorf("next sync: exit %d", rep.ExitCode())
	}
	if w := h.writes() - before; w != 0 {
		t.Errorf("the next sync made %d writes, want 0", w)
	}
}

// Records are linked as the pulls store them: with a's last page held
// back, the records of its earlier pages are already linked to contacts.
// A record a CRM repeats, changed in between, on a later page of the
// first pull or twice on one page, is linked once and its last values
// win.
func TestLinkingRunsAsPullsStore(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	const people = 3*chunk + 150
	shared := sharedPeople(h, people)
	mem := h.conns["a"]
	var firstID, secondID string
	linkedEarly := false
	h.wrap["a"] = &fakeConn{mem: mem, pull: func(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
		return mem.Pull(ctx, opts, func(ctx context.Context, p connectors.Page) error {
			if firstID == "" && len(p.Records) > 1 {
				firstID, secondID = p.Records[0].ID, p.Records[1].ID
				twice, _ := mem.Get(ctx, secondID)
				twice.Fields["company"] = "Twice Ltd"
				p.Records = append(p.Records, twice)
			}
			if p.Done {
				linkedEarly = waitFor(func() bool {
					return h.count(`SELECT count(*) FROM records WHERE connector = 'a' AND entity_id IS NOT NULL`) >= chunk
				})
				again := p.Records[0]
				if again.ID != firstID {
					again, _ = mem.Get(ctx, firstID)
					again.Fields["company"] = "Repeated Ltd"
					p.Records = append(p.Records, again)
				}
			}
			return fn(ctx, p)
		})
	}}
	h.build()
	rep := h.sync()
	if !linkedEarly {
		t.Error("no record of a was linked while its pull was held before the last page")
	}
	if rep.ExitCode() != 0 {
		t.Fatalf("exit %d: %+v", rep.ExitCode(), rep)
	}
	// Which side's records match the other's contacts depends on which
	// pull stored its pages first.
	if a, b := rep.Connectors[0], rep.Connectors[1]; b.Created != people-shared || a.Matched+b.Matched != shared || a.Created != 0 {
		t.Errorf("b created %d, a created %d, %d matched; want %d, 0, %d", b.Created, a.Created, a.Matched+b.Matched, people-shared, shared)
	}
	if got := h.one("b", "p0@example.com")["company"]; got != "Repeated Ltd" {
		t.Errorf("the record repeated on a later page has company %q on b, want its last pulled value", got)
	}
	if got := h.one("b", "p1@example.com")["company"]; got != "Twice Ltd" {
		t.Errorf("the record repeated on one page has company %q on b, want its last pulled value", got)
	}
	h.wrap["a"] = mem
	h.build()
	checkConverged(t, h, people)
}

// The pushes start while reconciliation still plans: with reconciliation
// held once a batch of creates for b is planned, creates already reach
// b. Everything planned is sent once.
func TestPushesRunBesideReconciliation(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	const people = 6 * entityChunk
	sharedPeople(h, people)
	var created atomic.Int64
	mem := h.conns["b"]
	h.wrap["b"] = &fakeConn{mem: mem, create: func(ctx context.Context, fields map[string]string) (string, error) {
		created.Add(1)
		return mem.Create(ctx, fields)
	}}
	// Which contacts come first depends on which pull stored its pages
	// first: reconciliation is held after the first chunk that brings
	// the creates planned for b to a batch, while contacts still await
	// it.
	var mu sync.Mutex
	held, pushedEarly := false, false
	h.progress = func(ev ProgressEvent) {
		if ev.Phase != "reconcile" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !held && h.count(`SELECT count(*) FROM outbox WHERE connector = 'b'`) >= drainBatch {
			held = true
			if h.count(`SELECT count(*) FROM entities WHERE dirty <> 0`) == 0 {
				t.Error("every contact was reconciled before a batch was planned")
			}
			pushedEarly = waitFor(func() bool { return created.Load() > 0 })
		}
	}
	h.build()
	if rep := h.sync(); rep.ExitCode() != 0 {
		t.Fatalf("exit %d: %+v", rep.ExitCode(), rep)
	}
	if !pushedEarly {
		t.Error("no create reached b while reconciliation was held")
	}
	h.progress = nil
	h.wrap["b"] = mem
	h.build()
	checkConverged(t, h, people)
}

// When the outbox holds items of an earlier run, reconciliation may
// replan them, so the pushes wait for it to end: no create is sent while
// a contact still awaits reconciling.
func TestPushesWaitForReconciliationOverOlderItems(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	mem := h.conns["b"]
	refuse := true
	var early atomic.Int64
	h.wrap["b"] = &fakeConn{mem: mem, create: func(ctx context.Context, fields map[string]string) (string, error) {
		if refuse {
			return "", fmt.Errorf("no room: %w", connectors.ErrRejected)
		}
		if h.count(`SELECT count(*) FROM entities WHERE dirty <> 0`) > 0 {
			early.Add(1)
		}
		return mem.Create(ctx, fields)
	}}
	h.build()
	h.insert("a", ann())
	if rep := h.sync(); rep.Failed != 1 {
		t.Fatalf("first run: %d failed, want 1", rep.Failed)
	}
	refuse = false
	const people = 4*entityChunk + 30
	sharedPeople(h, people)
	if rep := h.sync(); rep.ExitCode() != 0 {
		t.Fatalf("exit %d: %+v", rep.ExitCode(), rep)
	}
	if n := early.Load(); n > 0 {
		t.Errorf("%d creates were sent while contacts still awaited reconciling", n)
	}
	h.wrap["b"] = mem
	h.build()
	checkConverged(t, h, people+1)
}

// Small pages are held for more and stored together, but not for long:
// with the next page slow to come, the pages in hand are stored within
// holdPages, and the run ends with every record once.
func TestSmallPagesAreStoredWhileTheNextIsSlow(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	const people = 120 // pages of 50: fewer than a chunk in all
	sharedPeople(h, people)
	mem := h.conns["a"]
	storedEarly := false
	h.wrap["a"] = &fakeConn{mem: mem, pull: func(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
		return mem.Pull(ctx, opts, func(ctx context.Context, p connectors.Page) error {
			if p.Done {
				storedEarly = waitFor(func() bool {
					return h.count(`SELECT count(*) FROM records WHERE connector = 'a'`) >= people-len(p.Records)
				})
			}
			return fn(ctx, p)
		})
	}}
	h.build()
	if rep := h.sync(); rep.ExitCode() != 0 {
		t.Fatalf("exit %d: %+v", rep.ExitCode(), rep)
	}
	if !storedEarly {
		t.Error("a's first pages were not stored while its last page was held back")
	}
	h.wrap["a"] = mem
	h.build()
	checkConverged(t, h, people)
}
