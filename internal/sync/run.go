package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/state"
)

// stopGrace bounds the work in hand after cancellation: the page or push
// being handled finishes and commits within it.
const stopGrace = 8 * time.Second

// run is the state of one Run.
type run struct {
	e    *Engine
	id   int64
	dry  bool
	full bool
	out  io.Writer
	// storeCtx is never cancelled: store work in hand always commits.
	storeCtx context.Context
	// dryTx holds every write of a dry run; it is rolled back at the end.
	dryTx *state.WriteTx
	txMu  sync.Mutex
	// ck copies the write-ahead log into the database during the run.
	ck *checkpointer

	mu   sync.Mutex
	reps map[string]*ConnectorReport
	// pulled is set for connectors whose pull finished in this run: only
	// they receive creates (their existing records are known).
	pulled map[string]bool
	// stopped holds connectors that failed in this run.
	stopped          map[string]bool
	deletionsBlocked string
	interrupted      bool
	// beside tells each drain what reconciliation planned for its
	// connector.
	beside map[string]*feed
	// outboxID is the last outbox id reconciliation handed out.
	outboxID int64
	// anyParked, anyOpenConflict and anyOutbox spare per-record queries
	// when the store holds none of these (as in a first sync).
	anyParked, anyOpenConflict, anyOutbox bool
	// keys holds the identity keys stored by a run that began with none
	// (nil otherwise): linking looks up only the keys it may hold.
	keys *keyFilter
}

// update runs fn in a write transaction (the shared one in a dry run).
func (r *run) update(fn func(w *state.WriteTx) error) error {
	if r.dryTx != nil {
		r.txMu.Lock()
		defer r.txMu.Unlock()
		return fn(r.dryTx)
	}
	return r.e.store.Update(r.storeCtx, fn)
}

func (r *run) rep(name string) *ConnectorReport { return r.reps[name] }

// count adjusts a connector's report under the lock.
func (r *run) count(name string, fn func(c *ConnectorReport)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.reps[name]; c != nil {
		fn(c)
	}
}

func (r *run) stop(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped[name] = true
	if c := r.reps[name]; c != nil && c.Err == nil {
		c.Err = err
	}
}

func (r *run) isStopped(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped[name]
}

func (r *run) setInterrupted() {
	r.mu.Lock()
	r.interrupted = true
	r.mu.Unlock()
}

// Run runs one sync: pull every connector, link, apply deletions,
// reconcile, push. Cancelling ctx stops taking new work: the page or push
// in hand finishes and commits, and the report says Interrupted (with a
// nil error). The error is for failures of the run itself (the store);
// connector failures are in the report.
func (e *Engine) Run(ctx context.Context, ro RunOptions) (*Report, error) {
	start := time.Now()
	storeCtx := context.WithoutCancel(ctx)
	if err := e.store.InterruptStaleRuns(storeCtx); err != nil {
		return nil, err
	}
	id, err := e.store.StartRun(storeCtx, ro.DryRun, ro.Full)
	if err != nil {
		return nil, err
	}
	r := &run{e: e, id: id, dry: ro.DryRun, full: ro.Full, out: ro.Out, storeCtx: storeCtx,
		reps: map[string]*ConnectorReport{}, pulled: map[string]bool{}, stopped: map[string]bool{}}
	if r.out == nil {
		r.out = io.Discard
	}
	before := map[string]connectors.StatsSnapshot{}
	for _, cn := range e.conns {
		r.reps[cn.name] = &ConnectorReport{Name: cn.name}
		if cn.pacer != nil {
			before[cn.name] = cn.pacer.Stats.Snapshot()
		}
	}
	if r.dry {
		r.dryTx, err = e.store.Begin(storeCtx)
		if err != nil {
			return nil, err
		}
		defer r.dryTx.Rollback()
	}
	r.ck = startCheckpointer(storeCtx, e.store, e.log, e.checkpointEvery)
	runErr := r.stepsRecovered(ctx)
	r.ck.close()
	rep := &Report{RunID: id, DryRun: r.dry, DeletionsBlocked: r.deletionsBlocked, Interrupted: r.interrupted}
	if runErr == nil {
		runErr = r.update(func(w *state.WriteTx) error {
			n, err := w.CountOpenConflicts()
			rep.Conflicts = int(n)
			if err == nil {
				n, err = w.CountOutbox(state.OutboxFailed)
				rep.Failed = int(n)
			}
			if err == nil {
				n, err = w.CountParked()
				rep.Parked = int(n)
			}
			return err
		})
	}
	if r.dryTx != nil {
		r.dryTx.Rollback()
	}
	rep.Duration = time.Since(start)
	rec := state.Run{ID: id, FinishedAt: e.now(), Conflicts: int64(rep.Conflicts), Failed: int64(rep.Failed), Parked: int64(rep.Parked), DeletionsBlocked: rep.DeletionsBlocked}
	for _, cn := range e.conns {
		c := r.reps[cn.name]
		if cn.pacer != nil {
			d := cn.pacer.Stats.Snapshot().Sub(before[cn.name])
			c.Reads, c.Writes, c.Retries = d.Reads, d.Writes, d.Retries
		}
		rc := state.RunConnector{Connector: c.Name, Pulled: int64(c.Pulled), Changed: int64(c.Changed), Matched: int64(c.Matched),
			Created: int64(c.Created), Updated: int64(c.Updated), Deleted: int64(c.Deleted), Unchanged: int64(c.Unchanged),
			Conflicts: int64(c.Conflicts), Failed: int64(c.Failed), Reads: c.Reads, Writes: c.Writes, Retries: c.Retries, Duration: c.Duration}
		if c.Err != nil {
			rc.Error = c.Err.Error()
		}
		rec.Connectors = append(rec.Connectors, rc)
		rep.Connectors = append(rep.Connectors, *c)
	}
	switch {
	case runErr != nil:
		rec.Status, rec.Error = state.RunFailed, runErr.Error()
	case r.dry:
		rec.Status = state.RunDry
	case rep.Interrupted:
		rec.Status = state.RunInterrupted
	case rep.ExitCode() == 1:
		rec.Status = state.RunFailed
	case rep.ExitCode() == 3:
		rec.Status = state.RunAttention
	default:
		rec.Status = state.RunOK
	}
	if err := e.store.FinishRun(storeCtx, rec); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return rep, fmt.Errorf("engine: run %d: %w", id, runErr)
	}
	return rep, nil
}

// steps runs the phases; it returns only store failures.
func (r *run) steps(ctx context.Context) error {
	e := r.e
	phase := time.Now()
	// Pull: connectors in parallel, their pages serialised by the store's
	// single writer, each page's new records linked as they are stored.
	// A dry run pulls one after the other in its one transaction and
	// links afterwards.
	var wg sync.WaitGroup
	errs := make([]error, len(e.conns))
	if !r.dry {
		if err := r.countPending(); err != nil {
			return err
		}
		if err := r.filterKeys(); err != nil {
			return err
		}
	}
	for i, cn := range e.conns {
		if r.dry {
			errs[i] = r.guard(cn, "pull", func() error { return r.pull(ctx, cn) })
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.guard(cn, "pull", func() error { return r.pull(ctx, cn) })
		}()
	}
	wg.Wait()
	lap := func(name string) {
		e.log.Debug("phase finished", "run", r.id, "phase", name, "duration", time.Since(phase))
		phase = time.Now()
	}
	lap("pull")
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if ctx.Err() != nil {
		r.setInterrupted()
		return nil
	}
	if err := r.link(ctx); err != nil || r.interrupted {
		return err
	}
	lap("link")
	if err := r.deletions(); err != nil {
		return err
	}
	if err := r.countOpen(); err != nil {
		return err
	}
	// When the outbox holds nothing from earlier runs, every item the
	// pushes send is planned by this run's reconciliation, and the pushes
	// start beside it (see startPushes and drain).
	var pushed func() error
	if !r.dry && !r.anyOutbox {
		var stop context.CancelFunc
		pushed, stop = r.startPushes(ctx)
		defer func() {
			if pushed != nil {
				stop()
				pushed()
			}
		}()
	}
	if err := r.reconcile(ctx); err != nil || r.interrupted {
		return err
	}
	lap("reconcile")
	defer lap("push")
	if r.dry {
		if r.deletionsBlocked != "" {
			fmt.Fprintf(r.out, "deletions blocked: %s\n", r.deletionsBlocked)
		}
		return nil
	}
	if pushed == nil {
		pushed, _ = r.startPushes(ctx)
	}
	err := pushed()
	pushed = nil
	if ctx.Err() != nil {
		r.setInterrupted()
	}
	return err
}

// startPushes starts every writable connector's drain. While the run's
// reconciliation goes on (r.beside is set), a drain sends what each
// committed chunk planned for its connector, a batch at a time; once
// reconciled is called, it sends what is left. wait calls reconciled,
// waits for the drains and returns their store errors; stop cancels the
// drains (the writes in hand finish).
func (r *run) startPushes(ctx context.Context) (wait func() error, stop context.CancelFunc) {
	e := r.e
	dctx, cancel := context.WithCancel(ctx)
	r.beside = map[string]*feed{}
	for _, cn := range e.conns {
		if cn.writable || cn.del != nil {
			r.beside[cn.name] = newFeed()
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(e.conns))
	for i, cn := range e.conns {
		f := r.beside[cn.name]
		if f == nil {
			continue
		}
		wg.Go(func() {
			errs[i] = r.guard(cn, "push", func() error { return r.drain(dctx, cn, f) })
		})
	}
	return func() error {
		r.reconciled()
		wg.Wait()
		cancel()
		return errors.Join(errs...)
	}, cancel
}

// reconciled tells the drains started beside reconciliation that it is
// over. The log of this run's merges is then copied into the database
// while the pushes wait on the CRMs and their files.
func (r *run) reconciled() {
	r.ck.kick()
	for _, f := range r.beside {
		f.finish()
	}
}

// errPanic marks errors made from a recovered panic.
var errPanic = errors.New("panic")

// panicError turns a recovered panic into an error and logs it with the
// stack of the goroutine that panicked.
func (r *run) panicError(connector, phase string, p any) error {
	err := fmt.Errorf("%s: %w: %v", phase, errPanic, p)
	r.e.log.Error("panic recovered", "run", r.id, "connector", connector, "phase", phase, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return err
}

// guard runs one connector's part of a phase. A panic in it (in the
// connector or in the engine on its behalf) becomes that connector's
// error, so the other connectors and the run go on; its open store
// transaction was rolled back on the way up.
func (r *run) guard(cn *conn, phase string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.stop(cn.name, r.panicError(cn.name, phase, p))
			err = nil
		}
	}()
	return fn()
}

// stepsRecovered runs the phases, turning a panic outside a connector's
// own part into the run's error, so that the run is still journalled as
// failed.
func (r *run) stepsRecovered(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.panicError("", "run", p)
		}
	}()
	return r.steps(ctx)
}

// isStoreErr tells store failures (which end the run) from connector
// failures (which end only that connector's part).
type storeError struct{ err error }

func (s storeError) Error() string { return s.err.Error() }
func (s storeError) Unwrap() error { return s.err }
