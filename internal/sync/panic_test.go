package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/state"
)

// syncBuffer is a bytes.Buffer safe for the engine's goroutines.
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

// A panic in one connector's pull or write becomes that connector's
// error, logged with its stack: the other connectors sync, the run
// finishes and reports the failure (exit code 1), and the next run works.
func TestPanicInAConnectorFailsOnlyThatConnector(t *testing.T) {
	cases := []struct {
		name string
		wrap func(f *fakeConn)
		want string
	}{
		{name: "pull", want: "pull: panic: boom", wrap: func(f *fakeConn) {
			f.pull = func(context.Context, connectors.PullOptions, connectors.PageFunc) error { panic("boom") }
		}},
		{name: "pull after a stored page", want: "pull: panic: boom", wrap: func(f *fakeConn) {
			f.pull = func(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
				return f.mem.Pull(ctx, opts, func(ctx context.Context, p connectors.Page) error {
					if err := fn(ctx, p); err != nil {
						return err
					}
					panic("boom")
				})
			}
		}},
		{name: "create", want: "push create: panic: boom", wrap: func(f *fakeConn) {
			f.create = func(context.Context, map[string]string) (string, error) { panic("boom") }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []string{"a", "b", "c"})
			var logs syncBuffer
			h.logger = slog.New(slog.NewJSONHandler(&logs, nil))
			f := &fakeConn{mem: h.conns["b"]}
			tc.wrap(f)
			h.wrap["b"] = f
			h.build()
			for i := range 3 {
				h.insert("a", map[string]string{"given_name": "P", "email": fmt.Sprintf("p%d@x.org", i)})
			}
			h.insert("b", map[string]string{"given_name": "P", "email": "p0@x.org"})
			rep := h.sync()
			b := rep.Connectors[1]
			if b.Err == nil || !errors.Is(b.Err, errPanic) || !strings.Contains(b.Err.Error(), tc.want) {
				t.Fatalf("b error = %v, want %q", b.Err, tc.want)
			}
			if rep.ExitCode() != 1 {
				t.Errorf("exit %d, want 1", rep.ExitCode())
			}
			if n := h.conns["c"].Table.Len(); n != 3 {
				t.Errorf("c holds %d, want 3", n)
			}
			st := h.status()
			if r := st.Runs[0]; r.Status != state.RunFailed || !strings.Contains(runError(r, "b"), "panic") {
				t.Errorf("journal: status %q, b error %q", r.Status, runError(r, "b"))
			}
			if l := logs.String(); !strings.Contains(l, `"msg":"panic recovered"`) || !strings.Contains(l, "goroutine") || !strings.Contains(l, `"connector":"b"`) {
				t.Errorf("log lacks the panic with its stack:\n%s", l)
			}
			// The store is free and the next run, with b mended, converges.
			h.wrap["b"] = h.conns["b"]
			h.build()
			if rep := h.sync(); rep.ExitCode() != 0 || h.conns["b"].Table.Len() != 3 {
				t.Errorf("next run: exit %d, b holds %d", rep.ExitCode(), h.conns["b"].Table.Len())
			}
		})
	}
}

func runError(r state.Run, connector string) string {
	for _, c := range r.Connectors {
		if c.Connector == connector {
			return c.Error
		}
	}
	return ""
}

// A panic outside any connector's part (here in the progress callback
// during reconciliation, while the pushes run beside it) ends the run
// with an error, and the run is journalled as failed rather than left
// running.
func TestPanicOutsideAConnectorFailsTheRun(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	h.insert("a", ann())
	h.eng.progress = func(ev ProgressEvent) {
		if ev.Phase == "reconcile" {
			panic("boom")
		}
	}
	rep, err := h.eng.Run(context.Background(), RunOptions{})
	if err == nil || !errors.Is(err, errPanic) || rep == nil {
		t.Fatalf("run: %v (report %+v), want a panic error", err, rep)
	}
	if r := h.status().Runs[0]; r.Status != state.RunFailed || !strings.Contains(r.Error, "panic: boom") {
		t.Errorf("journal: status %q error %q", r.Status, r.Error)
	}
	h.eng.progress = nil
	if rep := h.sync(); rep.ExitCode() != 0 || h.conns["b"].Table.Len() != 1 {
		t.Errorf("next run: exit %d, b holds %d", rep.ExitCode(), h.conns["b"].Table.Len())
	}
}

// Work spread over goroutines (mapping a page, writing the payloads of
// creates) re-raises a panic in the goroutine that waits for it, where
// the run's recovery turns it into an error; the process does not crash.
func TestSpreadWorkReraisesPanics(t *testing.T) {
	recovered := func(f func()) (v any) {
		defer func() { v = recover() }()
		f()
		return nil
	}
	var done atomic.Int64
	v := recovered(func() {
		spread(1000, func(i int) {
			if i == 500 {
				panic("boom")
			}
			done.Add(1)
		})()
	})
	if v != "boom" {
		t.Errorf("spread: recovered %v, want boom", v)
	}
	// Every goroutine has stopped by the time the panic is re-raised.
	if n := done.Load(); n >= 1000 {
		t.Errorf("spread: %d items done", n)
	} else if time.Sleep(10 * time.Millisecond); done.Load() != n {
		t.Errorf("spread: items still being done after the panic was re-raised")
	}
}
