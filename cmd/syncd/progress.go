package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	engine "github.com/syncd/syncd/internal/sync"
)

// progressRedraw is how often the terminal block is redrawn at most.
const progressRedraw = 100 * time.Millisecond

// progressLogEvery is how often the log reports each active connector.
const progressLogEvery = 10 * time.Second

// phaseOrder ranks a run's phases: every phase starts when the ones
// before it have ended.
var phaseOrder = map[string]int{"pull": 0, "link": 1, "reconcile": 2, "push": 3}

// phaseRow is one connector's progress in its current phase. Link and
// reconcile work across connectors: their row has no connector.
type phaseRow struct {
	connector string
	phase     string
	pages     int
	records   int
	total     int
	// started is when the phase began: the run's start for a pull, the
	// last event of the phase before otherwise.
	started, last time.Time
	done          bool
	// fresh is set by an event and cleared when the row is logged.
	fresh bool
}

// rate is records per second from the phase's start to its last event.
func (r *phaseRow) rate() float64 {
	d := r.last.Sub(r.started)
	if d <= 0 || r.records == 0 {
		return 0
	}
	return float64(r.records) / d.Seconds()
}

// eta is the time left when the total is known, or -1.
func (r *phaseRow) eta(now time.Time) time.Duration {
	rate := r.rate()
	if r.done || r.total <= 0 || r.records >= r.total || rate == 0 {
		return -1
	}
	left := time.Duration(float64(r.total-r.records)/rate*float64(time.Second)) - now.Sub(r.last)
	return max(left, 0)
}

// progressState folds a run's progress events into one row per
// connector. Its users hold mu.
type progressState struct {
	mu    sync.Mutex
	now   func() time.Time
	begun time.Time
	rows  map[string]*phaseRow
	order []string
	// phaseLast is the time of the last event of each phase in this run.
	phaseLast map[string]time.Time
}

func newProgressState(now func() time.Time) *progressState {
	if now == nil {
		now = time.Now
	}
	return &progressState{now: now, rows: map[string]*phaseRow{}, phaseLast: map[string]time.Time{}}
}

// begin starts a run: rows of the run before are dropped.
func (s *progressState) begin() {
	s.begun = s.now()
	s.rows = map[string]*phaseRow{}
	s.order = nil
	s.phaseLast = map[string]time.Time{}
}

// end marks every row done (a phase that failed or was interrupted sends
// no last event).
func (s *progressState) end() {
	for _, r := range s.rows {
		r.done = true
	}
}

// event folds ev in and returns its row, and whether ev finished the
// row's phase.
func (s *progressState) event(ev engine.ProgressEvent) (*phaseRow, bool) {
	now := s.now()
	if s.begun.IsZero() {
		s.begun = now
	}
	rank := phaseOrder[ev.Phase]
	// Phases run one after the other: an event of a later phase means
	// every earlier one is over, also for connectors whose pull failed.
	for _, r := range s.rows {
		if phaseOrder[r.phase] < rank {
			r.done = true
		}
	}
	r := s.rows[ev.Connector]
	if r == nil {
		r = &phaseRow{connector: ev.Connector}
		s.rows[ev.Connector] = r
		s.order = append(s.order, ev.Connector)
	}
	if r.phase != ev.Phase || r.done {
		start := s.begun
		for p, t := range s.phaseLast {
			if phaseOrder[p] < rank && t.After(start) {
				start = t
			}
		}
		if r.phase == ev.Phase && r.last.After(start) {
			// The same phase again (a resumed pull is followed by a
			// second one).
			start = r.last
		}
		*r = phaseRow{connector: ev.Connector, phase: ev.Phase, started: start}
	}
	r.pages, r.records, r.total, r.last, r.fresh = ev.Pages, ev.Records, ev.Total, now, true
	r.done = ev.Done
	s.phaseLast[ev.Phase] = now
	return r, ev.Done
}

// label names a row's connector; link and reconcile span them all.
func label(r *phaseRow) string {
	if r.connector == "" {
		return "all"
	}
	return r.connector
}

// line is a row as one line of the terminal block.
func (r *phaseRow) line(now time.Time) string {
	phase := r.phase
	if r.done {
		phase += " done"
	}
	s := fmt.Sprintf("%-12s %-14s", label(r), phase)
	if r.pages > 0 {
		s += fmt.Sprintf(" %5d pages", r.pages)
	} else {
		s += "            "
	}
	s += fmt.Sprintf(" %8d records", r.records)
	if rate := r.rate(); rate > 0 {
		s += fmt.Sprintf(" %7.0f/s", rate)
	}
	if r.total > 0 {
		s += fmt.Sprintf("  %3.0f%% of %d", min(100, 100*float64(r.records)/float64(r.total)), r.total)
		if eta := r.eta(now); eta >= time.Second {
			s += "  ETA " + eta.Round(time.Second).String()
		} else if eta >= 0 {
			s += "  ETA <1s"
		}
	}
	return s
}

// progressTerm shows a live block on a terminal, one line per connector,
// redrawn in place at most every progressRedraw. Log lines written
// through it appear above the block instead of tearing it.
type progressTerm struct {
	*progressState
	w io.Writer
	// drawn is how many lines of the block are on screen above the cursor.
	drawn int
	// live is set between start and finish: only then is there a block.
	live  bool
	dirty bool
	stop  context.CancelFunc
	done  chan struct{}
}

func newProgressTerm(w io.Writer, now func() time.Time) *progressTerm {
	return &progressTerm{progressState: newProgressState(now), w: w}
}

// IsTerminal tells the logger that its lines end on a terminal.
func (t *progressTerm) IsTerminal() bool { return true }

// Event receives the engine's progress events.
func (t *progressTerm) Event(ev engine.ProgressEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.event(ev)
	t.dirty = true
}

// Write writes log lines above the block.
func (t *progressTerm) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b bytes.Buffer
	t.erase(&b)
	b.Write(p)
	t.render(&b)
	if _, err := t.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// start begins a run and redraws until finish is called.
func (t *progressTerm) start() {
	t.mu.Lock()
	t.begin()
	t.live = true
	t.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	t.stop, t.done = cancel, make(chan struct{})
	go func() {
		defer close(t.done)
		tick := time.NewTicker(progressRedraw)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.redraw(false)
			}
		}
	}()
}

// finish draws the block a last time, every row done, and leaves the
// cursor below it.
func (t *progressTerm) finish() {
	if t.stop != nil {
		t.stop()
		<-t.done
	}
	t.mu.Lock()
	t.end()
	t.mu.Unlock()
	t.redraw(true)
	t.mu.Lock()
	t.drawn, t.live = 0, false
	t.mu.Unlock()
}

func (t *progressTerm) redraw(force bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dirty && !force {
		return
	}
	var b bytes.Buffer
	t.erase(&b)
	t.render(&b)
	_, _ = t.w.Write(b.Bytes())
	t.dirty = false
}

// erase moves the cursor to the block's first line and clears the screen
// below it.
func (t *progressTerm) erase(b *bytes.Buffer) {
	if t.drawn > 0 {
		fmt.Fprintf(b, "\r\033[%dA\033[J", t.drawn)
	}
	t.drawn = 0
}

// render writes the block at the cursor. Line wrapping is off while it
// draws, so that a line wider than the terminal is cut instead of
// shifting the block.
func (t *progressTerm) render(b *bytes.Buffer) {
	if !t.live || len(t.order) == 0 {
		return
	}
	now := t.now()
	b.WriteString("\033[?7l")
	for _, c := range t.order {
		b.WriteString(t.rows[c].line(now))
		b.WriteString("\033[K\n")
	}
	b.WriteString("\033[?7h")
	t.drawn = len(t.order)
}

// progressLog reports progress through the logger: on every tick a line
// for each connector whose phase is under way, and a line when a
// connector's pull or push ends. Event arrival alone never logs a
// progress line, so a fast connector cannot flood the journal.
type progressLog struct {
	*progressState
	log *slog.Logger
}

func newProgressLog(log *slog.Logger, now func() time.Time) *progressLog {
	return &progressLog{progressState: newProgressState(now), log: log}
}

// Event receives the engine's progress events.
func (p *progressLog) Event(ev engine.ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, finished := p.event(ev)
	if !finished {
		return
	}
	r.fresh = false
	attrs := append(p.attrs(r), "duration", r.last.Sub(r.started).Round(time.Millisecond))
	p.log.Info("sync phase finished", attrs...)
}

// setLogger sets where the lines go (the logger is built after the sink
// is handed to the engine).
func (p *progressLog) setLogger(log *slog.Logger) {
	p.mu.Lock()
	p.log = log
	p.mu.Unlock()
}

// Begin and End bound a run.
func (p *progressLog) Begin() { p.mu.Lock(); p.begin(); p.mu.Unlock() }
func (p *progressLog) End()   { p.mu.Lock(); p.end(); p.mu.Unlock() }

// report logs one line per connector whose phase is under way.
func (p *progressLog) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, c := range p.order {
		r := p.rows[c]
		if r.done {
			continue
		}
		attrs := p.attrs(r)
		if eta := r.eta(now); eta >= 0 {
			attrs = append(attrs, "eta", eta.Round(time.Second))
		}
		if !r.fresh {
			// Nothing since the last line: say for how long.
			attrs = append(attrs, "idle", now.Sub(r.last).Round(time.Second))
		}
		r.fresh = false
		p.log.Info("sync progress", attrs...)
	}
}

func (p *progressLog) attrs(r *phaseRow) []any {
	var a []any
	if r.connector != "" {
		a = append(a, "connector", r.connector)
	}
	a = append(a, "phase", r.phase)
	if r.pages > 0 {
		a = append(a, "pages", r.pages)
	}
	a = append(a, "records", r.records)
	if r.total >= 0 {
		a = append(a, "total", r.total)
	}
	return append(a, "per_second", float64(int(r.rate()*10))/10)
}

// run reports on every tick until ctx ends.
func (p *progressLog) run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			p.report()
		}
	}
}

// startProgressLog reports every progressLogEvery until the returned
// stop is called.
func startProgressLog(ctx context.Context, p *progressLog) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	tick := time.NewTicker(progressLogEvery)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx, tick.C)
	}()
	return func() {
		cancel()
		tick.Stop()
		<-done
	}
}

// runOnceProgress is the progress display of a --run-once on stderr: a
// live block on a terminal, log lines otherwise. Log lines go to logOut,
// so that they do not tear the block. start is called once the logger
// exists, just before the run; the finish it returns ends the display.
func runOnceProgress(stderr io.Writer) (sink func(engine.ProgressEvent), logOut io.Writer, start func(ctx context.Context, log *slog.Logger) (finish func())) {
	if isTerminal(stderr) {
		t := newProgressTerm(stderr, nil)
		return t.Event, t, func(context.Context, *slog.Logger) func() {
			t.start()
			return t.finish
		}
	}
	p := newProgressLog(slog.New(slog.DiscardHandler), nil)
	return p.Event, stderr, func(ctx context.Context, log *slog.Logger) func() {
		p.setLogger(log.With("component", "progress"))
		p.Begin()
		stop := startProgressLog(ctx, p)
		return func() {
			stop()
			p.End()
		}
	}
}
