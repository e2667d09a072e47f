package engine

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

// A record the CRM reports as deleted (Record.Deleted from Pull) is a
// tombstone like one missing from a listing: with propagation on, the
// person is deleted in the other CRMs.
func TestDeletedFlagBecomesATombstone(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withPropagate(10, 1))
	ida := h.insert("a", ann())
	h.insert("a", map[string]string{"given_name": "Bob", "email": "bob@example.com"})
	h.sync()
	var flagged []string
	mem := h.conns["a"]
	// The record stays in a's listing: only the flag says it is gone.
	h.wrap["a"] = &fakeConn{mem: mem, pull: func(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
		return mem.Pull(ctx, opts, func(ctx context.Context, p connectors.Page) error {
			if p.Done {
				for _, id := range flagged {
					p.Records = append(p.Records, connectors.Record{ID: id, Deleted: true})
				}
			}
			return fn(ctx, p)
		})
	}}
	h.build()
	flagged = []string{ida}
	rep := h.sync()
	if rep.Connectors[1].Deleted != 1 || len(h.findBy("b", "ann@example.com")) != 0 || len(h.findBy("b", "bob@example.com")) != 1 {
		t.Errorf("b deleted %d; Ann on b %d, Bob %d; want 1, 0, 1", rep.Connectors[1].Deleted, len(h.findBy("b", "ann@example.com")), len(h.findBy("b", "bob@example.com")))
	}
	if st := h.status(); st.Entities != 1 {
		t.Errorf("%d contacts, want 1", st.Entities)
	}
	// The flag repeated on later pulls changes nothing more.
	before := h.writes()
	h.sync()
	if w := h.writes() - before; w != 0 {
		t.Errorf("repeated flag: %d writes", w)
	}
}

// An update sends only the fields that changed, under the CRM's names.
func TestUpdateCarriesOnlyChangedFields(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	var mu sync.Mutex
	var sent []map[string]string
	mem := h.conns["b"]
	h.wrap["b"] = &fakeConn{mem: mem, update: func(ctx context.Context, id string, fields map[string]string) error {
		mu.Lock()
		sent = append(sent, maps.Clone(fields))
		mu.Unlock()
		return mem.Update(ctx, id, fields)
	}}
	h.build()
	ida := h.insert("a", ann())
	h.sync()
	h.edit("a", ida, map[string]string{"company": "Beta Ltd", "phone": "+44 20 7946 0999"})
	h.sync()
	want := map[string]string{"Org": "Beta Ltd", "Tel": "020 7946 0999"}
	if len(sent) != 1 || !maps.Equal(sent[0], want) {
		t.Errorf("updates sent to b: %v, want one carrying %v", sent, want)
	}
}

// A dry run's plan lists the deletions it would make, and makes none.
func TestDryRunPlanShowsDeletions(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withPropagate(10, 1))
	ida := h.insert("a", ann())
	h.insert("a", map[string]string{"given_name": "Bob", "email": "bob@example.com"})
	h.sync()
	idb := h.findID("b", "ann@example.com")
	h.deleteRemote("a", ida)
	before := h.writes()
	rep := h.sync(RunOptions{DryRun: true})
	plan := h.out.String()
	if !regexp.MustCompile(`(?m)^delete b ` + idb + ` \(contact \d+\)$`).MatchString(plan) {
		t.Errorf("plan lacks the deletion of b %s:\n%s", idb, plan)
	}
	if rep.Connectors[1].Deleted != 1 {
		t.Errorf("dry run counts %d deletions for b, want 1", rep.Connectors[1].Deleted)
	}
	if w := h.writes() - before; w != 0 || len(h.findBy("b", "ann@example.com")) != 1 {
		t.Errorf("dry run wrote %d times; Ann on b %d", w, len(h.findBy("b", "ann@example.com")))
	}
	// A blocked deletion is in the plan too.
	h.cfg.Deletions.MaxDeleteCount = 0
	h.build()
	h.sync(RunOptions{DryRun: true})
	if !regexp.MustCompile(`(?m)^deletions blocked: .*max_delete_count 0`).MatchString(h.out.String()) {
		t.Errorf("plan lacks the blocked deletions:\n%s", h.out.String())
	}
}

// The run journal holds each connector's API calls, retries and time, as
// counted by its pacer.
func TestJournalCountsCallsPerConnector(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	h.pacers = map[string]*connectors.Pacer{}
	for _, n := range h.names {
		p := connectors.NewPacer(connectors.PacerConfig{Name: n, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
			Sleep: func(context.Context, time.Duration) error { return nil }})
		h.conns[n].Pacer = p
		h.pacers[n] = p
	}
	h.build()
	for i := range 3 {
		h.insert("a", map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)})
	}
	// b's first listing fails once and is retried.
	h.conns["b"].Hooks.FailNext("list", 1, emulator.Fault{Status: 500})
	rep := h.sync()
	a, b := rep.Connectors[0], rep.Connectors[1]
	if a.Reads < 1 || a.Writes != 0 || a.Retries != 0 {
		t.Errorf("a: reads %d writes %d retries %d, want reads, no writes, no retries", a.Reads, a.Writes, a.Retries)
	}
	if b.Reads < 2 || b.Writes != 3 || b.Retries != 1 {
		t.Errorf("b: reads %d writes %d retries %d, want ≥2, 3 and 1", b.Reads, b.Writes, b.Retries)
	}
	st := h.status()
	for _, rc := range st.Runs[0].Connectors {
		var want ConnectorReport
		for _, c := range rep.Connectors {
			if c.Name == rc.Connector {
				want = c
			}
		}
		// The journal keeps whole milliseconds.
		if want.Duration <= 0 || rc.Duration != want.Duration.Truncate(time.Millisecond) {
			t.Errorf("%s: duration %v in the report, %v in the journal", rc.Connector, want.Duration, rc.Duration)
		}
		if rc.Reads != want.Reads || rc.Writes != want.Writes || rc.Retries != want.Retries || rc.Created != int64(want.Created) {
			t.Errorf("journal %s: %+v, report %+v", rc.Connector, rc, want)
		}
	}
	// The counts are per run, not since start.
	rep = h.sync()
	if b := rep.Connectors[1]; b.Writes != 0 || b.Retries != 0 || b.Reads < 1 {
		t.Errorf("second run b: reads %d writes %d retries %d", b.Reads, b.Writes, b.Retries)
	}
}
