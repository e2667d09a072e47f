package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/metrics"
	engine "github.com/syncd/syncd/internal/sync"
)

// daemon runs a cycle at start and then on the schedule until ctx is
// cancelled. A cancelled ctx lets the cycle in hand finish its page or
// push and commit; cron's Stop context is awaited before returning, so
// the store is closed only after the last job ended.
func (m *Main) daemon(ctx context.Context, fullFirst bool, watch *daemonWatch) error {
	sched, err := config.CronParser.Parse(m.Config.Schedule)
	if err != nil {
		return fmt.Errorf("schedule %q: %w", m.Config.Schedule, err)
	}
	if watch == nil {
		watch = newDaemonWatch(nil)
	}
	log := m.Logger
	watch.plog.setLogger(log.With("component", "progress"))
	clog := cronLogger{log: log.With("component", "cron")}
	c := cron.New(cron.WithParser(config.CronParser), cron.WithChain(cron.Recover(clog), cron.SkipIfStillRunning(clog)))
	var mu sync.Mutex
	full := fullFirst
	job := func() {
		if ctx.Err() != nil {
			return
		}
		mu.Lock()
		f := full
		full = false
		mu.Unlock()
		watch.live.cycle(true)
		watch.plog.Begin()
		notify("STATUS=running a sync")
		defer func() {
			watch.plog.End()
			watch.live.cycle(false)
			notify("STATUS=waiting for the schedule")
		}()
		rep, err := m.RunOnce(ctx, engine.RunOptions{Full: f})
		switch {
		case err != nil:
			log.Error("sync run failed", "err", err)
		case rep.Interrupted:
			log.Info("sync run interrupted; it resumes on the next start", "run", rep.RunID)
		default:
			logReport(log, rep)
		}
	}
	c.Schedule(sched, cron.FuncJob(job))
	notify("READY=1\nSTATUS=waiting for the schedule")
	stopWatchdog := startWatchdog(ctx, log, watch.live)
	defer stopWatchdog()
	stopProgress := startProgressLog(ctx, watch.plog)
	defer stopProgress()
	log.Info("syncd started", "schedule", m.Config.Schedule, "connectors", len(m.Config.Connector), "state", m.Config.StatePath(), "version", Version)
	c.Start()
	// The first cycle runs at once, through the same chain as scheduled
	// ones so that a slow first run is not doubled by the schedule. Cron's
	// Stop does not wait for a job it did not start, so this one is
	// awaited separately: the store must outlive it.
	var first sync.WaitGroup
	first.Go(c.Entries()[0].WrappedJob.Run)
	<-ctx.Done()
	notify("STOPPING=1")
	log.Info("stopping: finishing the work in hand")
	<-c.Stop().Done()
	first.Wait()
	log.Info("stopped")
	return nil
}

// daemonWatch follows the daemon's engine: its progress events and API
// calls beat the liveness the watchdog reads, and feed the progress log
// and the metrics.
type daemonWatch struct {
	live *liveness
	plog *progressLog
	met  *metrics.Metrics
}

// newDaemonWatch returns a watch; met may be nil.
func newDaemonWatch(met *metrics.Metrics) *daemonWatch {
	return &daemonWatch{live: newLiveness(nil), plog: newProgressLog(slog.New(slog.DiscardHandler), nil), met: met}
}

// progress receives the engine's progress events.
func (w *daemonWatch) progress(ev engine.ProgressEvent) {
	w.live.beat()
	w.plog.Event(ev)
}

// call receives every API call attempt.
func (w *daemonWatch) call(ev connectors.CallEvent) {
	w.live.beat()
	if w.met != nil {
		w.met.ObserveCall(ev)
	}
}

// liveness is the daemon's heartbeat: progress events, API calls and
// cycle boundaries beat it. A cycle that goes without a beat for longer
// than the watchdog's interval is taken as hung.
type liveness struct {
	now     func() time.Time
	mu      sync.Mutex
	last    time.Time
	running bool
}

func newLiveness(now func() time.Time) *liveness {
	if now == nil {
		now = time.Now
	}
	return &liveness{now: now, last: now()}
}

func (l *liveness) beat() {
	l.mu.Lock()
	l.last = l.now()
	l.mu.Unlock()
}

// cycle marks the start (running) or the end of a sync cycle.
func (l *liveness) cycle(running bool) {
	l.mu.Lock()
	l.running, l.last = running, l.now()
	l.mu.Unlock()
}

// quiet is how long the running cycle has gone without a beat; zero while
// the daemon waits for the schedule.
func (l *liveness) quiet() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running {
		return 0
	}
	return l.now().Sub(l.last)
}

// listenAddr binds a bare port (":9477") to loopback: every interface
// needs an explicit host ("0.0.0.0:9477").
func listenAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// cronLogger adapts slog to cron.Logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" { // from cron.SkipIfStillRunning
		l.log.Info("scheduled cycle skipped: the previous one is still running")
		return
	}
	l.log.Debug(msg, kv...)
}
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append(kv, "err", err)...)
}

// notify sends a sd_notify message when systemd gave us a socket.
func notify(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}

// startWatchdog pings systemd's watchdog four times per interval while
// the daemon is idle or its cycle makes progress. A cycle without a beat
// for a whole interval gets no more pings, so systemd restarts a hung
// syncd (WatchdogSec in the unit).
func startWatchdog(ctx context.Context, log *slog.Logger, live *liveness) func() {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return func() {}
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return func() {}
	}
	limit := time.Duration(usec) * time.Microsecond
	ctx, cancel := context.WithCancel(ctx)
	tick := time.NewTicker(limit / 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchdog(ctx, tick.C, live, limit, log, notify)
	}()
	log.Debug("systemd watchdog on", "interval", limit)
	return func() {
		cancel()
		tick.Stop()
		<-done
	}
}

// watchdog sends WATCHDOG=1 on every tick that its gate lets through.
func watchdog(ctx context.Context, ticks <-chan time.Time, live *liveness, limit time.Duration, log *slog.Logger, send func(string)) {
	g := &watchdogGate{live: live, limit: limit, log: log}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			if g.open() {
				send("WATCHDOG=1")
			}
		}
	}
}

// watchdogGate withholds the watchdog's pings while the running cycle has
// gone without a beat for longer than limit, and says so once.
type watchdogGate struct {
	live     *liveness
	limit    time.Duration
	log      *slog.Logger
	withheld bool
}

func (g *watchdogGate) open() bool {
	if q := g.live.quiet(); q > g.limit {
		if !g.withheld {
			g.log.Warn("sync run made no progress; watchdog pings withheld so that systemd restarts syncd", "quiet", q.Round(time.Second))
			g.withheld = true
		}
		return false
	}
	if g.withheld {
		g.log.Info("sync run progressing again; watchdog pings resumed")
		g.withheld = false
	}
	return true
}
