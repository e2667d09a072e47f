package opencrm

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/connectors/opencrm/opencrmtest"
	"github.com/syncd/syncd/internal/redact"
)

const (
	testKey     = "k-3f9a1c42"
	testPasskey = "pk-SECRET-77e1d0"
)

var _ contract.Emulator = (*opencrmtest.Server)(nil)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one emulator on loopback and a connector talking to it.
type env struct {
	// secrets are the credentials the connector holds; assertNoSecrets
	// looks for them and for every access key issued.
	secrets []string
	emu     *opencrmtest.Server
	srv     *httptest.Server
	c       *Client
	logs    *syncBuffer
	red     *redact.Redactor
	mu      sync.Mutex
	events  []connectors.CallEvent
}

type envConfig struct {
	emu      opencrmtest.Config
	opts     *Options
	pageSize int
	passkey  string // credentials the connector uses (default testPasskey)
	wrap     func(http.Handler) http.Handler
	// sleep, when set, replaces the pacer's waits (backoff, Retry-After).
	sleep func(ctx context.Context, d time.Duration) error
}

func newEnv(t testing.TB, ec envConfig) *env {
	t.Helper()
	if ec.emu.Key == "" {
		ec.emu.Key, ec.emu.Passkey = testKey, testPasskey
	}
	if ec.passkey == "" {
		ec.passkey = testPasskey
	}
	e := &env{emu: opencrmtest.New(ec.emu), logs: &syncBuffer{}, secrets: []string{testKey, testPasskey}}
	if ec.passkey != testPasskey {
		e.secrets = append(e.secrets, ec.passkey)
	}
	var h http.Handler = e.emu
	if ec.wrap != nil {
		h = ec.wrap(h)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	// The redactor starts empty: the connector itself must register the
	// secrets it holds. The log handler does not redact, so a secret the
	// connector logs would show.
	e.red = redact.New()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pacer := connectors.NewPacer(connectors.PacerConfig{
		Name:       "crm",
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
		Sleep:      ec.sleep,
		Observe: func(ev connectors.CallEvent) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
			if ev.Err != nil {
				logger.Info("call failed", "method", ev.Method, "err", ev.Err)
			}
		},
	})
	c, err := New(connectors.Settings{
		Name:        "crm",
		BaseURL:     e.srv.URL + "/api/rest",
		Credentials: map[string]string{"key": testKey, "passkey": ec.passkey},
		PageSize:    ec.pageSize,
		Options:     ec.opts,
		Pacer:       pacer,
		HTTP:        connectors.NewHTTPClient(10*time.Second, e.red),
		Logger:      logger,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.c = c
	// Whatever the test did, nothing it left on record may hold a secret.
	t.Cleanup(func() { e.assertNoSecrets(t) })
	return e
}

func (e *env) callEvents() []connectors.CallEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]connectors.CallEvent(nil), e.events...)
}

// assertNoSecrets checks the access log, the connector's log, the errors
// of every call and errs. newEnv runs it when the test ends; tests call it
// too to check the errors they got.
func (e *env) assertNoSecrets(t testing.TB, errs ...error) {
	t.Helper()
	secrets := append(slices.Clone(e.secrets), e.emu.AccessKeys()...)
	for _, s := range secrets {
		for _, line := range e.emu.Requests() {
			if strings.Contains(line, s) {
				t.Errorf("request line %q holds a secret", line)
			}
		}
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("log holds a secret:\n%s", e.logs.String())
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("error %q holds a secret", err)
			}
		}
		for _, ev := range e.callEvents() {
			if ev.Err != nil && strings.Contains(ev.Err.Error(), s) {
				t.Errorf("call error %q holds a secret", ev.Err)
			}
		}
	}
	for _, line := range e.emu.Requests() {
		if strings.Contains(line, "?") {
			t.Errorf("request line %q has a query string; parameters belong in the body", line)
		}
	}
}

// pull runs Pull and returns the records, the pages and the final cursor.
func pull(t *testing.T, c *Client, opts connectors.PullOptions) ([]connectors.Record, []connectors.Page) {
	t.Helper()
	var recs []connectors.Record
	var pages []connectors.Page
	err := c.Pull(context.Background(), opts, func(_ context.Context, p connectors.Page) error {
		if len(pages) > 0 && pages[len(pages)-1].Done {
			return errors.New("page after Done")
		}
		pages = append(pages, p)
		recs = append(recs, p.Records...)
		return nil
	})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if len(pages) == 0 || !pages[len(pages)-1].Done {
		t.Fatal("Pull ended without a Done page")
	}
	return recs, pages
}

func lastCursor(pages []connectors.Page) string { return pages[len(pages)-1].Cursor }

func byID(recs []connectors.Record) map[string]connectors.Record {
	m := make(map[string]connectors.Record, len(recs))
	for _, r := range recs {
		m[r.ID] = r
	}
	return m
}

func person(i int) map[string]string {
	return map[string]string{
		"firstname": "Given" + itoa(i),
		"lastname":  "Family" + itoa(i),
		"email":     "person" + itoa(i) + "@example.com",
	}
}

func itoa(i int) string { return formatLimit(i) }
