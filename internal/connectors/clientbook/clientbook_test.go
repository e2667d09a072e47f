package clientbook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/clientbook"
	"github.com/syncd/syncd/internal/connectors/clientbook/clientbooktest"
	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/redact"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// env is one emulator with a connector talking to it.
type env struct {
	srv  *clientbooktest.Server
	http *httptest.Server
	conn *clientbook.Connector
	logs *bytes.Buffer
}

type setup struct {
	pageSize int
	opts     *clientbook.Options
	creds    map[string]string // overrides
	cfg      clientbooktest.Config
	baseURL  string // overrides the emulator's URL
	// redactLogs puts the redact handler in front of the log buffer.
	redactLogs bool
	wrap       func(http.Handler) http.Handler
}

func newEnv(t testing.TB, s setup) *env {
	t.Helper()
	if s.cfg.Clock == nil {
		s.cfg.Clock = &emulator.Clock{}
		s.cfg.Clock.Set(t0)
	}
	srv := clientbooktest.New(s.cfg)
	var h http.Handler = srv
	if s.wrap != nil {
		h = s.wrap(srv)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	cfg := srv.Config()
	creds := map[string]string{"app_id": cfg.AppID, "app_key": cfg.AppKey, "token": cfg.Token, "secret": cfg.Secret}
	for k, v := range s.creds {
		creds[k] = v
	}
	base := hs.URL
	if s.baseURL != "" {
		base = s.baseURL
	}
	logs := &bytes.Buffer{}
	var handler slog.Handler = slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})
	// The HTTP client has no redactor: whatever the connector reports
	// must be clean by itself.
	if s.redactLogs {
		handler = redact.New(creds["app_key"], creds["token"], creds["secret"]).Handler(handler)
	}
	logger := slog.New(handler)
	pacer := connectors.NewPacer(connectors.PacerConfig{Name: "cb", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Observe: func(ev connectors.CallEvent) {
		if ev.Err != nil {
			logger.Warn("call failed", "method", ev.Method, "attempt", ev.Attempt, "err", ev.Err)
		}
	}})
	opts := s.opts
	if opts == nil {
		opts = clientbook.NewOptions()
	}
	c, err := clientbook.New(connectors.Settings{
		Name:        "cb",
		BaseURL:     base,
		Credentials: creds,
		PageSize:    s.pageSize,
		Options:     opts,
		Pacer:       pacer,
		HTTP:        connectors.NewHTTPClient(5*time.Second, nil),
		Logger:      logger,
		Now:         srv.Clock().Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{srv: srv, http: hs, conn: c, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func person(i int) map[string]string {
	return map[string]string{
		"client_first_name": fmt.Sprintf("Given%05d", i),
		"client_last_name":  fmt.Sprintf("Family%05d", i),
		"client_email":      fmt.Sprintf("p%05d@example.com", i),
	}
}

func TestContract(t *testing.T) {
	const pageSize = 7
	contract.Run(t, contract.Harness{
		New: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			e := newEnv(t, setup{pageSize: pageSize})
			return e.conn, e.srv
		},
		NewBadCredentials: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			e := newEnv(t, setup{pageSize: pageSize, creds: map[string]string{"token": "wrong-token"}})
			return e.conn, e.srv
		},
		PageSize:    pageSize,
		GivenField:  "client_first_name",
		FamilyField: "client_last_name",
		EmailField:  "client_email",
		ListMethod:  clientbooktest.MethodList,
		// The cursor is the newest update_date, inclusive, so clients
		// updated in that same second come back too (the engine drops them
		// by hash); the suite's strict check does not apply.
		Incremental: false,
	})
}

func pullAll(t *testing.T, c connectors.Connector, opts connectors.PullOptions) ([]connectors.Record, string) {
	t.Helper()
	recs, _, cur := contract.PullAll(t, c, opts)
	return recs, cur
}

func idsOf(recs []connectors.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

func TestIncrementalAfterThreeEditsAmongTenThousand(t *testing.T) {
	e := newEnv(t, setup{pageSize: 100})
	var ids []string
	for i := range 10000 {
		ids = append(ids, e.srv.Seed(person(i)))
	}
	e.srv.Advance(time.Hour)
	e.srv.EditAsUser(ids[17], map[string]string{"client_city": "Leeds"})
	e.srv.Advance(time.Minute)
	all, cur := pullAll(t, e.conn, connectors.PullOptions{})
	if len(all) != 10000 {
		t.Fatalf("first pull: %d records, want 10000", len(all))
	}

	e.srv.Advance(time.Hour)
	edited := []string{ids[5], ids[5000], ids[9999]}
	for _, id := range edited {
		e.srv.EditAsUser(id, map[string]string{"client_last_name": "Edited"})
	}
	e.srv.ResetCalls()
	recs, _ := pullAll(t, e.conn, connectors.PullOptions{Cursor: cur})
	if n := e.srv.Calls(clientbooktest.MethodList); n > 2 {
		t.Errorf("incremental pull made %d list calls, want <= 2", n)
	}
	got := idsOf(recs)
	for _, id := range edited {
		if !slices.Contains(got, id) {
			t.Errorf("edited client %s missing from incremental pull", id)
		}
	}
	// The three edits plus, within the lookback of the old cursor, the
	// one edited an hour before: nothing older.
	if len(recs) > 4 {
		t.Errorf("incremental pull returned %d records, want <= 4: %v", len(recs), got)
	}
	for _, r := range recs {
		if slices.Contains(edited, r.ID) && r.Fields["client_last_name"] != "Edited" {
			t.Errorf("client %s: last name %q, want Edited", r.ID, r.Fields["client_last_name"])
		}
	}
}

func TestSameSecondEditAtCursorNotMissed(t *testing.T) {
	for _, lookback := range []string{"5m", "0s"} {
		t.Run("lookback="+lookback, func(t *testing.T) {
			opts := clientbook.NewOptions()
			opts.Lookback = lookback
			e := newEnv(t, setup{pageSize: 10, opts: opts})
			var ids []string
			for i := range 30 {
				ids = append(ids, e.srv.Seed(person(i)))
			}
			e.srv.Advance(time.Hour)
			e.srv.EditAsUser(ids[3], map[string]string{"client_city": "York"})
			_, cur := pullAll(t, e.conn, connectors.PullOptions{})
			// Same wall-clock second as the cursor, after the pull read it.
			e.srv.Advance(300 * time.Millisecond)
			e.srv.EditAsUser(ids[20], map[string]string{"client_city": "Bath"})
			recs, _ := pullAll(t, e.conn, connectors.PullOptions{Cursor: cur})
			var found bool
			for _, r := range recs {
				if r.ID == ids[20] {
					found = r.Fields["client_city"] == "Bath"
				}
			}
			if !found {
				t.Fatalf("edit in the cursor's second missed; got %v", idsOf(recs))
			}
		})
	}
}

func TestAuthErrorsDistinctAndPermanent(t *testing.T) {
	cases := []struct {
		name    string
		creds   map[string]string
		disable bool
		want    error
		text    string
	}{
		{"507", map[string]string{"app_key": "wrong-app-key"}, false, clientbook.ErrInvalidApp, "invalid app_id/app_key"},
		{"508", map[string]string{"secret": "wrong-secret"}, false, clientbook.ErrInvalidToken, "invalid access token"},
		{"509", nil, true, clientbook.ErrAPIDisabled, "API disabled: enable it on the Integration page"},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, setup{creds: tc.creds})
			e.srv.Seed(person(1))
			e.srv.SetDisabled(tc.disable)
			err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(context.Context, connectors.Page) error { return nil })
			if !errors.Is(err, connectors.ErrAuth) || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, other := range cases {
				if other.want != tc.want && errors.Is(err, other.want) {
					t.Errorf("err %v also matches %v", err, other.want)
				}
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.text) || !strings.Contains(msg, "clientbook: clients/list") || !strings.Contains(msg, "HTTP "+tc.name) {
				t.Errorf("message %q lacks %q, the function or the status", msg, tc.text)
			}
			if seen[msg] {
				t.Errorf("message %q not distinct", msg)
			}
			seen[msg] = true
			if n := e.srv.Calls("*"); n != 1 {
				t.Errorf("%d calls; a permanent error must not be retried", n)
			}
			if got := connectors.Classify(err); got != "auth" {
				t.Errorf("class %q, want auth", got)
			}
		})
	}
}

func TestInjectedFaults(t *testing.T) {
	cases := []struct {
		name  string
		fault emulator.Fault
		want  error // nil: retried and then succeeds
	}{
		{"500 retried", emulator.Fault{Status: 500}, nil},
		{"429 retried", emulator.Fault{Status: 429}, nil},
		{"malformed", clientbooktest.Malformed, connectors.ErrMalformed},
		{"truncated JSON", emulator.Fault{Status: 200, ContentType: "application/json", Body: `{"data":[{"client_id":"1"`}, connectors.ErrMalformed},
		{"507", clientbooktest.AuthFault(507), clientbook.ErrInvalidApp},
		{"508", clientbooktest.AuthFault(508), clientbook.ErrInvalidToken},
		{"509", clientbooktest.AuthFault(509), clientbook.ErrAPIDisabled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, setup{})
			e.srv.Seed(person(1))
			e.srv.FailNext(clientbooktest.MethodList, 1, tc.fault)
			var n int
			err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
				n += len(p.Records)
				return nil
			})
			if tc.want == nil {
				if err != nil || n != 1 {
					t.Fatalf("err = %v, records = %d; want success after a retry", err, n)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// secretsOf are the configured credential values that must never show.
func secretsOf(e *env) []string {
	cfg := e.srv.Config()
	return []string{cfg.AppKey, cfg.Token, cfg.Secret}
}

func assertClean(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) || strings.Contains(text, url.QueryEscape(s)) {
			t.Errorf("%s contains a secret: %s", what, text)
		}
	}
}

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	// A base URL where nothing listens: a listener opened and closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()

	for _, redactLogs := range []bool{false, true} {
		t.Run(fmt.Sprintf("redactHandler=%v", redactLogs), func(t *testing.T) {
			cases := []struct {
				name string
				s    setup
				prep func(e *env)
			}{
				{"connection refused", setup{baseURL: refused}, nil},
				{"507", setup{creds: map[string]string{"app_key": "wrong-app-key-1"}}, nil},
				{"508", setup{creds: map[string]string{"token": "wrong-token-1"}}, nil},
				{"509", setup{}, func(e *env) { e.srv.SetDisabled(true) }},
				{"500 echoing the URL", setup{}, func(e *env) {
					cfg := e.srv.Config()
					e.srv.FailNext("*", 1000, emulator.Fault{Status: 500, Body: "boom at /api/v1/clients/list?app_key=" + cfg.AppKey + " token " + cfg.Token + " secret " + cfg.Secret})
				}},
				{"timeout", setup{wrap: func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						time.Sleep(300 * time.Millisecond)
						h.ServeHTTP(w, r)
					})
				}}, nil},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.s.redactLogs = redactLogs
					e := newEnv(t, tc.s)
					if tc.prep != nil {
						tc.prep(e)
					}
					secrets := secretsOf(e)
					for k, v := range tc.s.creds {
						if k != "app_id" {
							secrets = append(secrets, v)
						}
					}
					ctx := context.Background()
					if tc.name == "timeout" {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
						defer cancel()
					}
					errs := []error{
						e.conn.Pull(ctx, connectors.PullOptions{Full: true}, func(context.Context, connectors.Page) error { return nil }),
					}
					_, err := e.conn.Get(ctx, "1")
					errs = append(errs, err)
					_, err = e.conn.Create(ctx, person(1))
					errs = append(errs, err)
					errs = append(errs, e.conn.Update(ctx, "1", map[string]string{"client_city": "Ely"}))
					for _, err := range errs {
						if err == nil {
							t.Fatalf("want an error")
						}
						assertClean(t, "error", err.Error(), secrets)
						var ue *url.Error
						if errors.As(err, &ue) {
							assertClean(t, "wrapped *url.Error", ue.Error(), secrets)
						}
						slog.New(slog.NewTextHandler(e.logs, nil)).Error("pull failed", "err", err)
					}
					if tc.name == "connection refused" && !errors.Is(errs[0], connectors.ErrNotSent) {
						t.Errorf("connection refused: err = %v, want ErrNotSent", errs[0])
					}
					if e.logs.Len() == 0 {
						t.Fatal("nothing logged")
					}
					assertClean(t, "log", e.logs.String(), secrets)
				})
			}
		})
	}
}

func TestAPIRoots(t *testing.T) {
	for _, root := range []string{"/api/v1", "/apiv1", "apiv1/"} {
		t.Run(root, func(t *testing.T) {
			opts := clientbook.NewOptions()
			opts.APIRoot = root
			var paths []string
			var mu sync.Mutex
			e := newEnv(t, setup{opts: opts, wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					paths = append(paths, r.URL.Path)
					mu.Unlock()
					h.ServeHTTP(w, r)
				})
			}})
			id := e.srv.Seed(person(1))
			if _, err := e.conn.Get(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			want := "/" + strings.Trim(root, "/") + "/clients/view/id/" + id
			if !slices.Contains(paths, want) {
				t.Errorf("paths %v, want %s", paths, want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*clientbook.Options)
		want []string
	}{
		{"defaults", func(*clientbook.Options) {}, nil},
		{"alt root", func(o *clientbook.Options) { o.APIRoot = "/apiv1" }, nil},
		{"bad root", func(o *clientbook.Options) { o.APIRoot = "/v2" }, []string{`api_root: must be "/api/v1" or "/apiv1" (got "/v2")`}},
		{"bad zone", func(o *clientbook.Options) { o.TimeZone = "Mars/Olympus" }, []string{`time_zone: not a known IANA time zone like "Europe/London" (got "Mars/Olympus")`}},
		{"bad durations", func(o *clientbook.Options) { o.Lookback = "five"; o.FullScanEvery = "-1h" }, []string{
			`lookback: must be a duration like "5m" (got "five")`,
			`full_scan_every: must not be negative (got "-1h")`,
		}},
		{"never full", func(o *clientbook.Options) { o.FullScanEvery = "0" }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := clientbook.NewOptions()
			tc.edit(o)
			var got []string
			for _, err := range o.Validate() {
				got = append(got, err.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
	if o, ok := clientbook.Type.NewOptions().(*clientbook.Options); !ok || o.APIRoot != "/api/v1" || o.TimeZone != "UTC" || o.Lookback != "5m" || o.FullScanEvery != "24h" {
		t.Errorf("NewOptions() = %+v", o)
	}
}

func TestResumeMidPullWhileListingShifts(t *testing.T) {
	e := newEnv(t, setup{pageSize: 10})
	var ids []string
	for i := range 95 {
		ids = append(ids, e.srv.Seed(person(i)))
		e.srv.Advance(time.Second)
	}
	ctx := context.Background()
	stop := errors.New("killed")
	var got []string
	var resume string
	pages := 0
	err := e.conn.Pull(ctx, connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
		pages++
		for _, r := range p.Records {
			got = append(got, r.ID)
		}
		resume = p.Cursor
		if pages == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v", err)
	}
	// While the daemon is down: a user edits a client not yet pulled (it
	// moves to the top) and deletes two that were.
	e.srv.Advance(time.Minute)
	e.srv.EditAsUser(ids[10], map[string]string{"client_city": "Hull"})
	e.srv.Delete(got[0])
	e.srv.Delete(got[5])
	err = e.conn.Pull(ctx, connectors.PullOptions{Cursor: resume}, func(_ context.Context, p connectors.Page) error {
		for _, r := range p.Records {
			got = append(got, r.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, live := e.srv.Fields(id); live && !slices.Contains(got, id) && id != ids[10] {
			t.Errorf("client %s never pulled", id)
		}
	}
}

func TestFullPullWhileListingShifts(t *testing.T) {
	e := newEnv(t, setup{pageSize: 10})
	var ids []string
	for i := range 100 {
		ids = append(ids, e.srv.Seed(person(i)))
		e.srv.Advance(time.Second)
	}
	ctx := context.Background()
	seen := map[string]int{}
	pages := 0
	var cur string
	err := e.conn.Pull(ctx, connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
		pages++
		for _, r := range p.Records {
			seen[r.ID]++
		}
		cur = p.Cursor
		switch pages {
		case 2: // rows above vanish
			e.srv.Advance(time.Second)
			for _, r := range p.Records[:3] {
				e.srv.Delete(r.ID)
			}
		case 4: // rows below jump to the top
			e.srv.Advance(time.Second)
			e.srv.EditAsUser(ids[5], map[string]string{"client_city": "Ripon"})
			e.srv.EditAsUser(ids[6], map[string]string{"client_city": "Ripon"})
			e.srv.Seed(person(1000))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("client %s returned %d times", id, n)
		}
	}
	for i, id := range ids {
		if i == 5 || i == 6 {
			continue // edited mid-pull: the next pull has them
		}
		if _, live := e.srv.Fields(id); live && seen[id] == 0 {
			t.Errorf("client %s missed", id)
		}
	}
	recs, _ := pullAll(t, e.conn, connectors.PullOptions{Cursor: cur})
	got := idsOf(recs)
	for _, id := range []string{ids[5], ids[6]} {
		if !slices.Contains(got, id) {
			t.Errorf("client %s edited during the full pull missing from the next pull", id)
		}
	}
}

func TestListIDsWhileEditing(t *testing.T) {
	e := newEnv(t, setup{pageSize: 10})
	var ids []string
	for i := range 55 {
		ids = append(ids, e.srv.Seed(person(i)))
		e.srv.Advance(time.Second)
	}
	var got []string
	batches := 0
	err := e.conn.ListIDs(context.Background(), func(_ context.Context, batch []string) error {
		batches++
		got = append(got, batch...)
		if batches == 2 {
			e.srv.Advance(time.Second)
			e.srv.EditAsUser(ids[3], map[string]string{"client_city": "Wells"})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ListIDs = %d ids, want %d", len(got), len(want))
	}
}

func TestFullScanEvery(t *testing.T) {
	e := newEnv(t, setup{pageSize: 10})
	var ids []string
	for i := range 25 {
		ids = append(ids, e.srv.Seed(person(i)))
	}
	e.srv.Advance(time.Hour)
	e.srv.EditAsUser(ids[9], map[string]string{"client_city": "Cork"})
	_, cur := pullAll(t, e.conn, connectors.PullOptions{})
	e.srv.Advance(time.Hour)
	// Only the client at the cursor's second comes back.
	if recs, _ := pullAll(t, e.conn, connectors.PullOptions{Cursor: cur}); len(recs) != 1 {
		t.Errorf("incremental pull with no change: %d records, want 1", len(recs))
	}
	e.srv.Advance(24 * time.Hour)
	if recs, _ := pullAll(t, e.conn, connectors.PullOptions{Cursor: cur}); len(recs) != 25 {
		t.Errorf("pull a day after the last full one: %d records, want all 25", len(recs))
	}
}

func TestUpdateSendsOnlyGivenFields(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	e := newEnv(t, setup{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				body, _ := io.ReadAll(r.Body)
				f, _ := url.ParseQuery(string(body))
				mu.Lock()
				forms = append(forms, f)
				mu.Unlock()
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			h.ServeHTTP(w, r)
		})
	}})
	id := e.srv.Seed(person(7))
	ctx := context.Background()
	if err := e.conn.Update(ctx, id, map[string]string{"client_city": "Diss", "update_date": "2000-01-01 00:00:00"}); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Update(ctx, id, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if len(forms) != 1 {
		t.Fatalf("%d POSTs, want 1 (an empty update sends nothing)", len(forms))
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range forms[0] {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{"client_city", "client_id"}) {
		t.Errorf("edit sent %v, want only client_city and client_id", got)
	}
	f, _ := e.srv.Fields(id)
	if f["client_city"] != "Diss" || f["client_first_name"] != "Given00007" {
		t.Errorf("after update: %v", f)
	}
	if err := e.conn.Update(ctx, "424242", map[string]string{"client_city": "X"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("update of a missing client: %v, want ErrNotFound", err)
	}
	if err := e.conn.Update(ctx, id, map[string]string{"client_gender": "robot"}); !errors.Is(err, connectors.ErrRejected) {
		t.Errorf("invalid gender: %v, want ErrRejected", err)
	}
}

func TestTimeZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata")
	}
	opts := clientbook.NewOptions()
	opts.TimeZone = "America/New_York"
	e := newEnv(t, setup{opts: opts, cfg: clientbooktest.Config{Location: ny}})
	id := e.srv.Seed(person(1))
	r, err := e.conn.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Modified.Equal(t0) || r.Modified.Location() != time.UTC {
		t.Errorf("Modified = %v, want %v", r.Modified, t0)
	}
	if r.Fields["update_date"] != t0.In(ny).Format(clientbooktest.DateLayout) {
		t.Errorf("update_date = %q", r.Fields["update_date"])
	}
}

func TestNewRejectsMissingCredentials(t *testing.T) {
	_, err := clientbook.New(connectors.Settings{BaseURL: "https://crm.example.com", Credentials: map[string]string{"app_id": "a", "app_key": "k"}})
	if err == nil || !strings.Contains(err.Error(), "token, secret") {
		t.Fatalf("err = %v", err)
	}
	_, err = clientbook.New(connectors.Settings{BaseURL: "http://crm.example.com", Credentials: map[string]string{"app_id": "a", "app_key": "k", "token": "tttt", "secret": "ssss"}})
	if err == nil {
		t.Fatal("plain http to a non-loopback host accepted")
	}
}
