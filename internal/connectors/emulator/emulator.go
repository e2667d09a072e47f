// Package emulator holds what every CRM emulator shares: an in-memory
// contact table with modified times, an injectable clock, injected faults
// and call counters. Each CRM's emulator (internal/connectors/<crm>/<crm>test)
// wraps a Table in an http.Handler that speaks that CRM's wire format.
package emulator

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

// Clock is a settable clock. The zero value follows the real time; Set or
// Advance freeze it at a chosen instant. Safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	frozen bool
	t      time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.t
	}
	return time.Now()
}

// Set freezes the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.frozen, c.t = true, t
	c.mu.Unlock()
}

// Advance moves the clock forward by d (freezing it first at now).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	if !c.frozen {
		c.frozen, c.t = true, time.Now()
	}
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Contact is one row of a Table.
type Contact struct {
	ID       int64
	Fields   map[string]string
	Created  time.Time
	Modified time.Time
	Deleted  bool
}

// Table is an in-memory contact table. Ids are assigned ascending from 1.
// Safe for concurrent use.
type Table struct {
	Clock *Clock

	mu     sync.RWMutex
	rows   map[int64]*Contact
	ids    []int64 // ascending, live and deleted
	nextID int64
}

// NewTable returns an empty table on clock (a new real-time clock if nil).
func NewTable(clock *Clock) *Table {
	if clock == nil {
		clock = &Clock{}
	}
	return &Table{Clock: clock, rows: map[int64]*Contact{}, nextID: 1}
}

// Insert adds a contact and returns its id. Modified and Created are the
// clock's now.
func (t *Table) Insert(fields map[string]string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Clock.Now()
	id := t.nextID
	t.nextID++
	t.rows[id] = &Contact{ID: id, Fields: maps.Clone(fields), Created: now, Modified: now}
	if t.rows[id].Fields == nil {
		t.rows[id].Fields = map[string]string{}
	}
	t.ids = append(t.ids, id)
	return id
}

// Backdate moves the created and modified times of every contact back by
// d, as if the table had been filled d ago.
func (t *Table) Backdate(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.rows {
		c.Created = c.Created.Add(-d)
		c.Modified = c.Modified.Add(-d)
	}
}

// Update sets the given fields of a live contact and bumps its modified
// time. It reports false when the contact does not exist.
func (t *Table) Update(id int64, fields map[string]string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.rows[id]
	if !ok || c.Deleted {
		return false
	}
	maps.Copy(c.Fields, fields)
	c.Modified = t.Clock.Now()
	return true
}

// Delete marks a contact deleted (it disappears from listings).
func (t *Table) Delete(id int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.rows[id]
	if !ok || c.Deleted {
		return false
	}
	c.Deleted = true
	c.Modified = t.Clock.Now()
	return true
}

// Get returns a copy of a live contact.
func (t *Table) Get(id int64) (Contact, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c, ok := t.rows[id]
	if !ok || c.Deleted {
		return Contact{}, false
	}
	cp := *c
	cp.Fields = maps.Clone(c.Fields)
	return cp, true
}

// List returns copies of the live contacts that keep returns true for, in
// ascending id order.
func (t *Table) List(keep func(*Contact) bool) []Contact {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Contact
	for _, id := range t.ids {
		c := t.rows[id]
		if c.Deleted || (keep != nil && !keep(c)) {
			continue
		}
		cp := *c
		cp.Fields = maps.Clone(c.Fields)
		out = append(out, cp)
	}
	return out
}

// ListAfter is List for one page: copies of up to limit live contacts
// with ids above after that keep returns true for, in ascending id
// order, and whether more such contacts follow. Only the contacts it
// returns are copied.
func (t *Table) ListAfter(after int64, limit int, keep func(*Contact) bool) (page []Contact, more bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	from, _ := slices.BinarySearch(t.ids, after+1)
	for _, id := range t.ids[from:] {
		c := t.rows[id]
		if c.Deleted || (keep != nil && !keep(c)) {
			continue
		}
		if len(page) == limit {
			return page, true
		}
		cp := *c
		cp.Fields = maps.Clone(c.Fields)
		page = append(page, cp)
	}
	return page, false
}

// Len returns the number of live contacts.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, c := range t.rows {
		if !c.Deleted {
			n++
		}
	}
	return n
}

// IDs returns the live ids, ascending.
func (t *Table) IDs() []int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]int64, 0, len(t.ids))
	for _, id := range t.ids {
		if !t.rows[id].Deleted {
			out = append(out, id)
		}
	}
	return out
}

// Fault is a reply injected instead of the real one.
type Fault struct {
	// Status is the HTTP status to send (200 with a Body sends an error
	// body with a success status).
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Body is sent as is; empty sends a short text.
	Body string
	// ContentType defaults to text/plain.
	ContentType string
}

// Hooks is embedded by every emulator: injected faults and call counters,
// keyed by method name ("get_contact_list", "getContactList",
// "clients/list"...). "*" matches every method. Safe for concurrent use.
type Hooks struct {
	mu     sync.Mutex
	faults map[string][]Fault
	calls  map[string]int
	// Random, when set, is asked on every call for a fault to inject
	// (fault storms); nil means none.
	random func(method string) *Fault
}

// FailNext makes the next n calls of method answer with f.
func (h *Hooks) FailNext(method string, n int, f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.faults == nil {
		h.faults = map[string][]Fault{}
	}
	for range n {
		h.faults[method] = append(h.faults[method], f)
	}
}

// SetRandomFaults installs a function asked for a fault on every call.
func (h *Hooks) SetRandomFaults(fn func(method string) *Fault) {
	h.mu.Lock()
	h.random = fn
	h.mu.Unlock()
}

// Calls returns the number of calls of method ("*" for all).
func (h *Hooks) Calls(method string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if method == "*" {
		n := 0
		for _, c := range h.calls {
			n += c
		}
		return n
	}
	return h.calls[method]
}

// CallCounts returns a copy of all counters.
func (h *Hooks) CallCounts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.calls)
}

// ResetCalls zeroes the counters.
func (h *Hooks) ResetCalls() {
	h.mu.Lock()
	h.calls = nil
	h.mu.Unlock()
}

// Enter counts a call of method and, when a fault is due, writes it and
// returns true: the emulator then returns without doing the call.
func (h *Hooks) Enter(w http.ResponseWriter, method string) bool {
	h.mu.Lock()
	if h.calls == nil {
		h.calls = map[string]int{}
	}
	h.calls[method]++
	var f *Fault
	for _, key := range []string{method, "*"} {
		if q := h.faults[key]; len(q) > 0 {
			f = &q[0]
			h.faults[key] = q[1:]
			break
		}
	}
	random := h.random
	h.mu.Unlock()
	if f == nil && random != nil {
		f = random(method)
	}
	if f == nil {
		return false
	}
	WriteFault(w, *f)
	return true
}

// WriteFault writes f.
func WriteFault(w http.ResponseWriter, f Fault) {
	ct := f.ContentType
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	body := f.Body
	if body == "" {
		body = fmt.Sprintf("injected fault: HTTP %d", status)
	}
	_, _ = w.Write([]byte(body))
}

// SortedKeys returns m's keys sorted, for deterministic output.
func SortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// FormatID formats an id.
func FormatID(id int64) string { return strconv.FormatInt(id, 10) }

// Fail is for in-process connectors (no HTTP): it counts a call of method
// and, when a fault is due, returns the error a remote CRM answering with
// that fault would have caused — 429/503 ErrRateLimited (with its
// Retry-After), other 5xx ErrTemporary, 401/403 ErrAuth, anything else
// ErrRejected. prefix names the connector in the message.
func (h *Hooks) Fail(prefix, method string) error {
	rec := &faultRecorder{}
	if !h.Enter(rec, method) {
		return nil
	}
	err := fmt.Errorf("%s: %s: injected fault %d", prefix, method, rec.status)
	switch {
	case rec.status == 429 || rec.status == 503:
		err = fmt.Errorf("%w: %w", connectors.ErrRateLimited, err)
		if d, ok := connectors.ParseRetryAfter(rec.Header().Get("Retry-After"), time.Now()); ok {
			return &connectors.RetryAfterError{After: d, Err: err}
		}
		return err
	case rec.status >= 500:
		return fmt.Errorf("%w: %w", connectors.ErrTemporary, err)
	case rec.status == 401 || rec.status == 403:
		return fmt.Errorf("%w: %w", connectors.ErrAuth, err)
	default:
		return fmt.Errorf("%w: %w", connectors.ErrRejected, err)
	}
}

// faultRecorder captures the status and headers of an injected fault.
type faultRecorder struct {
	status int
	header http.Header
}

func (f *faultRecorder) Header() http.Header {
	if f.header == nil {
		f.header = http.Header{}
	}
	return f.header
}
func (f *faultRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (f *faultRecorder) WriteHeader(status int)      { f.status = status }
