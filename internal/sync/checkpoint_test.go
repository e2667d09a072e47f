package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

// A long run copies its write-ahead log into the database as it goes, not
// only when the log reaches SQLite's checkpoint size: here b's pull holds
// the run until a's pulled records are in the database file itself.
func TestLogCheckpointedDuringTheRun(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	for i := range 20 {
		h.insert("a", map[string]string{"given_name": fmt.Sprint("P", i), "email": fmt.Sprintf("p%d@example.com", i)})
	}
	release := make(chan struct{})
	b := &fakeConn{mem: h.conns["b"]}
	b.pull = func(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return b.mem.Pull(ctx, opts, fn)
	}
	h.wrap["b"] = b
	h.build()
	h.eng.checkpointEvery = 5 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		rep, err := h.eng.Run(context.Background(), RunOptions{Out: &bytes.Buffer{}})
		if err == nil && rep.ExitCode() != 0 {
			err = fmt.Errorf("exit code %d: %+v", rep.ExitCode(), rep)
		}
		done <- err
	}()
	defer func() {
		close(release)
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if got := len(h.canonicalRows("b")); got != 20 {
			t.Errorf("b holds %d contacts after the run, want 20", got)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(h.store.Path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("p19@example.com")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a's pulled records did not reach the database file while the run was still pulling b")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
