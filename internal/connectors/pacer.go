package connectors

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// CallKind tells reads from writes, for the run journal and the retry rule.
type CallKind int

const (
	Read CallKind = iota
	// Write is an idempotent write (an update): retried like a read.
	Write
	// Create is a non-idempotent write: retried only when the CRM surely
	// did not act on it (429/503, connection refused before sending).
	Create
)

// CallEvent is reported to the pacer's observer after every attempt.
type CallEvent struct {
	Connector string
	Method    string
	Kind      CallKind
	Attempt   int
	Err       error
	// Class is "" on success, otherwise one of "auth", "rate_limited",
	// "temporary", "session", "malformed", "rejected", "not_found", "other".
	Class    string
	Duration time.Duration
	// Waited is the time spent in the rate limiter before this attempt.
	Waited time.Duration
}

// Stats counts a connector's calls. Safe for concurrent use.
type Stats struct {
	Reads   atomic.Int64
	Writes  atomic.Int64
	Retries atomic.Int64
	Errors  atomic.Int64
	// WaitNanos is the total time spent waiting in the limiter and backoff.
	WaitNanos atomic.Int64
}

// StatsSnapshot is a plain copy of Stats.
type StatsSnapshot struct {
	Reads, Writes, Retries, Errors int64
	Wait                           time.Duration
}

// Snapshot returns the current counts.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Reads:   s.Reads.Load(),
		Writes:  s.Writes.Load(),
		Retries: s.Retries.Load(),
		Errors:  s.Errors.Load(),
		Wait:    time.Duration(s.WaitNanos.Load()),
	}
}

// Sub returns s minus o.
func (s StatsSnapshot) Sub(o StatsSnapshot) StatsSnapshot {
	return StatsSnapshot{
		Reads:   s.Reads - o.Reads,
		Writes:  s.Writes - o.Writes,
		Retries: s.Retries - o.Retries,
		Errors:  s.Errors - o.Errors,
		Wait:    s.Wait - o.Wait,
	}
}

// PacerConfig configures a Pacer.
type PacerConfig struct {
	// Name of the connector, for events.
	Name string
	// Rate in requests per second (<= 0: unlimited) and Burst.
	Rate  float64
	Burst int
	// MaxAttempts per call, including the first (default 6).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential backoff for
	// temporary errors (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps a Retry-After delay (default 5 minutes).
	MaxRetryAfter time.Duration
	// Sleep waits for d or until ctx is done; tests inject a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Observe, when set, is called after every attempt.
	Observe func(CallEvent)
}

// Pacer carries every remote call of one connector: it waits for the rate
// limiter, runs the call, and retries what the connector classified as
// retryable, with capped exponential backoff and jitter, honouring
// Retry-After. Connectors only classify errors (with the sentinels above).
type Pacer struct {
	cfg     PacerConfig
	limiter *rate.Limiter
	Stats   Stats

	mu  sync.Mutex
	rng *rand.Rand
}

// NewPacer returns a pacer for cfg.
func NewPacer(cfg PacerConfig) *Pacer {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 5 * time.Minute
	}
	if cfg.Sleep == nil {
		cfg.Sleep = SleepContext
	}
	lim := rate.NewLimiter(rate.Inf, 0)
	if cfg.Rate > 0 {
		burst := cfg.Burst
		if burst <= 0 {
			burst = 1
		}
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), burst)
	}
	return &Pacer{cfg: cfg, limiter: lim, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))}
}

// SleepContext sleeps for d or until ctx is done.
func SleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Call runs fn through the limiter and retries it as its error allows.
// method names the remote call for events and errors.
func (p *Pacer) Call(ctx context.Context, method string, kind CallKind, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		start := time.Now()
		if werr := p.limiter.Wait(ctx); werr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return werr
		}
		waited := time.Since(start)
		p.Stats.WaitNanos.Add(int64(waited))
		if kind == Read {
			p.Stats.Reads.Add(1)
		} else {
			p.Stats.Writes.Add(1)
		}
		callStart := time.Now()
		err = fn(ctx)
		ev := CallEvent{Connector: p.cfg.Name, Method: method, Kind: kind, Attempt: attempt, Err: err, Class: Classify(err), Duration: time.Since(callStart), Waited: waited}
		if p.cfg.Observe != nil {
			p.cfg.Observe(ev)
		}
		if err == nil {
			return nil
		}
		p.Stats.Errors.Add(1)
		delay, retry := p.retryDelay(err, kind, attempt)
		if !retry || attempt >= p.cfg.MaxAttempts || ctx.Err() != nil {
			return err
		}
		p.Stats.Retries.Add(1)
		p.Stats.WaitNanos.Add(int64(delay))
		if serr := p.cfg.Sleep(ctx, delay); serr != nil {
			return err
		}
	}
}

// retryDelay decides whether err is retried and after how long.
func (p *Pacer) retryDelay(err error, kind CallKind, attempt int) (time.Duration, bool) {
	var ra *RetryAfterError
	switch {
	case errors.As(err, &ra) && ra.After > 0:
		return min(ra.After, p.cfg.MaxRetryAfter), true
	case errors.Is(err, ErrRateLimited):
		return p.backoff(attempt), true
	case errors.Is(err, ErrNotSent):
		return p.backoff(attempt), true
	case errors.Is(err, ErrTemporary):
		if kind == Create {
			// The CRM may have created the record: never repeat blindly.
			return 0, false
		}
		return p.backoff(attempt), true
	}
	return 0, false
}

// backoff is capped exponential backoff with full jitter in [d/2, d].
func (p *Pacer) backoff(attempt int) time.Duration {
	d := p.cfg.MinBackoff << min(attempt-1, 20)
	if d > p.cfg.MaxBackoff || d <= 0 {
		d = p.cfg.MaxBackoff
	}
	p.mu.Lock()
	j := p.rng.Int64N(int64(d)/2 + 1)
	p.mu.Unlock()
	return d/2 + time.Duration(j)
}

// ErrNotSent marks a failure that happened before the request reached the
// server (connection refused, DNS): safe to retry even for a create.
var ErrNotSent = errors.New("request not sent")

// Classify names the class of err for metrics and logs.
func Classify(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrSessionExpired):
		return "session"
	case errors.Is(err, ErrTemporary), errors.Is(err, ErrNotSent):
		return "temporary"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}
