package opencrm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/opencrm/opencrmtest"
)

var authModes = []string{AuthParams, AuthHeaders, AuthLogin}

func optsFor(auth string) *Options {
	o := NewOptions()
	o.Auth = auth
	return o
}

func TestContract(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth, func(t *testing.T) {
			t.Parallel()
			const pageSize = 2
			h := contract.Harness{
				New: func(t *testing.T) (connectors.Connector, contract.Emulator) {
					e := newEnv(t, envConfig{opts: optsFor(auth), pageSize: pageSize})
					return e.c, e.emu
				},
				NewBadCredentials: func(t *testing.T) (connectors.Connector, contract.Emulator) {
					e := newEnv(t, envConfig{opts: optsFor(auth), pageSize: pageSize, passkey: "wrong-passkey"})
					return e.c, e.emu
				},
				PageSize:    pageSize,
				GivenField:  "firstname",
				FamilyField: "lastname",
				EmailField:  "email",
				ListMethod:  MethodListFull,
				// The overlap window returns unchanged records modified
				// within the lookback of the cursor; the engine drops
				// them by hash.
				Incremental: false,
			}
			if auth == AuthLogin {
				h.ExpireSessions = func(emu contract.Emulator) { emu.(*opencrmtest.Server).ExpireSessions() }
				h.AuthMethod = MethodLogin
			}
			contract.Run(t, h)
		})
	}
}

func TestAuthModes(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: optsFor(auth), pageSize: 2})
			for i := range 5 {
				e.emu.Seed(person(i))
			}
			ctx := context.Background()
			recs, _ := pull(t, e.c, connectors.PullOptions{})
			if len(recs) != 5 {
				t.Fatalf("pulled %d, want 5", len(recs))
			}
			id, err := e.c.Create(ctx, person(9))
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if err := e.c.Update(ctx, id, map[string]string{"email": "nine@example.com"}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			got, err := e.c.Get(ctx, id)
			if err != nil || got.Fields["email"] != "nine@example.com" || got.Fields["firstname"] != "Given9" {
				t.Fatalf("Get = %v, %v", got, err)
			}
			var ids []string
			if err := e.c.ListIDs(ctx, func(_ context.Context, batch []string) error {
				ids = append(ids, batch...)
				return nil
			}); err != nil {
				t.Fatalf("ListIDs: %v", err)
			}
			if len(ids) != 6 {
				t.Fatalf("ListIDs = %v, want 6 ids", ids)
			}
			wantLogins := 0
			if auth == AuthLogin {
				wantLogins = 1
				if keys := e.emu.AccessKeys(); len(keys) != 1 || e.red.String(keys[0]) != "REDACTED" {
					t.Errorf("access key not registered with the redactor")
				}
			}
			if n := e.emu.Calls(MethodLogin); n != wantLogins {
				t.Errorf("login calls = %d, want %d", n, wantLogins)
			}
			e.assertNoSecrets(t)
		})
	}
}

func TestAccessKeyExpiresMidPull(t *testing.T) {
	for _, how := range []string{"idle", "expired"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: optsFor(AuthLogin), pageSize: 3, emu: opencrmtest.Config{SessionIdle: 10 * time.Minute}})
			for i := range 10 {
				e.emu.Seed(person(i))
			}
			pages := 0
			var recs []connectors.Record
			err := e.c.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
				pages++
				recs = append(recs, p.Records...)
				if pages == 2 {
					if how == "idle" {
						e.emu.Advance(11 * time.Minute)
					} else {
						e.emu.ExpireSessions()
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if len(recs) != 10 {
				t.Fatalf("pulled %d, want 10", len(recs))
			}
			if n := e.emu.Calls(MethodLogin); n != 2 {
				t.Errorf("login calls = %d, want 2 (one re-login)", n)
			}
			e.assertNoSecrets(t)
		})
	}
}

func TestPaging(t *testing.T) {
	const n = 4
	for _, total := range []int{0, 1, n, n + 1, 10*n + 3} {
		for _, count := range []bool{false, true} {
			name := formatLimit(total) + "/absolute"
			if count {
				name = formatLimit(total) + "/count"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, envConfig{pageSize: n, emu: opencrmtest.Config{LimitEndCount: count}})
				var want []string
				for i := range total {
					want = append(want, e.emu.Seed(person(i)))
				}
				recs, pages := pull(t, e.c, connectors.PullOptions{Full: true})
				var got []string
				for _, r := range recs {
					got = append(got, r.ID)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("ids = %v, want %v", got, want)
				}
				if wantPages := total/n + 1; len(pages) != wantPages {
					t.Errorf("pages = %d, want %d", len(pages), wantPages)
				}
				if calls := e.emu.Calls(MethodListFull); calls != len(pages) {
					t.Errorf("list calls = %d for %d pages", calls, len(pages))
				}
				var ids []string
				if err := e.c.ListIDs(context.Background(), func(_ context.Context, batch []string) error {
					ids = append(ids, batch...)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids, want) {
					t.Fatalf("ListIDs = %v, want %v", ids, want)
				}
			})
		}
	}
}

// A pull interrupted after a page resumes from that page's cursor without
// a gap.
func TestResumeFromPageCursor(t *testing.T) {
	e := newEnv(t, envConfig{pageSize: 3})
	var want []string
	for i := range 10 {
		want = append(want, e.emu.Seed(person(i)))
	}
	stop := errors.New("crash")
	var first []connectors.Record
	var cursor string
	err := e.c.Pull(context.Background(), connectors.PullOptions{}, func(_ context.Context, p connectors.Page) error {
		first = append(first, p.Records...)
		cursor = p.Cursor
		if len(first) >= 6 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Pull: %v", err)
	}
	rest, pages := pull(t, e.c, connectors.PullOptions{Cursor: cursor})
	var got []string
	for _, r := range append(first, rest...) {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v", got, want)
	}
	if c := lastCursor(pages); !strings.HasPrefix(c, "2026-01-05T09:00:00") {
		t.Errorf("Done cursor = %q, want the newest modified time", c)
	}
}

func TestSameSecondEditsNotMissed(t *testing.T) {
	e := newEnv(t, envConfig{pageSize: 10})
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	e.emu.Clock.Set(base)
	a := e.emu.Seed(person(1))
	b := e.emu.Seed(person(2))
	c := e.emu.Seed(person(3))
	e.emu.Clock.Set(base.Add(time.Hour + 200*time.Millisecond))
	e.emu.EditAsUser(a, map[string]string{"lastname": "A1"})
	_, pages := pull(t, e.c, connectors.PullOptions{})
	cursor := lastCursor(pages)
	// Two more edits later in the very second the cursor holds.
	e.emu.Clock.Set(base.Add(time.Hour + 700*time.Millisecond))
	e.emu.EditAsUser(b, map[string]string{"lastname": "B1"})
	e.emu.EditAsUser(c, map[string]string{"lastname": "C1"})
	recs, _ := pull(t, e.c, connectors.PullOptions{Cursor: cursor})
	got := byID(recs)
	if got[b].Fields["lastname"] != "B1" || got[c].Fields["lastname"] != "C1" {
		t.Fatalf("same-second edits missed: %v", recs)
	}
}

func TestOverlapReturnsUnchanged(t *testing.T) {
	e := newEnv(t, envConfig{pageSize: 10})
	x := e.emu.Seed(person(1))
	first, pages := pull(t, e.c, connectors.PullOptions{})
	e.emu.Advance(time.Minute)
	y := e.emu.Seed(person(2))
	recs, pages2 := pull(t, e.c, connectors.PullOptions{Cursor: lastCursor(pages)})
	got := byID(recs)
	if _, ok := got[x]; !ok {
		t.Fatalf("unchanged record in the overlap window not returned: %v", recs)
	}
	if !equalFields(got[x].Fields, first[0].Fields) {
		t.Errorf("unchanged record reads differently: %v vs %v", got[x].Fields, first[0].Fields)
	}
	if _, ok := got[y]; !ok {
		t.Fatalf("new record missing")
	}
	if lastCursor(pages2) <= lastCursor(pages) {
		t.Errorf("cursor did not move: %q -> %q", lastCursor(pages), lastCursor(pages2))
	}
	// Nothing new: the Done cursor stays.
	_, pages3 := pull(t, e.c, connectors.PullOptions{Cursor: lastCursor(pages2)})
	if lastCursor(pages3) != lastCursor(pages2) {
		t.Errorf("cursor moved without changes: %q -> %q", lastCursor(pages2), lastCursor(pages3))
	}
}

func equalFields(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestAutumnClockChange(t *testing.T) {
	e := newEnv(t, envConfig{pageSize: 10})
	// 2026-10-25: London goes from 02:00 BST back to 01:00 GMT at 01:00 UTC.
	firstPass := time.Date(2026, 10, 25, 0, 20, 0, 0, time.UTC) // 01:20 BST
	e.emu.Clock.Set(firstPass)
	e.emu.Seed(person(1))
	_, pages := pull(t, e.c, connectors.PullOptions{})
	cursor := lastCursor(pages)
	if cursor != "2026-10-25T00:20:00Z" {
		t.Fatalf("cursor = %q", cursor)
	}
	e.emu.Clock.Set(time.Date(2026, 10, 25, 1, 10, 0, 0, time.UTC)) // 01:10 GMT, second pass
	edited := e.emu.Seed(person(2))
	recs, _ := pull(t, e.c, connectors.PullOptions{Cursor: cursor})
	got := byID(recs)
	r, ok := got[edited]
	if !ok {
		t.Fatalf("edit in the repeated hour missed: %v", recs)
	}
	if want := time.Date(2026, 10, 25, 1, 10, 0, 0, time.UTC); !r.Modified.Equal(want) {
		t.Errorf("Modified = %v, want %v", r.Modified, want)
	}
}

func TestQueryFrom(t *testing.T) {
	c := &Client{loc: mustLoc(t, "Europe/London"), lookback: 5 * time.Minute}
	cases := []struct {
		cursor time.Time
		want   string
	}{
		{time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), "2026-07-01 12:55:00"},
		{time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "2026-01-01 11:55:00"},
		// Before the repeated hour: plain.
		{time.Date(2026, 10, 24, 23, 30, 0, 0, time.UTC), "2026-10-25 00:25:00"},
		// First pass, second pass, and less than an hour after: from before 01:00.
		{time.Date(2026, 10, 25, 0, 20, 0, 0, time.UTC), "2026-10-25 00:59:59"},
		{time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), "2026-10-25 00:59:59"},
		{time.Date(2026, 10, 25, 2, 50, 0, 0, time.UTC), "2026-10-25 00:59:59"},
		// An hour after the repeated hour ended: plain again.
		{time.Date(2026, 10, 25, 3, 10, 0, 0, time.UTC), "2026-10-25 03:05:00"},
		// Spring forward: no repeated hour.
		{time.Date(2026, 3, 29, 1, 2, 0, 0, time.UTC), "2026-03-29 00:57:00"},
		{time.Date(2026, 3, 29, 1, 10, 0, 0, time.UTC), "2026-03-29 02:05:00"},
	}
	for _, tc := range cases {
		if got := c.queryFrom(tc.cursor, nil); got != tc.want {
			t.Errorf("queryFrom(%v) = %q, want %q", tc.cursor, got, tc.want)
		}
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// stripFormats plays a server that ignores the format path segments, so
// the default formats come back.
func stripFormats(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = strings.Replace(r.URL.Path, "/"+formatSegments, "/", 1)
		r.URL.RawPath = ""
		h.ServeHTTP(w, r)
	})
}

func TestBirthdayFormats(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(http.Handler) http.Handler
	}{{"iso", nil}, {"defaults", stripFormats}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{pageSize: 10, wrap: tc.wrap})
			e.emu.Clock.Set(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))
			f := person(1)
			f["birthday"] = "29-03-1984"
			id := e.emu.Seed(f)
			f2 := person(2)
			f2["birthday"] = "1984-03-29"
			e.emu.Seed(f2)
			recs, _ := pull(t, e.c, connectors.PullOptions{})
			for _, r := range recs {
				if r.Fields["birthday"] != "1984-03-29" {
					t.Errorf("record %s birthday = %q", r.ID, r.Fields["birthday"])
				}
				if want := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC); !r.Modified.Equal(want) {
					t.Errorf("Modified = %v, want %v", r.Modified, want)
				}
				if r.Fields["modifiedtime"] != "2026-07-01T12:00:00Z" {
					t.Errorf("modifiedtime = %q", r.Fields["modifiedtime"])
				}
			}
			got, err := e.c.Get(context.Background(), id)
			if err != nil || got.Fields["birthday"] != "1984-03-29" {
				t.Errorf("Get birthday = %q, %v", got.Fields["birthday"], err)
			}
		})
	}
}

func TestWrongKeys(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: optsFor(auth), passkey: "pk-WRONG-0000"})
			e.emu.Seed(person(1))
			err := e.c.Pull(context.Background(), connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil })
			if !errors.Is(err, connectors.ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			if !strings.Contains(err.Error(), "key or passkey is wrong") || !strings.HasPrefix(err.Error(), "opencrm: ") {
				t.Errorf("unclear message: %v", err)
			}
			if strings.Contains(err.Error(), "pk-WRONG-0000") {
				t.Errorf("message holds the passkey: %v", err)
			}
			if n := e.emu.Calls("*"); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name    string
		fault   emulator.Fault
		times   int
		wantErr error
	}{
		{"500 retried", emulator.Fault{Status: 500}, 2, nil},
		{"507 retried", emulator.Fault{Status: 507}, 2, nil},
		{"509 every time", emulator.Fault{Status: 509}, 10, connectors.ErrTemporary},
		{"503 retried", emulator.Fault{Status: 503, RetryAfter: "0"}, 1, nil},
		{"html", emulator.Fault{Status: 200, Body: "<html>maintenance</html>"}, 1, connectors.ErrMalformed},
		{"truncated", emulator.Fault{Status: 200, Body: `[{"id":"1","firstname":"A`}, 1, connectors.ErrMalformed},
		{"no id", emulator.Fault{Status: 200, Body: `[{"firstname":"A"}]`}, 1, connectors.ErrMalformed},
		{"400", emulator.Fault{Status: 400, Body: "bad"}, 1, connectors.ErrRejected},
		{"secret echoed", emulator.Fault{Status: 500, Body: "failed for passkey " + testPasskey}, 10, connectors.ErrTemporary},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{pageSize: 10})
			e.emu.Seed(person(1))
			e.emu.FailNext(MethodListFull, tc.times, tc.fault)
			var n int
			err := e.c.Pull(context.Background(), connectors.PullOptions{}, func(_ context.Context, p connectors.Page) error {
				n += len(p.Records)
				return nil
			})
			if tc.wantErr == nil {
				if err != nil || n != 1 {
					t.Fatalf("Pull = %v with %d records", err, n)
				}
			} else {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "opencrm: "+MethodListFull) {
					t.Errorf("error does not name the method: %v", err)
				}
			}
			e.assertNoSecrets(t, err)
		})
	}
}

func TestGetNotFoundAndBadIDs(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, id := range []string{"424242", "abc", "0", "-1"} {
		if _, err := e.c.Get(context.Background(), id); !errors.Is(err, connectors.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if err := e.c.Update(context.Background(), "424242", map[string]string{"email": "x@example.com"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("Update of a missing id = %v, want ErrNotFound", err)
	}
	if calls := e.emu.Calls(MethodGet); calls != 1 {
		t.Errorf("get calls = %d, want 1 (bad ids need no call)", calls)
	}
}

func TestCreateAndUpdate(t *testing.T) {
	opts := NewOptions()
	opts.AssignedUserID = "17"
	e := newEnv(t, envConfig{opts: opts})
	ctx := context.Background()
	id, err := e.c.Create(ctx, map[string]string{"firstname": "Ann", "lastname": "Lee", "birthday": "1990-12-31"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	stored, _ := e.emu.Fields(id)
	if stored["assigned_user_id"] != "17" || stored["birthday"] != "1990-12-31" {
		t.Errorf("stored = %v", stored)
	}
	var kinds []connectors.CallKind
	for _, ev := range e.callEvents() {
		if ev.Method == MethodEdit {
			kinds = append(kinds, ev.Kind)
		}
	}
	if !slices.Equal(kinds, []connectors.CallKind{connectors.Create}) {
		t.Errorf("edit_contact kinds = %v, want [Create]", kinds)
	}
	if err := e.c.Update(ctx, id, map[string]string{"lastname": ""}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	stored, _ = e.emu.Fields(id)
	if stored["lastname"] != "" || stored["firstname"] != "Ann" {
		t.Errorf("after blanking lastname: %v", stored)
	}
	before := e.emu.Calls("*")
	if err := e.c.Update(ctx, id, nil); err != nil || e.emu.Calls("*") != before {
		t.Errorf("empty update: err %v, calls %d -> %d", err, before, e.emu.Calls("*"))
	}
	for _, bad := range []string{"key", "passkey", "crmid", "accesskey", ""} {
		if _, err := e.c.Create(ctx, map[string]string{bad: "x"}); !errors.Is(err, connectors.ErrRejected) {
			t.Errorf("Create with field %q = %v, want ErrRejected", bad, err)
		}
	}
	// A create is not repeated after a 500.
	e.emu.FailNext(MethodEdit, 1, emulator.Fault{Status: 500})
	before = e.emu.Calls(MethodEdit)
	if _, err := e.c.Create(ctx, person(3)); !errors.Is(err, connectors.ErrTemporary) {
		t.Errorf("Create after 500 = %v", err)
	}
	if n := e.emu.Calls(MethodEdit) - before; n != 1 {
		t.Errorf("create sent %d times, want 1", n)
	}
}

// Finding one change among many costs one list call (the query matches
// only the edited contact and the overlap window).
func TestIncrementalIsCheap(t *testing.T) {
	const total = 5000
	e := newEnv(t, envConfig{pageSize: 500})
	incrementalCost(t, e, total)
}

func incrementalCost(t testing.TB, e *env, total int) {
	t.Helper()
	for i := range total {
		e.emu.Table.Insert(person(i))
	}
	e.emu.Advance(time.Hour)
	e.emu.EditAsUser("7", map[string]string{"lastname": "marker"})
	var cursor string
	if err := e.c.Pull(context.Background(), connectors.PullOptions{}, func(_ context.Context, p connectors.Page) error {
		cursor = p.Cursor
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.emu.Advance(time.Hour)
	e.emu.EditAsUser("4321", map[string]string{"lastname": "changed"})
	e.emu.ResetCalls()
	var got []connectors.Record
	if err := e.c.Pull(context.Background(), connectors.PullOptions{Cursor: cursor}, func(_ context.Context, p connectors.Page) error {
		got = append(got, p.Records...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r, ok := byID(got)["4321"]; !ok || r.Fields["lastname"] != "changed" {
		t.Fatalf("changed record missing: %v", got)
	}
	if n := e.emu.Calls(MethodListFull); n > 2 {
		t.Errorf("incremental pull made %d list calls, want <= 2", n)
	}
}

func TestBadCursorPullsEverything(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.emu.Seed(person(1))
	for _, cur := range []string{"garbage", `{"next":-4}`, `{"from":"yesterday"}`} {
		recs, _ := pull(t, e.c, connectors.PullOptions{Cursor: cur})
		if len(recs) != 1 {
			t.Errorf("cursor %q: %d records", cur, len(recs))
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		opts Options
		want []string
	}{
		{*NewOptions(), nil},
		{Options{}, nil},
		{Options{TimeZone: "Europe/Lundon"}, []string{`time_zone: unknown time zone (got "Europe/Lundon")`}},
		{Options{Auth: "oauth", Lookback: "5x", AssignedUserID: "bob"}, []string{
			`auth: must be "params", "headers" or "login" (got "oauth")`,
			`lookback: not a duration like "5m" (got "5x")`,
			`assigned_user_id: must be a numeric user id (got "bob")`,
		}},
		{Options{Lookback: "0s"}, []string{`lookback: must be between 1s and 168h (got "0s")`}},
	}
	for _, tc := range cases {
		var got []string
		for _, err := range tc.opts.Validate() {
			got = append(got, err.Error())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Validate(%+v) = %q, want %q", tc.opts, got, tc.want)
		}
	}
	if _, ok := Type.NewOptions().(connectors.OptionsValidator); !ok {
		t.Error("options do not validate themselves")
	}
}

func TestUnauthorizedReplies(t *testing.T) {
	unauthorized := emulator.Fault{Status: 200, Body: `{"error":"Unauthorized"}`, ContentType: "application/json"}
	t.Run("keys: read is ErrAuth", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.emu.FailNext(MethodListFull, 1, unauthorized)
		err := e.c.Pull(context.Background(), connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil })
		if !errors.Is(err, connectors.ErrAuth) || e.emu.Calls("*") != 1 {
			t.Fatalf("err = %v after %d calls", err, e.emu.Calls("*"))
		}
	})
	t.Run("keys: edit is ErrRejected", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.emu.FailNext(MethodEdit, 1, unauthorized)
		if _, err := e.c.Create(context.Background(), person(1)); !errors.Is(err, connectors.ErrRejected) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("access key: one re-login", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: optsFor(AuthLogin)})
		id := e.emu.Seed(person(1))
		e.emu.FailNext(MethodGet, 1, unauthorized)
		if _, err := e.c.Get(context.Background(), id); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if n := e.emu.Calls(MethodLogin); n != 2 {
			t.Errorf("logins = %d, want 2", n)
		}
	})
	t.Run("access key: refused twice is ErrAuth", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: optsFor(AuthLogin)})
		id := e.emu.Seed(person(1))
		e.emu.FailNext(MethodGet, 3, unauthorized)
		_, err := e.c.Get(context.Background(), id)
		if !errors.Is(err, connectors.ErrAuth) {
			t.Fatalf("err = %v", err)
		}
		if n, g := e.emu.Calls(MethodLogin), e.emu.Calls(MethodGet); n != 2 || g != 2 {
			t.Errorf("logins = %d, gets = %d, want 2 and 2", n, g)
		}
	})
}

// The cursor never moves back, even when the newest record vanished.
func TestCursorDoesNotRegress(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.emu.Seed(person(1))
	e.emu.Advance(time.Minute)
	newest := e.emu.Seed(person(2))
	_, pages := pull(t, e.c, connectors.PullOptions{})
	e.emu.Delete(newest)
	_, pages2 := pull(t, e.c, connectors.PullOptions{Cursor: lastCursor(pages)})
	if lastCursor(pages2) != lastCursor(pages) {
		t.Errorf("cursor %q -> %q", lastCursor(pages), lastCursor(pages2))
	}
}

// Count asks get_contact_list_count for every contact, in every auth
// mode, and names the method when the reply is not a number.
func TestCount(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: optsFor(auth), pageSize: 2})
			for i := range 7 {
				e.emu.Seed(person(i))
			}
			e.emu.ResetCalls()
			n, err := e.c.Count(context.Background())
			if err != nil || n != 7 {
				t.Fatalf("Count = %d, %v; want 7", n, err)
			}
			if c := e.emu.Calls(MethodCount); c != 1 {
				t.Errorf("%d count calls, want 1", c)
			}
			e.emu.FailNext(MethodCount, 1, emulator.Fault{Status: 200, Body: "<html>maintenance</html>"})
			if _, err := e.c.Count(context.Background()); !errors.Is(err, connectors.ErrMalformed) || !strings.Contains(err.Error(), MethodCount) {
				t.Errorf("malformed count reply: %v", err)
			}
		})
	}
}

// A 429 or 503 with Retry-After: 2 makes the pacer wait 2 s (not its
// millisecond backoff) before the one repeat, which succeeds.
func TestRetryAfterHonoured(t *testing.T) {
	for _, status := range []int{429, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var mu sync.Mutex
			var waits []time.Duration
			sleep := func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
				return ctx.Err()
			}
			e := newEnv(t, envConfig{pageSize: 10, sleep: sleep})
			e.emu.Seed(person(1))
			e.emu.FailNext(MethodListFull, 1, emulator.Fault{Status: status, RetryAfter: "2"})
			recs, _ := pull(t, e.c, connectors.PullOptions{})
			if len(recs) != 1 {
				t.Fatalf("pulled %d records after HTTP %d, want 1", len(recs), status)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(waits) != 1 || waits[0] < 2*time.Second {
				t.Errorf("pacer waited %v, want one wait of at least 2s", waits)
			}
			if n := e.emu.Calls(MethodListFull); n != 2 {
				t.Errorf("%s called %d times, want 2", MethodListFull, n)
			}
		})
	}
}

// Writes side by side in login mode: a key another write renewed can
// expire before this write uses it. That costs this write a login of its
// own, not a failure: the one renewal per call is the call's own.
//
// Order: write 2 (crmid b) is held with key 1; key 1 expires; write 1
// (crmid a) is refused, logs in (key 2) and succeeds; key 2 expires;
// write 2 is let go, refused, finds key 2 already renewed by write 1,
// is refused again, logs in itself (key 3) and succeeds.
func TestRenewedKeyExpiredByThenIsNotAFailure(t *testing.T) {
	var emu *opencrmtest.Server
	held := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	edits := map[string]int{}
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			if strings.Contains(r.URL.Path, MethodEdit) {
				mu.Lock()
				edits[form.Get("crmid")]++
				k := edits[form.Get("crmid")]
				mu.Unlock()
				switch {
				case form.Get("crmid") == "2" && k == 1:
					close(held)
					<-release
				case form.Get("crmid") == "1" && k == 1:
					<-held
					emu.ExpireSessions()
				case form.Get("crmid") == "1" && k == 2:
					defer func() { emu.ExpireSessions(); close(release) }()
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, envConfig{opts: optsFor(AuthLogin), wrap: wrap})
	emu = e.emu
	a, b := e.emu.Seed(person(1)), e.emu.Seed(person(2))
	if a != "1" || b != "2" {
		t.Fatalf("seeded ids %s, %s", a, b)
	}
	if _, err := e.c.Get(context.Background(), a); err != nil { // logs in: key 1
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[1] = e.c.Update(context.Background(), b, map[string]string{"title": "B"}) })
	wg.Go(func() { errs[0] = e.c.Update(context.Background(), a, map[string]string{"title": "A"}) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i+1, err)
		}
	}
	if n := e.emu.Calls(MethodLogin); n != 3 {
		t.Errorf("%d logins, want 3 (the first, write 1's and write 2's own)", n)
	}
	for id, want := range map[string]string{a: "A", b: "B"} {
		if f, _ := e.emu.Fields(id); f["title"] != want {
			t.Errorf("record %s title %q, want %q", id, f["title"], want)
		}
	}
}
