package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/registry"
	"github.com/syncd/syncd/internal/metrics"
	"github.com/syncd/syncd/internal/redact"
	"github.com/syncd/syncd/internal/state"
	engine "github.com/syncd/syncd/internal/sync"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

// Main is one configured syncd: config, logger, state store, connectors
// and engine. Tests boot it on a temporary folder.
type Main struct {
	Config   *config.Config
	Logger   *slog.Logger
	Redactor *redact.Redactor
	Store    *state.Store
	Engine   *engine.Engine
	Built    []registry.Built
	// Observe receives every API call attempt (metrics).
	Observe func(connectors.CallEvent)
	// Progress receives engine progress events.
	Progress func(engine.ProgressEvent)
	// Metrics, when set, records every run.
	Metrics *metrics.Metrics
}

// defaultConfigPaths are tried in order when -config is not given.
var defaultConfigPaths = []string{"config.toml", "/etc/syncd/config.toml"}

// findConfig returns the config path to use.
func findConfig(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	for _, p := range defaultConfigPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", usageError{fmt.Errorf("no config file: give -config FILE (tried %s)", strings.Join(defaultConfigPaths, ", "))}
}

// loadConfig loads and validates; problems are a usageError listing all.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, registry.Types())
	if err != nil {
		if cfg == nil {
			return nil, usageError{err}
		}
		return nil, usageError{fmt.Errorf("%s has problems:\n  %s", path, strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return cfg, nil
}

// newLogger builds the logger the config asks for, behind the redactor.
func newLogger(cfg config.Log, w io.Writer, r *redact.Redactor) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	var h slog.Handler
	format := cfg.Format
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "tint"
		}
	}
	switch format {
	case "tint":
		h = tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly})
	case "text":
		h = slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	default:
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	}
	return slog.New(r.Handler(h))
}

// isTerminal reports whether w is a character device (a terminal), or
// writes to one (the progress block).
func isTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Open builds everything from cfg. logOut receives log lines.
func (m *Main) Open(ctx context.Context, cfg *config.Config, logOut io.Writer) error {
	connectors.Version = Version
	m.Config = cfg
	m.Redactor = redact.New(cfg.Secrets()...)
	m.Logger = newLogger(cfg.Log, logOut, m.Redactor)
	for _, cc := range cfg.Connector {
		if strings.HasPrefix(cc.BaseURL, "http://") {
			m.Logger.Debug("plain http to a loopback host", "connector", cc.Name)
		}
	}
	st, err := state.Open(ctx, cfg.StatePath(), state.Options{Logger: m.Logger.With("component", "migrations")})
	if err != nil {
		return withStatePath(err, cfg.StatePath())
	}
	m.Store = st
	m.Built, err = registry.Build(cfg, registry.BuildOptions{Redactor: m.Redactor, Logger: m.Logger, Observe: m.Observe})
	if err != nil {
		return err
	}
	conns := map[string]connectors.Connector{}
	pacers := map[string]*connectors.Pacer{}
	for _, b := range m.Built {
		conns[b.Name] = b.Connector
		pacers[b.Name] = b.Pacer
	}
	m.Engine, err = engine.New(engine.Options{
		Config:     cfg,
		Store:      st,
		Connectors: conns,
		Pacers:     pacers,
		Logger:     m.Logger,
		Progress:   m.Progress,
	})
	return err
}

// Close releases the store and connectors.
func (m *Main) Close() error {
	var errs []error
	for _, b := range m.Built {
		if c, ok := b.Connector.(connectors.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}

// RunOnce runs one cycle and logs its summary.
func (m *Main) RunOnce(ctx context.Context, ro engine.RunOptions) (*engine.Report, error) {
	rep, err := m.Engine.Run(ctx, ro)
	if err != nil {
		err = m.Redactor.Error(withStatePath(err, m.Config.StatePath()))
	}
	if m.Metrics != nil && !ro.DryRun {
		m.Metrics.ObserveRun(runResult(rep, err), runDuration(rep), connectorRuns(rep), errText(err))
	}
	return rep, err
}

// runFlags are the daemon's flags.
type runFlags struct {
	config             string
	runOnce, full, dry bool
}

func parseRunFlags(args []string, stderr io.Writer) (runFlags, error) {
	var f runFlags
	fs := flag.NewFlagSet("syncd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "config file (default ./config.toml, then /etc/syncd/config.toml)")
	fs.BoolVar(&f.runOnce, "run-once", false, "run one sync cycle and exit")
	fs.BoolVar(&f.full, "full", false, "ignore cursors and rescan every connector completely")
	fs.BoolVar(&f.dry, "dry-run", false, "pull, match and merge, print the plan, write nothing to any CRM")
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return f, usageError{err}
	}
	if fs.NArg() > 0 {
		return f, usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	if f.dry && !f.runOnce {
		// A dry run is one cycle by nature.
		f.runOnce = true
	}
	return f, nil
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		return exitUsage, err
	}
	path, err := findConfig(f.config)
	if err != nil {
		return exitUsage, err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return exitUsage, err
	}
	m := &Main{}
	var met *metrics.Metrics
	if !f.runOnce && cfg.Listen != "" {
		met = metrics.New(healthMaxAge(cfg), nil)
		m.Metrics = met
	}
	logOut := stderr
	var startProgress func(context.Context, *slog.Logger) func()
	var watch *daemonWatch
	if f.runOnce {
		m.Progress, logOut, startProgress = runOnceProgress(stderr)
	} else {
		watch = newDaemonWatch(met)
		m.Progress, m.Observe = watch.progress, watch.call
	}
	if err := m.Open(ctx, cfg, logOut); err != nil {
		m.Close()
		return exitFailure, err
	}
	defer m.Close()
	if f.runOnce {
		finishProgress := startProgress(ctx, m.Logger)
		rep, err := m.RunOnce(ctx, engine.RunOptions{DryRun: f.dry, Full: f.full, Out: stdout})
		finishProgress()
		if rep != nil {
			printReport(stdout, rep, err)
		}
		if err != nil {
			return exitFailure, err
		}
		return rep.ExitCode(), nil
	}
	if met != nil {
		stop, err := serveMetrics(ctx, cfg.Listen, met, m.Logger)
		if err != nil {
			return exitFailure, err
		}
		defer stop()
	}
	return exitOK, m.daemon(ctx, f.full, watch)
}

// healthMaxAge is the configured age, or three schedule intervals with a
// floor of one hour.
func healthMaxAge(cfg *config.Config) time.Duration {
	if cfg.HealthMaxAge.Duration > 0 {
		return cfg.HealthMaxAge.Duration
	}
	if sched, err := config.CronParser.Parse(cfg.Schedule); err == nil {
		now := time.Now()
		next := sched.Next(now)
		if d := 3 * sched.Next(next).Sub(next); d > time.Hour {
			return d
		}
	}
	return time.Hour
}

// serveMetrics serves /metrics and /healthz on addr until stop is called.
func serveMetrics(ctx context.Context, addr string, met *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", listenAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("listen %s for metrics: %w", addr, err)
	}
	srv := &http.Server{Handler: met.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("metrics and health", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

func runResult(rep *engine.Report, err error) string {
	switch {
	case err != nil || rep == nil:
		return "failed"
	case rep.Interrupted:
		return "interrupted"
	case rep.ExitCode() == exitAttention:
		return "attention"
	case rep.ExitCode() != exitOK:
		return "failed"
	}
	return "ok"
}

func runDuration(rep *engine.Report) time.Duration {
	if rep == nil {
		return 0
	}
	return rep.Duration
}

func connectorRuns(rep *engine.Report) []metrics.ConnectorRun {
	if rep == nil {
		return nil
	}
	out := make([]metrics.ConnectorRun, len(rep.Connectors))
	for i, c := range rep.Connectors {
		out[i] = metrics.ConnectorRun{Name: c.Name, Pulled: c.Pulled, Created: c.Created, Updated: c.Updated, Deleted: c.Deleted}
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
