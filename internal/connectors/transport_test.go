package connectors

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/redact"
)

func TestCheckBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // "" = accepted
	}{
		{"https://x.opencrm.co.uk/api/rest", ""},
		{"http://127.0.0.1:8080/api", ""},
		{"http://localhost:8080", ""},
		{"http://[::1]:8080", ""},
		{"http://crm.example.com/api", "plain http is allowed only for loopback hosts"},
		{"http://10.0.0.5/api", "plain http is allowed only for loopback hosts"},
		{"ftp://x.example.com", "scheme must be https"},
		{"https://user:pw@x.example.com", "credentials in the URL are not allowed"},
		{"https://", "no host"},
	} {
		err := CheckBaseURL(tc.url)
		if tc.want == "" && err != nil {
			t.Errorf("%s: refused: %v", tc.url, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.url, err, tc.want)
		}
	}
}

// A server that only speaks TLS 1.1 is refused; certificates are always
// verified (an unknown CA fails without any option to turn that off).
func TestTLSMinimumAndVerification(t *testing.T) {
	old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	old.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	old.StartTLS()
	defer old.Close()
	c := NewHTTPClient(5*time.Second, redact.New())
	// Trust the test server's certificate so that only the version fails.
	c.Client.Transport.(*http.Transport).TLSClientConfig.RootCAs = old.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	req, _ := http.NewRequest("GET", old.URL, nil)
	if _, err := c.Do(context.Background(), req); err == nil {
		t.Fatal("TLS 1.1 server accepted")
	}

	modern := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer modern.Close()
	c2 := NewHTTPClient(5*time.Second, redact.New())
	req, _ = http.NewRequest("GET", modern.URL, nil)
	_, err := c2.Do(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified certificate accepted or unclear error: %v", err)
	}
}

// A refused connection is classified as not sent and its URL redacted.
func TestTransportErrorRedactedAndClassified(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := NewHTTPClient(2*time.Second, redact.New("topsecretvalue"))
	req, _ := http.NewRequest("GET", "http://"+addr+"/api?app_key=topsecretvalue&token=tok12345", nil)
	_, err := c.Do(context.Background(), req)
	if !errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want ErrNotSent", err)
	}
	if strings.Contains(err.Error(), "topsecretvalue") || strings.Contains(err.Error(), "tok12345") {
		t.Fatalf("secret in error: %v", err)
	}
}

func TestPacerHonoursRetryAfterAndNeverRepeatsACreateAfter5xx(t *testing.T) {
	var slept []time.Duration
	p := NewPacer(PacerConfig{Name: "t", Sleep: func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
	calls := 0
	err := p.Call(context.Background(), "list", Read, func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return &RetryAfterError{After: 2 * time.Second, Err: ErrRateLimited}
		}
		return nil
	})
	if err != nil || calls != 2 || len(slept) != 1 || slept[0] != 2*time.Second {
		t.Fatalf("err=%v calls=%d slept=%v, want one 2s wait then success", err, calls, slept)
	}

	calls = 0
	err = p.Call(context.Background(), "create", Create, func(ctx context.Context) error {
		calls++
		return ErrTemporary
	})
	if !errors.Is(err, ErrTemporary) || calls != 1 {
		t.Fatalf("create after 5xx: calls=%d err=%v, want exactly one attempt", calls, err)
	}

	calls = 0
	err = p.Call(context.Background(), "create", Create, func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return ErrNotSent
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("create after connection refused: calls=%d err=%v, want retried", calls, err)
	}

	calls = 0
	err = p.Call(context.Background(), "list", Read, func(ctx context.Context) error {
		calls++
		return ErrAuth
	})
	if !errors.Is(err, ErrAuth) || calls != 1 {
		t.Fatalf("auth error retried: calls=%d", calls)
	}
}

func TestPacerRetryBudgetAndBackoffCap(t *testing.T) {
	var slept []time.Duration
	p := NewPacer(PacerConfig{Name: "t", MaxAttempts: 5, MinBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
	var calls atomic.Int32
	err := p.Call(context.Background(), "list", Read, func(ctx context.Context) error { calls.Add(1); return ErrTemporary })
	if !errors.Is(err, ErrTemporary) || calls.Load() != 5 {
		t.Fatalf("calls = %d, want 5 attempts then the error", calls.Load())
	}
	for _, d := range slept {
		if d < 50*time.Millisecond || d > 300*time.Millisecond {
			t.Errorf("backoff %s outside [min/2, max]", d)
		}
	}
	if s := p.Stats.Snapshot(); s.Retries != 4 || s.Reads != 5 {
		t.Errorf("stats = %+v", s)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := ParseRetryAfter("3", now); !ok || d != 3*time.Second {
		t.Errorf("seconds: %v %v", d, ok)
	}
	if d, ok := ParseRetryAfter("Thu, 01 Jan 2026 00:00:10 GMT", now); !ok || d != 10*time.Second {
		t.Errorf("date: %v %v", d, ok)
	}
	if _, ok := ParseRetryAfter("soon", now); ok {
		t.Error("garbage accepted")
	}
}
