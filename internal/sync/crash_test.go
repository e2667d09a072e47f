package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/memory"
	"github.com/syncd/syncd/internal/state"
)

// fakeConn is a connector built from function fields; nil fields fall
// through to the memory connector it wraps.
type fakeConn struct {
	mem    *memory.Connector
	pull   func(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error
	create func(ctx context.Context, fields map[string]string) (string, error)
	update func(ctx context.Context, id string, fields map[string]string) error
}

func (f *fakeConn) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	if f.pull != nil {
		return f.pull(ctx, opts, fn)
	}
	return f.mem.Pull(ctx, opts, fn)
}
func (f *fakeConn) Get(ctx context.Context, id string) (connectors.Record, error) {
	return f.mem.Get(ctx, id)
}
func (f *fakeConn) Create(ctx context.Context, fields map[string]string) (string, error) {
	if f.create != nil {
		return f.create(ctx, fields)
	}
	return f.mem.Create(ctx, fields)
}
func (f *fakeConn) Update(ctx context.Context, id string, fields map[string]string) error {
	if f.update != nil {
		return f.update(ctx, id, fields)
	}
	return f.mem.Update(ctx, id, fields)
}
func (f *fakeConn) Delete(ctx context.Context, id string) error { return f.mem.Delete(ctx, id) }
func (f *fakeConn) ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error {
	return f.mem.ListIDs(ctx, fn)
}

// reopen simulates a restart: the store is closed (if the crash did not
// already) and opened again, and a new engine is built on it.
func (h *harness) reopen(path string) {
	h.t.Helper()
	h.store.Close()
	st, err := state.Open(context.Background(), path, state.Options{Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	h.store = st
	for n, c := range h.conns {
		h.wrap[n] = c
	}
	h.build()
}

// seedCrash fills a and b: 24 people on a, 12 of them also on b, 6 only
// on b, with an edit pending on each side for a shared person.
func seedCrash(h *harness) {
	for i := range 24 {
		v := map[string]string{"given_name": fmt.Sprint("P", i), "family_name": "X", "email": fmt.Sprintf("p%d@example.com", i), "company": "Co"}
		h.insert("a", v)
		if i%2 == 0 {
			v["email"] = strings.ToUpper(v["email"])
			h.insert("b", v)
		}
	}
	for i := range 6 {
		h.insert("b", map[string]string{"given_name": "Q", "email": fmt.Sprintf("q%d@example.com", i)})
	}
}

// TestCrashDuringPushConverges stops or kills the run after n writes, for
// many n, where the n-th write reached the CRM but its answer was lost.
// The restarted sync must converge with no duplicate and no lost edit.
func TestCrashDuringPushConverges(t *testing.T) {
	maxN := 50
	if raceEnabled {
		maxN = 12
	}
	for _, mode := range []string{"cancel", "kill"} {
		for n := 1; n <= maxN; n += 1 + n/8 {
			t.Run(fmt.Sprintf("%s after %d writes", mode, n), func(t *testing.T) {
				h := newHarness(t, []string{"a", "b"})
				path := h.store.Path
				seedCrash(h)
				h.sync()
				// Edits on both sides, then more people, so the crashing run
				// has updates and creates to push.
				h.edit("a", "1", map[string]string{"company": "Edited on a"})
				h.edit("b", "1", map[string]string{"family_name": "Edited on b"})
				for i := range 20 {
					h.insert([]string{"a", "b"}[i%2], map[string]string{"given_name": "New", "email": fmt.Sprintf("new%d@example.com", i)})
				}
				h.tick()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var writes atomic.Int64
				crash := func() {
					if mode == "cancel" {
						cancel()
					} else {
						h.store.Close()
					}
				}
				for _, name := range []string{"a", "b"} {
					mem := h.conns[name]
					h.wrap[name] = &fakeConn{mem: mem,
						create: func(ctx context.Context, f map[string]string) (string, error) {
							id, err := mem.Create(ctx, f)
							if writes.Add(1) == int64(n) {
								crash()
								return "", fmt.Errorf("fake: create: connection reset: %w", connectors.ErrTemporary)
							}
							return id, err
						},
						update: func(ctx context.Context, id string, f map[string]string) error {
							err := mem.Update(ctx, id, f)
							if writes.Add(1) == int64(n) {
								crash()
								return fmt.Errorf("fake: update: connection reset: %w", connectors.ErrTemporary)
							}
							return err
						}}
				}
				h.build()
				rep, err := h.eng.Run(ctx, RunOptions{})
				switch mode {
				case "cancel":
					if err != nil {
						t.Fatalf("cancelled run: %v", err)
					}
					if writes.Load() >= int64(n) && !rep.Interrupted {
						t.Errorf("cancelled run not reported interrupted")
					}
				case "kill":
					if writes.Load() >= int64(n) && err == nil {
						t.Errorf("run on a closed store reported no error")
					}
				}
				h.tick()
				h.reopen(path)
				h.sync()
				h.sync()
				checkNoDuplicates(t, h, 24+6+20)
				if got := h.one("b", "p0@example.com")["company"]; got != "Edited on a" {
					t.Errorf("edit on a lost: b company %q", got)
				}
				if got := h.one("a", "p0@example.com")["family_name"]; got != "Edited on b" {
					t.Errorf("edit on b lost: a family_name %q", got)
				}
				before := h.writes()
				h.sync()
				if w := h.writes() - before; w != 0 {
					t.Errorf("converged state still writes: %d", w)
				}
			})
		}
	}
}

// TestCrashDuringPullResumes kills the run after n pages of a pull.
func TestCrashDuringPullResumes(t *testing.T) {
	for n := 1; n <= 6; n++ {
		t.Run(fmt.Sprint(n, " pages"), func(t *testing.T) {
			h := newHarness(t, []string{"a", "b"})
			path := h.store.Path
			for _, c := range h.conns {
				c.PageSize = 5
			}
			seedCrash(h)
			for i := range 10 {
				h.insert("a", map[string]string{"given_name": "New", "email": fmt.Sprintf("new%d@example.com", i)})
			}
			mem := h.conns["a"]
			pages := 0
			h.wrap["a"] = &fakeConn{mem: mem, pull: func(ctx context.Context, o connectors.PullOptions, fn connectors.PageFunc) error {
				return mem.Pull(ctx, o, func(ctx context.Context, p connectors.Page) error {
					pages++
					if pages == n {
						h.store.Close()
					}
					return fn(ctx, p)
				})
			}}
			h.build()
			if _, err := h.eng.Run(context.Background(), RunOptions{}); err == nil {
				t.Fatal("run on a closed store reported no error")
			}
			h.reopen(path)
			h.sync()
			h.sync()
			checkNoDuplicates(t, h, 24+6+10)
		})
	}
}

// checkNoDuplicates checks that both sides hold want people, each once,
// with equal values.
func checkNoDuplicates(t *testing.T, h *harness, want int) {
	t.Helper()
	for _, side := range h.names {
		rows := h.canonicalRows(side)
		seen := map[string]bool{}
		for _, v := range rows {
			if seen[v["email"]] {
				t.Errorf("%s holds %s twice", side, v["email"])
			}
			seen[v["email"]] = true
		}
		if len(rows) != want {
			t.Errorf("%s holds %d contacts, want %d", side, len(rows), want)
		}
	}
	st := h.status()
	if st.Entities != int64(want) {
		t.Errorf("%d entities, want %d", st.Entities, want)
	}
	if len(st.Failures) != 0 || len(st.Parked) != 0 {
		t.Errorf("left failures %+v parked %+v", st.Failures, st.Parked)
	}
	_ = filepath.Join
}
