package co3

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

// sleepRecorder stands in for the pacer's clock: it records every wait
// and returns at once.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// A 429 or 503 with Retry-After: 2 makes the pacer wait 2 s (not its
// millisecond backoff) before the one repeat, which succeeds.
func TestRetryAfterHonoured(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		for _, status := range []int{429, 503} {
			t.Run(fmt.Sprintf("%s/%d", f, status), func(t *testing.T) {
				t.Parallel()
				clock := &sleepRecorder{}
				e := newEnv(t, envOptions{format: f, pageSize: 5, sleep: clock.sleep})
				for i := range 7 {
					e.emu.Seed(map[string]string{"contact_firstname": fmt.Sprintf("P%d", i)})
				}
				e.emu.FailNext(co3test.MethodGetContactList, 1, emulator.Fault{Status: status, RetryAfter: "2"})
				records := 0
				err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
					records += len(p.Records)
					return nil
				})
				if err != nil || records != 7 {
					t.Fatalf("Pull after HTTP %d: err = %v, %d records; want 7 records", status, err, records)
				}
				waits := clock.all()
				if len(waits) != 1 || waits[0] < 2*time.Second {
					t.Errorf("pacer waited %v, want one wait of at least 2s", waits)
				}
				if n := e.emu.Calls(co3test.MethodGetContactList); n != 3 {
					t.Errorf("getContactList called %d times, want 3 (two pages, one repeat)", n)
				}
			})
		}
	}
}
