package carddav_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/carddav"
	"github.com/syncd/syncd/internal/connectors/carddav/radicaletest"
	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/redact"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type conf struct {
	baseURL, user, password string
	opts                    *carddav.Options
	pageSize                int
}

// newConn builds a connector whose logger sees every call event, errors
// included, as the engine's would.
func newConn(t testing.TB, c conf) (*carddav.Connector, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	red := redact.New()
	logger := slog.New(red.Handler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	pacer := connectors.NewPacer(connectors.PacerConfig{Name: "dav", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Observe: func(ev connectors.CallEvent) {
			logger.Info("call", "method", ev.Method, "attempt", ev.Attempt, "err", ev.Err)
		}})
	hc := connectors.NewHTTPClient(10*time.Second, red)
	if c.opts == nil {
		c.opts = &carddav.Options{Version: "3.0"}
	}
	conn, err := carddav.New(connectors.Settings{
		Name:        "dav",
		BaseURL:     c.baseURL,
		Credentials: map[string]string{"username": c.user, "password": c.password},
		PageSize:    c.pageSize,
		Options:     c.opts,
		Pacer:       pacer,
		HTTP:        hc,
		Logger:      logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	return conn, logs
}

func TestContract(t *testing.T) {
	srv := radicaletest.Start(t)
	contract.Run(t, contract.Harness{
		New: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			book := srv.NewBook(t)
			conn, _ := newConn(t, conf{baseURL: book.URL(), user: srv.User, password: srv.Password, pageSize: 2})
			return conn, book
		},
		NewBadCredentials: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			book := srv.NewBook(t)
			conn, _ := newConn(t, conf{baseURL: book.URL(), user: srv.User, password: "wrong", pageSize: 2})
			return conn, book
		},
		PageSize:    2,
		GivenField:  "N.given",
		FamilyField: "N.family",
		EmailField:  "EMAIL",
		ListMethod:  "REPORT",
		Incremental: true,
	})
}

func pull(t *testing.T, c connectors.Connector, cursor string) ([]connectors.Record, string) {
	t.Helper()
	recs, _, cur := contract.PullAll(t, c, connectors.PullOptions{Cursor: cursor})
	return recs, cur
}

// Discovery from the server root, sync-collection pulls, deletions as
// Deleted records, and a no-op pull that costs one request.
func TestDiscoveryAndSync(t *testing.T) {
	srv := radicaletest.Start(t)
	book := srv.NewBook(t)
	conn, logs := newConn(t, conf{baseURL: book.Proxy.URL + "/", user: srv.User, password: srv.Password, pageSize: 10})
	a := book.Seed(map[string]string{"N.given": "Ann", "EMAIL": "ann@example.com"})
	b := book.Seed(map[string]string{"N.given": "Bob", "EMAIL": "bob@example.com"})
	recs, cur := pull(t, conn, "")
	if len(recs) != 2 || !strings.HasPrefix(cur, "sync:") {
		t.Fatalf("first pull: %d records, cursor %q", len(recs), cur)
	}
	book.Proxy.ResetCalls()
	recs, cur = pull(t, conn, cur)
	if len(recs) != 0 || book.Calls("*") != 1 || book.Calls("REPORT") != 1 {
		t.Fatalf("no-op pull: %d records, calls %v", len(recs), book.Proxy.CallCounts())
	}
	book.EditAsUser(a, map[string]string{"N.family": "Smith"})
	if err := book.Delete(b); err != nil {
		t.Fatal(err)
	}
	recs, _ = pull(t, conn, cur)
	slices.SortFunc(recs, func(x, y connectors.Record) int { return strings.Compare(x.ID, y.ID) })
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s deleted=%v family=%s", r.ID, r.Deleted, r.Fields["N.family"]))
	}
	want := []string{a + " deleted=false family=Smith", b + " deleted=true family="}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("after edit and delete: %v, want %v", got, want)
	}
	if strings.Contains(logs.String(), srv.Password) {
		t.Fatal("password in the logs")
	}
}

// A contact changed by someone else between read and write is never
// overwritten: the update fails with ErrChangedConcurrently (temporary).
func TestUpdateConflict(t *testing.T) {
	srv := radicaletest.Start(t)
	book := srv.NewBook(t)
	id := book.Seed(map[string]string{"N.given": "Ann", "EMAIL": "ann@example.com"})
	var once sync.Once
	// Another client edits the card right after our GET.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			once.Do(func() { book.EditAsUser(id, map[string]string{"N.family": "TheirChange"}) })
		}
		proxyTo(t, book.Proxy.URL, w, r)
	}))
	t.Cleanup(hs.Close)
	conn, _ := newConn(t, conf{baseURL: hs.URL + book.Path, user: srv.User, password: srv.Password})
	err := conn.Update(context.Background(), id, map[string]string{"N.family": "OurChange"})
	if !errors.Is(err, carddav.ErrChangedConcurrently) || !errors.Is(err, connectors.ErrTemporary) {
		t.Fatalf("update after a concurrent change: %v", err)
	}
	if f, _ := book.Fields(id); f["N.family"] != "TheirChange" {
		t.Fatalf("concurrent change overwritten: %v", f)
	}
	if n := book.Calls("PUT"); n != 1 {
		t.Errorf("%d PUTs; a 412 must not be repeated in the same run", n)
	}
	// The next attempt (after a pull) goes through.
	if err := conn.Update(context.Background(), id, map[string]string{"EMAIL": "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	if f, _ := book.Fields(id); f["N.family"] != "TheirChange" || f["EMAIL"] != "new@example.com" {
		t.Fatalf("after retry: %v", f)
	}
}

// proxyTo forwards one request (a tiny reverse proxy for wrapping).
func proxyTo(t *testing.T, base string, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u, _ := url.Parse(base + r.URL.RequestURI())
	req, _ := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("proxy: %v", err)
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// A server without sync-collection is listed with PROPFIND and ETags; in
// one process, unchanged objects are not fetched again.
func TestETagFallback(t *testing.T) {
	srv := radicaletest.Start(t)
	book := srv.NewBook(t)
	var mu sync.Mutex
	calls := map[string]int{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		kind := r.Method
		if r.Method == "REPORT" && bytes.Contains(body, []byte("sync-collection")) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<?xml version="1.0"?><d:error xmlns:d="DAV:"><d:supported-report/></d:error>`)
			return
		}
		if r.Method == "REPORT" {
			kind = "multiget"
		}
		mu.Lock()
		calls[kind]++
		mu.Unlock()
		proxyTo(t, book.Proxy.URL, w, r)
	}))
	t.Cleanup(hs.Close)
	conn, _ := newConn(t, conf{baseURL: hs.URL + book.Path, user: srv.User, password: srv.Password})
	for i := range 3 {
		book.Seed(map[string]string{"N.given": fmt.Sprint("P", i)})
	}
	recs, cur := pull(t, conn, "")
	if len(recs) != 3 || cur != "etag" {
		t.Fatalf("first pull: %d records, cursor %q", len(recs), cur)
	}
	mu.Lock()
	clear(calls)
	mu.Unlock()
	recs, _ = pull(t, conn, cur)
	full, _, _ := contract.PullAll(t, conn, connectors.PullOptions{Full: true})
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 0 || len(full) != 3 || calls["multiget"] != 0 || calls["PROPFIND"] != 2 {
		t.Fatalf("no-op pulls: %d and %d records, calls %v", len(recs), len(full), calls)
	}
}

// Create and Update keep other clients' properties and the password never
// shows in errors or logs.
func TestWritesKeepUnknownProperties(t *testing.T) {
	srv := radicaletest.Start(t)
	book := srv.NewBook(t)
	raw := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x1\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\nCATEGORIES:friends,work\r\nX-CUSTOM;X-P=\"a:b\":keep me\\; please\r\nEND:VCARD\r\n"
	if err := book.Put("x1.vcf", []byte(raw)); err != nil {
		t.Fatal(err)
	}
	conn, logs := newConn(t, conf{baseURL: book.URL(), user: srv.User, password: srv.Password})
	ctx := context.Background()
	if err := conn.Update(ctx, "x1.vcf", map[string]string{"TEL.cell": "+44 7700 900001"}); err != nil {
		t.Fatal(err)
	}
	got := string(book.Raw("x1.vcf"))
	for _, want := range []string{"CATEGORIES:friends,work\r\n", "X-CUSTOM;X-P=\"a:b\":keep me\\; please\r\n", "TEL;TYPE=cell:+44 7700 900001\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("stored card lacks %q:\n%s", want, got)
		}
	}
	id, err := conn.Create(ctx, map[string]string{"N.given": "New", "EMAIL": "new@example.com"})
	if err != nil || !strings.HasSuffix(id, ".vcf") {
		t.Fatalf("Create = %q, %v", id, err)
	}
	if err := conn.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := conn.Delete(ctx, id); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	bad, badLogs := newConn(t, conf{baseURL: book.URL(), user: srv.User, password: "wrong-" + srv.Password})
	_, err = bad.Get(ctx, "x1.vcf")
	if !errors.Is(err, connectors.ErrAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	for _, s := range []string{logs.String(), badLogs.String(), err.Error()} {
		if strings.Contains(s, srv.Password) {
			t.Fatalf("password leaked: %s", s)
		}
	}
}

func BenchmarkPullRadicale(b *testing.B) {
	srv := radicaletest.Start(b)
	book := srv.NewBook(b)
	const n = 1000
	for i := range n {
		book.Seed(map[string]string{"N.given": fmt.Sprint("G", i), "N.family": "F", "EMAIL": fmt.Sprintf("p%d@example.com", i)})
	}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			conn, _ := newConn(b, conf{baseURL: book.URL(), user: srv.User, password: srv.Password})
			count := 0
			if err := conn.Pull(context.Background(), connectors.PullOptions{}, func(ctx context.Context, p connectors.Page) error { count += len(p.Records); return nil }); err != nil || count != n {
				b.Fatalf("%d records, %v", count, err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "contacts/s")
	})
}
