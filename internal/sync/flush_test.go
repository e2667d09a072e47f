package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
)

// flushingConn stages its writes until Flush, like a folder of files
// that makes a batch durable at once; fail decides what Flush reports.
type flushingConn struct {
	*fakeConn
	// mu guards the staged writes: the drain sends several at once.
	mu      sync.Mutex
	created []string
	updates map[string]map[string]string
	fail    func(created []string, updated []string) error
}

func newFlushingConn(f *fakeConn) *flushingConn {
	c := &flushingConn{fakeConn: f, updates: map[string]map[string]string{}}
	f.create = func(ctx context.Context, fields map[string]string) (string, error) {
		id, err := f.mem.Create(ctx, fields)
		c.mu.Lock()
		c.created = append(c.created, id)
		c.mu.Unlock()
		return id, err
	}
	f.update = func(_ context.Context, id string, fields map[string]string) error {
		c.mu.Lock()
		c.updates[id] = fields
		c.mu.Unlock()
		return nil
	}
	return c
}

func (c *flushingConn) Flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	created, updated := c.created, make([]string, 0, len(c.updates))
	for id := range c.updates {
		updated = append(updated, id)
	}
	var err error
	if c.fail != nil {
		err = c.fail(created, updated)
	}
	var fe *connectors.FlushError
	partial := errors.As(err, &fe)
	for _, id := range created {
		if err != nil && (!partial || fe.Failed[id] != nil) {
			c.mem.Delete(ctx, id) // lost: never reached the disk
		}
	}
	for id, fields := range c.updates {
		if err == nil || (partial && fe.Failed[id] == nil) {
			c.mem.Update(ctx, id, fields)
		}
	}
	c.created, c.updates = nil, map[string]map[string]string{}
	return err
}

// A batch whose Flush failed is not recorded as written: creates are sent
// again once a pull shows they are not there (no duplicate), updates on
// the next run; writes a FlushError does not name count as done.
func TestFlushDecidesWhatWasWritten(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	ann := h.insert("a", map[string]string{"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com"})
	bob := h.insert("a", map[string]string{"given_name": "Bob", "family_name": "Ray", "email": "bob@example.com"})
	fc := newFlushingConn(&fakeConn{mem: h.conns["b"]})
	fc.fail = func([]string, []string) error { return fmt.Errorf("flush: disk gone: %w", connectors.ErrTemporary) }
	h.wrap["b"] = fc
	h.build()
	h.sync()
	if n := len(h.findBy("b", "ann@example.com")); n != 0 {
		t.Fatalf("b holds %d Anns after a failed flush", n)
	}
	fc.fail = nil
	h.sync()
	h.sync()
	if n := len(h.findBy("b", "ann@example.com")) + len(h.findBy("b", "bob@example.com")); n != 2 {
		t.Fatalf("b holds %d records after the flush worked, want 2", n)
	}

	h.edit("a", ann, map[string]string{"company": "Acme"})
	h.edit("a", bob, map[string]string{"company": "Bolt"})
	h.tick()
	var failedID string
	fc.fail = func(_ []string, updated []string) error {
		if len(updated) != 2 {
			return fmt.Errorf("%d updates in the batch, want 2", len(updated))
		}
		failedID = updated[0]
		return &connectors.FlushError{Failed: map[string]error{failedID: fmt.Errorf("changed meanwhile: %w", connectors.ErrTemporary)}}
	}
	h.sync()
	if failedID == "" {
		t.Fatal("no flush of the two updates")
	}
	done := 0
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		if c := h.one("b", email)["company"]; c != "" {
			done++
		}
	}
	if done != 1 {
		t.Fatalf("%d updates done after a flush that failed one, want 1", done)
	}
	fc.fail = nil
	h.sync()
	if h.one("b", "ann@example.com")["company"] != "Acme" || h.one("b", "bob@example.com")["company"] != "Bolt" {
		t.Fatalf("the failed update was not sent again")
	}
	before := h.writes()
	h.sync()
	if n := h.writes() - before; n != 0 {
		t.Errorf("not converged: %d writes", n)
	}
}
