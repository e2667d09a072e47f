package co3

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/redact"
)

const (
	testAPIKey   = "k3y-0f-the-acc0unt"
	testUser     = "jana"
	testPassword = "Pa55-wörd-s3cret"
)

var epoch = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wire records what went over the wire.
type wire struct {
	mu       sync.Mutex
	requests []string
	replies  []string
	types    []string
}

func (w *wire) all() (reqs, reps, types []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.requests...), append([]string(nil), w.replies...), append([]string(nil), w.types...)
}

// env is a connector talking to a fresh emulator over loopback.
type env struct {
	emu   *co3test.Server
	conn  *Connector
	clock *emulator.Clock
	logs  *syncBuffer
	wire  *wire
	url   string
}

type envOptions struct {
	format   Format
	pageSize int
	password string
	apiKey   string
	record   bool
	owner    string
	// sleep, when set, replaces the pacer's waits (backoff, Retry-After).
	sleep func(ctx context.Context, d time.Duration) error
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.format == "" {
		o.format = JSON
	}
	if o.password == "" {
		o.password = testPassword
	}
	if o.apiKey == "" {
		o.apiKey = testAPIKey
	}
	clock := &emulator.Clock{}
	clock.Set(epoch)
	emu := co3test.New(co3test.Config{APIKey: testAPIKey, Username: testUser, Password: testPassword, PageSize: o.pageSize, Clock: clock})
	e := &env{emu: emu, clock: clock, logs: &syncBuffer{}, wire: &wire{}}
	var h http.Handler = emu
	if o.record {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			// Serve into a buffer and record before answering, so that
			// the exchange is on record when the client sees the reply.
			rec := httptest.NewRecorder()
			emu.ServeHTTP(rec, r)
			e.wire.mu.Lock()
			e.wire.requests = append(e.wire.requests, string(b))
			e.wire.replies = append(e.wire.replies, rec.Body.String())
			e.wire.types = append(e.wire.types, r.Header.Get("Content-Type"))
			e.wire.mu.Unlock()
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL + "/api"
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn, err := New(connectors.Settings{
		Name:        "co3-test",
		BaseURL:     e.url,
		Credentials: map[string]string{"api_key": o.apiKey, "username": testUser, "password": o.password},
		Options:     &Options{Format: string(o.format), Owner: o.owner},
		Pacer: connectors.NewPacer(connectors.PacerConfig{
			Name: "co3-test", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Sleep: o.sleep,
		}),
		HTTP:   connectors.NewHTTPClient(30*time.Second, redact.New()),
		Logger: logger,
		Now:    clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.conn = conn
	return e
}
