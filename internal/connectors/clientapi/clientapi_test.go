package clientapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/clientapi"
	"github.com/syncd/syncd/internal/connectors/clientapi/clientapitest"
	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/redact"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

type env struct {
	srv  *clientapitest.Server
	conn *clientapi.Connector
	logs *bytes.Buffer
}

type setup struct {
	key        string // overrides the right key
	baseURL    string // overrides the emulator's URL
	cfg        clientapitest.Config
	redactLogs bool
	wrap       func(http.Handler) http.Handler
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	if s.cfg.Clock == nil {
		s.cfg.Clock = &emulator.Clock{}
		s.cfg.Clock.Set(t0)
	}
	srv := clientapitest.New(s.cfg)
	var h http.Handler = srv
	if s.wrap != nil {
		h = s.wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	key := srv.Config().APIKey
	if s.key != "" {
		key = s.key
	}
	base := hs.URL + "/clients/index.php"
	if s.baseURL != "" {
		base = s.baseURL
	}
	logs := &bytes.Buffer{}
	var handler slog.Handler = slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})
	if s.redactLogs {
		handler = redact.New(key).Handler(handler)
	}
	logger := slog.New(handler)
	pacer := connectors.NewPacer(connectors.PacerConfig{Name: "ca", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Observe: func(ev connectors.CallEvent) {
		if ev.Err != nil {
			logger.Warn("call failed", "method", ev.Method, "attempt", ev.Attempt, "err", ev.Err)
		}
	}})
	c, err := clientapi.New(connectors.Settings{
		Name:        "ca",
		BaseURL:     base,
		Credentials: map[string]string{"apikey": key},
		Pacer:       pacer,
		HTTP:        connectors.NewHTTPClient(5*time.Second, nil),
		Logger:      logger,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{srv: srv, conn: c, logs: logs}
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

func TestContract(t *testing.T) {
	contract.Run(t, contract.Harness{
		New: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			e := newEnv(t, setup{})
			return e.conn, e.srv
		},
		NewBadCredentials: func(t *testing.T) (connectors.Connector, contract.Emulator) {
			e := newEnv(t, setup{key: "ck_live_wrong000"})
			return e.conn, e.srv
		},
		PageSize:    1,
		GivenField:  "firstname",
		FamilyField: "lastname",
		EmailField:  "email",
		ListMethod:  clientapitest.MethodGetDetails,
		ReadOnly:    true,
		MaxRecords:  1,
	})
}

func TestTypeDeclaresPullOnlyAndExclusion(t *testing.T) {
	ty := clientapi.Type
	if ty.Name != "clientapi" || !ty.PullOnly || !ty.NeedsBaseURL || len(ty.Credentials) != 1 || ty.Credentials[0] != "apikey" {
		t.Errorf("Type = %+v", ty)
	}
	if len(ty.ExcludedFields) != 1 || ty.ExcludedFields[0] != "lastlogin" {
		t.Errorf("ExcludedFields = %v", ty.ExcludedFields)
	}
	e := newEnv(t, setup{})
	if _, ok := any(e.conn).(connectors.Writer); ok {
		t.Error("a pull-only connector implements Writer")
	}
}

func pullOne(t *testing.T, c connectors.Connector) connectors.Record {
	t.Helper()
	recs, pages, _ := contract.PullAll(t, c, connectors.PullOptions{})
	if len(recs) != 1 || pages != 1 {
		t.Fatalf("pull: %d records in %d pages, want 1 in 1", len(recs), pages)
	}
	return recs[0]
}

func TestSecondPullAfterLoginDiffersOnlyInLastlogin(t *testing.T) {
	e := newEnv(t, setup{})
	first := pullOne(t, e.conn)
	e.srv.Advance(90 * time.Minute)
	e.srv.Login()
	second := pullOne(t, e.conn)
	if first.ID != second.ID || first.ID != e.srv.ID() {
		t.Fatalf("ids %s, %s", first.ID, second.ID)
	}
	var diff []string
	for k := range first.Fields {
		if first.Fields[k] != second.Fields[k] {
			diff = append(diff, k)
		}
	}
	for k := range second.Fields {
		if _, ok := first.Fields[k]; !ok {
			diff = append(diff, k)
		}
	}
	if len(diff) != 1 || diff[0] != "lastlogin" {
		t.Fatalf("fields that changed: %v, want only lastlogin", diff)
	}
	if want := t0.Add(90 * time.Minute).Format(clientapitest.DateLayout); second.Fields["lastlogin"] != want {
		t.Errorf("lastlogin = %q, want %q", second.Fields["lastlogin"], want)
	}
	if !second.Modified.IsZero() {
		t.Errorf("Modified = %v; the API has no modified time", second.Modified)
	}
}

func TestEditAsUserShows(t *testing.T) {
	e := newEnv(t, setup{})
	e.srv.EditAsUser(e.srv.ID(), map[string]string{"city": "York"})
	if r := pullOne(t, e.conn); r.Fields["city"] != "York" || r.Fields["firstname"] != "Alex" {
		t.Errorf("fields = %v", r.Fields)
	}
	r, err := e.conn.Get(context.Background(), e.srv.ID())
	if err != nil || r.Fields["city"] != "York" {
		t.Errorf("Get = %v, %v", r, err)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name  string
		s     setup
		prep  func(*clientapitest.Server)
		want  error // nil: retried and succeeds
		text  string
		calls int
	}{
		{"wrong key", setup{key: "ck_wrong_key_1"}, nil, connectors.ErrAuth, `refused the key: "Invalid API Key"`, 1},
		{"wrong key 403", setup{key: "ck_wrong_key_1", cfg: clientapitest.Config{ErrorStatus: 403}}, nil, connectors.ErrAuth, "HTTP 403", 1},
		{"wrong key 401", setup{key: "ck_wrong_key_1", cfg: clientapitest.Config{ErrorStatus: 401}}, nil, connectors.ErrAuth, "HTTP 401", 1},
		{"disabled", setup{}, func(s *clientapitest.Server) { s.SetDisabled(true) }, connectors.ErrAuth, "disabled", 1},
		{"account closed", setup{}, func(s *clientapitest.Server) { s.Delete(s.ID()) }, connectors.ErrAuth, "Invalid API Key", 1},
		{"html", setup{}, func(s *clientapitest.Server) { s.FailNext(clientapitest.MethodGetDetails, 1, clientapitest.Malformed) }, connectors.ErrMalformed, `Content-Type "text/html; charset=utf-8", want application/json`, 1},
		{"json as text/plain", setup{}, func(s *clientapitest.Server) {
			s.FailNext(clientapitest.MethodGetDetails, 1, emulator.Fault{Status: 200, Body: `{"status":"success","data":{"id":"1"}}`})
		}, connectors.ErrMalformed, "want application/json", 1},
		{"status error injected", setup{}, func(s *clientapitest.Server) {
			s.FailNext(clientapitest.MethodGetDetails, 1, clientapitest.StatusError("Module is not active"))
		}, connectors.ErrAuth, "Module is not active", 1},
		{"odd status", setup{}, func(s *clientapitest.Server) {
			s.FailNext(clientapitest.MethodGetDetails, 1, emulator.Fault{Status: 200, ContentType: "application/json", Body: `{"status":"pending"}`})
		}, connectors.ErrMalformed, "status", 1},
		{"no id", setup{}, func(s *clientapitest.Server) {
			s.FailNext(clientapitest.MethodGetDetails, 1, emulator.Fault{Status: 200, ContentType: "application/json", Body: `{"status":"success","data":{"firstname":"A"}}`})
		}, connectors.ErrMalformed, "no id", 1},
		{"500 retried", setup{}, func(s *clientapitest.Server) {
			s.FailNext(clientapitest.MethodGetDetails, 2, emulator.Fault{Status: 500})
		}, nil, "", 3},
		{"429 retried", setup{}, func(s *clientapitest.Server) {
			s.FailNext(clientapitest.MethodGetDetails, 1, emulator.Fault{Status: 429})
		}, nil, "", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.s)
			if tc.prep != nil {
				tc.prep(e.srv)
			}
			err := e.conn.Pull(context.Background(), connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil })
			if n := e.srv.Calls(clientapitest.MethodGetDetails); n != tc.calls {
				t.Errorf("%d calls, want %d", n, tc.calls)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "clientapi: client/getdetails: ") {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestRequestShape(t *testing.T) {
	var got url.Values
	var ct, method, rawQuery string
	e := newEnv(t, setup{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got, _ = url.ParseQuery(string(body))
			ct, method, rawQuery = r.Header.Get("Content-Type"), r.Method, r.URL.RawQuery
			r.Body = io.NopCloser(bytes.NewReader(body))
			h.ServeHTTP(w, r)
		})
	}})
	pullOne(t, e.conn)
	want := url.Values{"m": {"clientapi"}, "apikey": {e.srv.Config().APIKey}, "apimodule": {"client"}, "apifunction": {"getdetails"}}
	if method != http.MethodPost || ct != "application/x-www-form-urlencoded" || rawQuery != "" || !maps.EqualFunc(got, want, func(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("%s %q ?%s body %v", method, ct, rawQuery, got)
	}
}

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/index.php"
	ln.Close()
	const wrongKey = "ck_wrong_but_secret_42"
	for _, redactLogs := range []bool{false, true} {
		t.Run(fmt.Sprintf("redactHandler=%v", redactLogs), func(t *testing.T) {
			cases := []struct {
				name string
				s    setup
				prep func(*clientapitest.Server)
			}{
				{"connection refused", setup{baseURL: refused}, nil},
				{"wrong key", setup{key: wrongKey}, nil},
				{"error echoing the key", setup{}, func(s *clientapitest.Server) {
					s.FailNext("*", 2, clientapitest.StatusError("key "+s.Config().APIKey+" is disabled"))
				}},
				{"500 echoing the key", setup{}, func(s *clientapitest.Server) {
					s.FailNext("*", 100, emulator.Fault{Status: 500, Body: "apikey=" + s.Config().APIKey + " " + s.Config().APIKey})
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.s.redactLogs = redactLogs
					e := newEnv(t, tc.s)
					if tc.prep != nil {
						tc.prep(e.srv)
					}
					secrets := []string{e.srv.Config().APIKey, wrongKey}
					err := e.conn.Pull(context.Background(), connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil })
					if err == nil {
						t.Fatal("want an error")
					}
					_, gerr := e.conn.Get(context.Background(), "1")
					for _, err := range []error{err, gerr} {
						slog.New(slog.NewTextHandler(e.logs, nil)).Error("pull failed", "err", err)
						for _, s := range secrets {
							if strings.Contains(err.Error(), s) {
								t.Errorf("error contains a secret: %v", err)
							}
						}
					}
					if tc.name == "connection refused" && !errors.Is(err, connectors.ErrNotSent) {
						t.Errorf("err = %v, want ErrNotSent", err)
					}
					for _, s := range secrets {
						if strings.Contains(e.logs.String(), s) {
							t.Errorf("log contains a secret: %s", e.logs.String())
						}
					}
				})
			}
		})
	}
}

func TestNewChecks(t *testing.T) {
	if _, err := clientapi.New(connectors.Settings{BaseURL: "https://billing.example.com/index.php"}); err == nil || !strings.Contains(err.Error(), "apikey") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := clientapi.New(connectors.Settings{BaseURL: "http://billing.example.com/index.php", Credentials: map[string]string{"apikey": "kkkk"}}); err == nil {
		t.Error("plain http to a remote host accepted")
	}
}
