package state

import (
	"context"
	"testing"
	"time"
)

// A panic inside Update leaves nothing behind: the write is rolled back
// and the next transaction gets the writer at once.
func TestUpdateRollsBackOnPanic(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		_ = s.Update(ctx, func(w *WriteTx) error {
			if _, err := w.CreateEntity(Values{"email": "ann@example.com"}, Origin{}, time.Now()); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	next, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int64
	if err := s.Update(next, func(w *WriteTx) (err error) { n, err = w.CountLiveEntities(); return err }); err != nil {
		t.Fatalf("transaction after the panic: %v", err)
	}
	if n != 0 {
		t.Errorf("%d contacts after a rolled-back write, want 0", n)
	}
}
