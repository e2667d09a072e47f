package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/syncd/syncd/internal/state"
)

// printStatus writes `syncd status`.
func printStatus(w io.Writer, s *state.Status) {
	fmt.Fprintf(w, "schema version %d (this syncd knows %d); %d entities, %d remote records\n", s.SchemaVersion, s.KnownVersion, s.Entities, s.Records)

	fmt.Fprintln(w, "\nlast runs:")
	if len(s.Runs) == 0 {
		fmt.Fprintln(w, "  none yet")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range s.Runs {
		dur := ""
		if !r.FinishedAt.IsZero() {
			dur = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
		}
		flags := []string{}
		if r.DryRun {
			flags = append(flags, "dry-run")
		}
		if r.Full {
			flags = append(flags, "full")
		}
		fmt.Fprintf(tw, "  run %d\t%s\t%s\t%s\t%s\tconflicts %d\tfailed %d\tparked %d\n", r.ID, r.StartedAt.Local().Format("2006-01-02 15:04:05"), r.Status, dur, strings.Join(flags, ","), r.Conflicts, r.Failed, r.Parked)
		for _, c := range r.Connectors {
			line := fmt.Sprintf("    %s\tpulled %d\tchanged %d\tcreated %d\tupdated %d\tdeleted %d\tcalls %d read / %d write\tretries %d", c.Connector, c.Pulled, c.Changed, c.Created, c.Updated, c.Deleted, c.Reads, c.Writes, c.Retries)
			if c.Error != "" {
				line += "\terror: " + c.Error
			}
			fmt.Fprintln(tw, line)
		}
		if r.DeletionsBlocked != "" {
			fmt.Fprintf(tw, "    deletions blocked: %s\n", r.DeletionsBlocked)
		}
		if r.Error != "" {
			fmt.Fprintf(tw, "    error: %s\n", r.Error)
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\ncursors:")
	if len(s.Cursors) == 0 {
		fmt.Fprintln(w, "  none yet")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range s.Cursors {
		state := "complete"
		if c.InProgress {
			state = "pull in progress (resumes after the last stored page)"
		}
		last := "never"
		if !c.CompleteAt.IsZero() {
			last = c.CompleteAt.Local().Format("2006-01-02 15:04:05")
		}
		cur := c.Cursor
		if len(cur) > 60 {
			cur = cur[:60] + "…"
		}
		fmt.Fprintf(tw, "  %s\t%s\tlast complete pull %s\t%s\n", c.Connector, state, last, cur)
	}
	tw.Flush()

	fmt.Fprintln(w, "\noutbox backlog:")
	if len(s.Outbox) == 0 {
		fmt.Fprintln(w, "  empty")
	}
	for _, o := range s.Outbox {
		fmt.Fprintf(w, "  %s: %d pending, %d attempted, %d failed\n", o.Connector, o.Pending, o.Attempted, o.Failed)
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(w, "\nfailed records (retried on every run):")
		for _, f := range s.Failures {
			id := f.RemoteID
			if id == "" {
				id = "(new)"
			}
			fmt.Fprintf(w, "  %s %s %s entity %d, %d attempts: %s\n", f.Connector, f.Op, id, f.EntityID, f.Attempts, f.LastError)
		}
	}

	fmt.Fprintf(w, "\nopen conflicts: %d\n", len(s.OpenConflicts))
	for _, c := range s.OpenConflicts {
		fmt.Fprintf(w, "  #%d entity %d %s: base %q; %s\n", c.ID, c.EntityID, c.Field, c.Base, candidates(c.Candidates))
	}
	if len(s.OpenConflicts) > 0 {
		fmt.Fprintln(w, "  settle with: syncd conflicts resolve ID --take CONNECTOR | --value V")
	}
	fmt.Fprintf(w, "\nparked records (ambiguous identity): %d\n", len(s.Parked))
	for _, p := range s.Parked {
		fmt.Fprintf(w, "  %s %s: %s (entities %v)\n", p.Connector, p.RemoteID, p.Reason, p.Candidates)
	}
}

func candidates(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, m[k])
	}
	return strings.Join(parts, " ")
}
