package opencrm

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
)

// The connector names itself syncd/<version> on every call, in every auth
// mode, so that OpenCRM's web firewall (played by the emulator, which
// stops Go's default User-Agent) lets it through.
func TestUserAgentPassesFirewall(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth, func(t *testing.T) {
			var mu sync.Mutex
			agents := map[string]int{}
			wrap := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					agents[r.UserAgent()]++
					mu.Unlock()
					h.ServeHTTP(w, r)
				})
			}
			e := newEnv(t, envConfig{opts: optsFor(auth), pageSize: 2, wrap: wrap})
			for i := range 3 {
				e.emu.Seed(person(i))
			}
			ctx := context.Background()
			recs, _ := pull(t, e.c, connectors.PullOptions{})
			if len(recs) != 3 {
				t.Fatalf("pulled %d, want 3", len(recs))
			}
			id, err := e.c.Create(ctx, person(4))
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if _, err := e.c.Get(ctx, id); err != nil {
				t.Fatalf("Get: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			want := "syncd/" + connectors.Version
			if len(agents) != 1 || agents[want] != e.emu.Calls("*") {
				t.Errorf("User-Agents sent %v over %d calls, want only %q", agents, e.emu.Calls("*"), want)
			}
		})
	}
}

// Go's default User-Agent is stopped: the emulator's firewall is in the
// way of any client that does not name itself.
func TestDefaultGoAgentIsStopped(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.emu.Seed(person(1))
	e.c.http.UserAgent = "Go-http-client/1.1"
	err := e.c.Pull(context.Background(), connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "firewall") || strings.Contains(err.Error(), "credentials") {
		t.Fatalf("Pull with Go's User-Agent: err = %v, want the firewall's HTTP 403 named as such", err)
	}
	if !errors.Is(err, connectors.ErrAuth) {
		t.Errorf("a firewall block should stop the connector (ErrAuth): %v", err)
	}
	if n := e.emu.Calls("*"); n != 0 {
		t.Errorf("%d calls reached the API past the firewall", n)
	}
}
