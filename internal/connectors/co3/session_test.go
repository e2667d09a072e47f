package co3

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
)

// TestSessionRenewedMidScan walks 20 pages and, after page 10, either
// moves the clock past the renewal point (the connector renews before
// asking) or expires the sessions server-side (the connector renews on
// session_expired and repeats the call). Either way the scan completes
// with exactly one extra authenticate.
func TestSessionRenewedMidScan(t *testing.T) {
	cases := []struct {
		name          string
		midScan       func(e *env)
		sessionErrors int
	}{
		{"clock-advance", func(e *env) { e.clock.Advance(4*time.Minute + 40*time.Second) }, 0},
		{"server-expiry", func(e *env) { e.emu.ExpireSessions() }, 1},
		{"unknown-session", func(e *env) {
			e.emu.FailNext(co3test.MethodGetContactList, 1, faultBody(`{"response":{"error":{"code":"invalid_session","message":"unknown session key"}}}`, JSON))
		}, 1},
	}
	for _, f := range []Format{JSON, XML} {
		for _, c := range cases {
			if c.name == "unknown-session" && f == XML {
				continue
			}
			t.Run(string(f)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, envOptions{format: f, pageSize: 5})
				for i := range 100 {
					e.emu.Seed(map[string]string{"contact_firstname": fmt.Sprintf("P%03d", i)})
				}
				pages, records := 0, 0
				err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
					pages++
					records += len(p.Records)
					if pages == 10 {
						c.midScan(e)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("Pull: %v", err)
				}
				if pages != 20 || records != 100 {
					t.Errorf("pages=%d records=%d, want 20 and 100", pages, records)
				}
				if n := e.emu.Calls(co3test.MethodAuthenticate); n != 2 {
					t.Errorf("authenticate called %d times, want 2 (one renewal)", n)
				}
				if n, want := e.emu.Calls(co3test.MethodGetContactList), 20+c.sessionErrors; n != want {
					t.Errorf("getContactList called %d times, want %d", n, want)
				}
			})
		}
	}
}

// A session refused twice in a row is an error, not a loop.
func TestSessionRenewedOnlyOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.emu.Seed(map[string]string{"contact_firstname": "A"})
	body := `{"response":{"error":{"code":"session_expired","message":"session expired"}}}`
	e.emu.FailNext(co3test.MethodGetContact, 5, faultBody(body, JSON))
	_, err := e.conn.Get(context.Background(), "1")
	if !errors.Is(err, connectors.ErrSessionExpired) {
		t.Fatalf("err = %v, want ErrSessionExpired", err)
	}
	if n := e.emu.Calls(co3test.MethodGetContact); n != 2 {
		t.Errorf("getContact called %d times, want 2", n)
	}
	if n := e.emu.Calls(co3test.MethodAuthenticate); n != 2 {
		t.Errorf("authenticate called %d times, want 2", n)
	}
}

// The session is opened lazily and reused while young.
func TestSessionReused(t *testing.T) {
	e := newEnv(t, envOptions{})
	if n := e.emu.Calls("*"); n != 0 {
		t.Fatalf("New made %d calls", n)
	}
	e.emu.Seed(map[string]string{"contact_firstname": "A"})
	for range 5 {
		if _, err := e.conn.Get(context.Background(), "1"); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(50 * time.Second)
	}
	if n := e.emu.Calls(co3test.MethodAuthenticate); n != 1 {
		t.Errorf("authenticate called %d times in 4m10s, want 1", n)
	}
	e.clock.Advance(30 * time.Second)
	if _, err := e.conn.Get(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	if n := e.emu.Calls(co3test.MethodAuthenticate); n != 2 {
		t.Errorf("authenticate called %d times after 4m40s, want 2", n)
	}
}
