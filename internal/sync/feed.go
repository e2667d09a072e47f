package engine

import "sync"

// feed tells a phase that runs beside the one before it (a push beside
// reconciliation) how much work the earlier phase has committed for it
// so far, and when the earlier phase is over. It has one reader.
type feed struct {
	mu    sync.Mutex
	total int
	done  bool
	wake  chan struct{}
}

func newFeed() *feed { return &feed{wake: make(chan struct{}, 1)} }

// add adds n items of committed work.
func (f *feed) add(n int) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	f.total += n
	f.mu.Unlock()
	f.signal()
}

// finish says the earlier phase is over.
func (f *feed) finish() {
	f.mu.Lock()
	f.done = true
	f.mu.Unlock()
	f.signal()
}

func (f *feed) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// state returns the items added so far and whether the earlier phase is
// over.
func (f *feed) state() (total int, done bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total, f.done
}

// wait returns the state once at least want items were added beyond
// seen, or the earlier phase is over.
func (f *feed) wait(seen, want int) (total int, done bool) {
	for {
		total, done = f.state()
		if done || total-seen >= want {
			return total, done
		}
		<-f.wake
	}
}
