// Package contract is the connector contract suite: one function that every
// connector's tests call with its own emulator, over real HTTP on loopback.
package contract

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

// Emulator is what the suite needs from a CRM emulator. Ids are the CRM's
// ids as the connector reports them.
type Emulator interface {
	// Seed adds a contact as a CRM user would and returns its id.
	Seed(fields map[string]string) string
	// EditAsUser changes fields as a CRM user would (bumps modified time).
	EditAsUser(id string, fields map[string]string)
	// Fields returns the emulator's current values of a live contact.
	Fields(id string) (map[string]string, bool)
	// Advance moves the emulator's clock forward.
	Advance(d time.Duration)
	// FailNext makes the next n calls of method fail with f.
	FailNext(method string, n int, f emulator.Fault)
	// Calls counts calls of method ("*": all).
	Calls(method string) int
}

// Harness describes one connector to the suite.
type Harness struct {
	// New starts a fresh emulator (frozen clock) and returns a connector
	// configured with PageSize talking to it.
	New func(t *testing.T) (connectors.Connector, Emulator)
	// NewBadCredentials returns a connector with wrong credentials
	// against a fresh emulator, and that emulator.
	NewBadCredentials func(t *testing.T) (connectors.Connector, Emulator)
	// PageSize the connector is configured with.
	PageSize int
	// CRM field names for a given name, family name and email.
	GivenField, FamilyField, EmailField string
	// ListMethod is the emulator's method name of the pull's list call.
	ListMethod string
	// ReadOnly connectors skip the write tests.
	ReadOnly bool
	// Incremental connectors return only changed records for a cursor.
	Incremental bool
	// MaxRecords caps how many contacts the emulator holds (1 for a
	// single-account API); 0 means no cap.
	MaxRecords int
	// ExpireSessions, when set, makes every session or access key the
	// emulator has issued expire at once, as the CRM would after its
	// lifetime; AuthMethod is the emulator's method name of the call that
	// opens a session ("authenticate", "login"). Connectors without
	// sessions leave both unset.
	ExpireSessions func(Emulator)
	AuthMethod     string
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("ListAll", func(t *testing.T) { listAll(t, h) })
	if h.MaxRecords == 0 {
		t.Run("PagingOddTotal", func(t *testing.T) { paging(t, h) })
		t.Run("IncrementalAfterChange", func(t *testing.T) { incremental(t, h) })
	}
	t.Run("GetNotFound", func(t *testing.T) { getNotFound(t, h) })
	if !h.ReadOnly {
		t.Run("CreateThenReadBack", func(t *testing.T) { createReadBack(t, h) })
		t.Run("UpdateOneFieldLeavesOthers", func(t *testing.T) { updateOne(t, h) })
	}
	t.Run("BadCredentialsPermanent", func(t *testing.T) { badCredentials(t, h) })
	t.Run("RateLimitHonoured", func(t *testing.T) { rateLimit(t, h) })
	if h.ExpireSessions != nil && h.MaxRecords == 0 {
		t.Run("SessionExpiresMidPull", func(t *testing.T) { sessionExpiry(t, h) })
	}
}

func person(h Harness, i int) map[string]string {
	return map[string]string{
		h.GivenField:  fmt.Sprintf("Given%03d", i),
		h.FamilyField: fmt.Sprintf("Family%03d", i),
		h.EmailField:  fmt.Sprintf("person%03d@example.com", i),
	}
}

// PullAll pulls with opts and returns the records and the number of pages.
func PullAll(t *testing.T, c connectors.Connector, opts connectors.PullOptions) ([]connectors.Record, int, string) {
	t.Helper()
	var recs []connectors.Record
	pages := 0
	cursor := ""
	sawDone := false
	err := c.Pull(context.Background(), opts, func(ctx context.Context, p connectors.Page) error {
		if sawDone {
			return errors.New("page after the Done page")
		}
		pages++
		recs = append(recs, p.Records...)
		cursor = p.Cursor
		sawDone = p.Done
		return nil
	})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if !sawDone {
		t.Fatalf("Pull returned without a Done page")
	}
	return recs, pages, cursor
}

func ids(recs []connectors.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func listAll(t *testing.T, h Harness) {
	c, emu := h.New(t)
	n := 3
	if h.MaxRecords > 0 {
		n = min(n, h.MaxRecords)
	}
	var want []string
	for i := range n {
		want = append(want, emu.Seed(person(h, i)))
	}
	recs, _, _ := PullAll(t, c, connectors.PullOptions{Full: true})
	got := ids(recs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v", got, want)
	}
	for i, r := range recs {
		if r.Fields[h.EmailField] == "" || r.Fields[h.GivenField] == "" {
			t.Errorf("record %d lacks name or email: %v", i, r.Fields)
		}
	}
}

// oddTotal is an odd number of records that fills three pages and part
// of a fourth (for page sizes above 1), so that the last page is short.
func oddTotal(pageSize int) int {
	total := 3*pageSize + 1
	if total%2 == 0 {
		total++ // an odd page size: 3n+2 is odd and still below 4n for n > 2
	}
	return total
}

func paging(t *testing.T, h Harness) {
	c, emu := h.New(t)
	total := oddTotal(h.PageSize)
	if total%2 == 0 || (h.PageSize > 1 && total%h.PageSize == 0) {
		t.Fatalf("total %d at page size %d is not an odd total with a short last page", total, h.PageSize)
	}
	for i := range total {
		emu.Seed(person(h, i))
	}
	recs, pages, _ := PullAll(t, c, connectors.PullOptions{Full: true})
	got := ids(recs)
	if len(got) != total {
		t.Fatalf("pulled %d records, want %d", len(got), total)
	}
	slices.Sort(got)
	if len(slices.Compact(got)) != total {
		t.Fatalf("duplicate ids in a full pull")
	}
	if pages < 4 {
		t.Fatalf("pages = %d, want at least 4 for %d records at page size %d", pages, total, h.PageSize)
	}
}

func incremental(t *testing.T, h Harness) {
	c, emu := h.New(t)
	var seeded []string
	for i := range 5 {
		seeded = append(seeded, emu.Seed(person(h, i)))
	}
	emu.Advance(2 * time.Hour)
	_, _, cursor := PullAll(t, c, connectors.PullOptions{})
	emu.Advance(2 * time.Hour)
	emu.EditAsUser(seeded[2], map[string]string{h.FamilyField: "Changed"})
	recs, _, _ := PullAll(t, c, connectors.PullOptions{Cursor: cursor})
	found := false
	for _, r := range recs {
		if r.ID == seeded[2] {
			found = true
			if r.Fields[h.FamilyField] != "Changed" {
				t.Errorf("edited record has %s=%q, want Changed", h.FamilyField, r.Fields[h.FamilyField])
			}
		}
	}
	if !found {
		t.Fatalf("edited record %s missing from incremental pull (got %v)", seeded[2], ids(recs))
	}
	if h.Incremental && len(recs) != 1 {
		t.Errorf("incremental pull returned %d records, want only the edited one", len(recs))
	}
}

func getNotFound(t *testing.T, h Harness) {
	c, _ := h.New(t)
	_, err := c.Get(context.Background(), "987654")
	if !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("Get of a missing id: err = %v, want ErrNotFound", err)
	}
}

func writer(t *testing.T, c connectors.Connector) connectors.Writer {
	w, ok := c.(connectors.Writer)
	if !ok {
		t.Fatalf("%T does not implement connectors.Writer", c)
	}
	return w
}

func createReadBack(t *testing.T, h Harness) {
	c, emu := h.New(t)
	ctx := context.Background()
	fields := map[string]string{h.GivenField: "Zoë", h.FamilyField: "Šimůnek & <Co>", h.EmailField: "zoe@example.com"}
	id, err := writer(t, c).Create(ctx, fields)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if id == "" {
		t.Fatal("Create returned an empty id")
	}
	got, err := c.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	for k, v := range fields {
		if got.Fields[k] != v {
			t.Errorf("read back %s = %q, want %q", k, got.Fields[k], v)
		}
	}
	stored, ok := emu.Fields(id)
	if !ok {
		t.Fatalf("emulator has no contact %s", id)
	}
	for k, v := range fields {
		if stored[k] != v {
			t.Errorf("emulator %s = %q, want %q", k, stored[k], v)
		}
	}
}

func updateOne(t *testing.T, h Harness) {
	c, emu := h.New(t)
	id := emu.Seed(person(h, 1))
	if err := writer(t, c).Update(context.Background(), id, map[string]string{h.EmailField: "new@example.com"}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, _ := emu.Fields(id)
	want := person(h, 1)
	want[h.EmailField] = "new@example.com"
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after update %s = %q, want %q", k, got[k], v)
		}
	}
}

// badCredentials: wrong credentials fail the pull with ErrAuth after one
// request. Connectors with sessions (CO3's authenticate, OpenCRM's login)
// learn of wrong credentials from the call that opens the session, so
// that call is the one request; no connector needs a second.
func badCredentials(t *testing.T, h Harness) {
	c, emu := h.NewBadCredentials(t)
	emu.Seed(person(h, 1))
	err := c.Pull(context.Background(), connectors.PullOptions{Full: true}, func(context.Context, connectors.Page) error { return nil })
	if !errors.Is(err, connectors.ErrAuth) {
		t.Fatalf("Pull with wrong credentials: err = %v, want ErrAuth", err)
	}
	if n := emu.Calls("*"); n != 1 {
		t.Errorf("wrong credentials made %d calls, want 1; a permanent error must not be retried", n)
	}
}

// sessionExpiry: a session that expires in the middle of a pull costs one
// new session and one repeated list call; the pull completes without
// duplicates.
func sessionExpiry(t *testing.T, h Harness) {
	c, emu := h.New(t)
	total := oddTotal(h.PageSize)
	for i := range total {
		emu.Seed(person(h, i))
	}
	var got []string
	pages := 0
	err := c.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
		pages++
		got = append(got, ids(p.Records)...)
		if pages == 2 {
			h.ExpireSessions(emu)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Pull across an expired session: %v", err)
	}
	if len(got) != total {
		t.Fatalf("pulled %d records, want %d", len(got), total)
	}
	slices.Sort(got)
	if len(slices.Compact(got)) != total {
		t.Fatalf("duplicate ids in a pull across an expired session")
	}
	if pages <= 2 {
		t.Fatalf("pull ended after %d pages, before the session expired", pages)
	}
	if n := emu.Calls(h.AuthMethod); n != 2 {
		t.Errorf("%s called %d times, want 2 (one re-authentication)", h.AuthMethod, n)
	}
	if n := emu.Calls(h.ListMethod); n != pages+1 {
		t.Errorf("%s called %d times for %d pages, want %d (the refused call repeated once)", h.ListMethod, n, pages, pages+1)
	}
}

func rateLimit(t *testing.T, h Harness) {
	c, emu := h.New(t)
	emu.Seed(person(h, 1))
	emu.FailNext(h.ListMethod, 1, emulator.Fault{Status: 429, RetryAfter: "1"})
	start := time.Now()
	recs, _, _ := PullAll(t, c, connectors.PullOptions{Full: true})
	if len(recs) != 1 {
		t.Fatalf("pulled %d records after a 429, want 1", len(recs))
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("pull after 429 with Retry-After: 1 took %s, want at least 1s", el)
	}
}
