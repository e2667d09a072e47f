package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/syncd/syncd/internal/state"
	engine "github.com/syncd/syncd/internal/sync"
)

func configFlag(name string, args []string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("syncd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default ./config.toml, then /etc/syncd/config.toml)")
	return fs, path
}

func runCheckConfig(args []string, stdout, stderr io.Writer) (int, error) {
	fs, path := configFlag("check-config", args, stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage, usageError{err}
	}
	p, err := findConfig(*path)
	if err != nil {
		return exitUsage, err
	}
	cfg, err := loadConfig(p)
	if err != nil {
		return exitUsage, err
	}
	fmt.Fprintln(stdout, cfg.Summary())
	return exitOK, nil
}

// openReadOnly opens the state store of the config for inspection, beside
// a running daemon.
func openReadOnly(ctx context.Context, args []string, name string, stderr io.Writer) (*state.Store, *flag.FlagSet, error) {
	fs, path := configFlag(name, args, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, nil, usageError{err}
	}
	p, err := findConfig(*path)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(p)
	if err != nil {
		return nil, nil, err
	}
	st, err := state.Open(ctx, cfg.StatePath(), state.Options{ReadOnly: true})
	if err != nil {
		return nil, nil, withStatePath(err, cfg.StatePath())
	}
	return st, fs, nil
}

func runStatus(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	st, _, err := openReadOnly(ctx, args, "status", io.Discard)
	if err != nil {
		return exitFailure, err
	}
	defer st.Close()
	s, err := st.Status(ctx)
	if err != nil {
		return exitFailure, err
	}
	printStatus(stdout, s)
	return exitOK, nil
}

// withStatePath names the state database in an error of the store that
// does not name it already (a failing disk, a damaged page), so that the
// message points at the file to look at.
func withStatePath(err error, path string) error {
	if err == nil || path == "" || strings.Contains(err.Error(), path) {
		return err
	}
	return fmt.Errorf("%w (state database %s)", err, path)
}

// printReport writes a run's summary as a table; runErr is the run's own
// failure (the store), which the counts alone do not show.
func printReport(w io.Writer, r *engine.Report, runErr error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "connector\tpulled\tchanged\tmatched\tcreated\tupdated\tdeleted\tunchanged\tconflicts\tfailed\treads\twrites\tretries\t")
	for _, c := range r.Connectors {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", c.Name, c.Pulled, c.Changed, c.Matched, c.Created, c.Updated, c.Deleted, c.Unchanged, c.Conflicts, c.Failed, c.Reads, c.Writes, c.Retries)
	}
	tw.Flush()
	status := "ok"
	switch {
	case runErr != nil:
		status = "failed"
	case r.Interrupted:
		status = "interrupted (resumes on the next run)"
	case r.ExitCode() == exitAttention:
		status = "finished, needs attention"
	case r.ExitCode() != exitOK:
		status = "failed"
	}
	fmt.Fprintf(w, "run %d %s in %s: %d open conflicts, %d failed records, %d parked matches\n", r.RunID, status, r.Duration.Round(time.Millisecond), r.Conflicts, r.Failed, r.Parked)
	for _, c := range r.Connectors {
		if c.Err != nil {
			fmt.Fprintf(w, "  %s: %v\n", c.Name, c.Err)
		}
	}
	if r.DeletionsBlocked != "" {
		fmt.Fprintf(w, "deletions blocked: %s\n", r.DeletionsBlocked)
	}
}

// logReport logs a run's summary (daemon mode).
func logReport(log *slog.Logger, r *engine.Report) {
	for _, c := range r.Connectors {
		attrs := []any{"run", r.RunID, "connector", c.Name, "pulled", c.Pulled, "changed", c.Changed, "created", c.Created, "updated", c.Updated, "deleted", c.Deleted, "conflicts", c.Conflicts, "failed", c.Failed, "reads", c.Reads, "writes", c.Writes, "retries", c.Retries}
		if c.Err != nil {
			log.Error("connector failed", append(attrs, "err", c.Err)...)
			continue
		}
		log.Info("connector synced", attrs...)
	}
	level := slog.LevelInfo
	if r.ExitCode() != exitOK {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "sync run finished", "run", r.RunID, "duration", r.Duration.Round(time.Millisecond), "open_conflicts", r.Conflicts, "failed_records", r.Failed, "parked", r.Parked, "deletions_blocked", r.DeletionsBlocked)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
