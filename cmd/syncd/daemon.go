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
	engine "github.com/syncd/syncd/internal/sync"
)

// daemon runs a cycle at start and then on the schedule until ctx is
// cancelled. A cancelled ctx lets the cycle in hand finish its page or
// push and commit; cron's Stop context is awaited before returning, so
// the store is closed only after the last job ended.
func (m *Main) daemon(ctx context.Context, fullFirst bool) error {
	sched, err := config.CronParser.Parse(m.Config.Schedule)
	if err != nil {
		return fmt.Errorf("schedule %q: %w", m.Config.Schedule, err)
	}
	log := m.Logger
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
	stopWatchdog := startWatchdog(ctx, log)
	defer stopWatchdog()
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

// cronLogger adapts slog to cron.Logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug(msg, kv...) }
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

// startWatchdog pings systemd's watchdog at half its interval while the
// daemon runs.
func startWatchdog(ctx context.Context, log *slog.Logger) func() {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return func() {}
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return func() {}
	}
	interval := time.Duration(usec) * time.Microsecond / 2
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				notify("WATCHDOG=1")
			}
		}
	}()
	log.Debug("systemd watchdog on", "interval", interval)
	return cancel
}
