package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/syncd/syncd/internal/state"
)

// runConflicts is `syncd conflicts list | show ID | resolve ID --take C | --value V`.
func runConflicts(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	if len(args) == 0 {
		return exitUsage, usageError{errors.New("conflicts: want list, show ID or resolve ID")}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		fs, path := configFlag("conflicts list", rest, io.Discard)
		all := fs.Bool("all", false, "include settled conflicts")
		if err := fs.Parse(rest); err != nil {
			return exitUsage, usageError{err}
		}
		st, err := openStore(ctx, *path, true)
		if err != nil {
			return exitFailure, err
		}
		defer st.Close()
		status := "open"
		if *all {
			status = ""
		}
		cs, err := st.Conflicts(ctx, status, 1000)
		if err != nil {
			return exitFailure, err
		}
		if len(cs) == 0 {
			fmt.Fprintln(stdout, "no conflicts")
			return exitOK, nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tENTITY\tFIELD\tSTATUS\tDECISION\tVALUES")
		for _, c := range cs {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", c.ID, c.EntityID, c.Field, c.Status, decision(c), candidates(c.Candidates))
		}
		return exitOK, tw.Flush()
	case "show", "resolve":
		if len(rest) == 0 {
			return exitUsage, usageError{fmt.Errorf("conflicts %s: missing conflict ID", sub)}
		}
		id, err := strconv.ParseInt(rest[0], 10, 64)
		if err != nil {
			return exitUsage, usageError{fmt.Errorf("conflicts %s: not a conflict ID: %q", sub, rest[0])}
		}
		fs, path := configFlag("conflicts "+sub, rest[1:], io.Discard)
		take := fs.String("take", "", "settle with this connector's value")
		value := fs.String("value", "", "settle with this value")
		if err := fs.Parse(rest[1:]); err != nil {
			return exitUsage, usageError{err}
		}
		valueSet := false
		fs.Visit(func(f *flag.Flag) { valueSet = valueSet || f.Name == "value" })
		if sub == "show" {
			st, err := openStore(ctx, *path, true)
			if err != nil {
				return exitFailure, err
			}
			defer st.Close()
			cs, err := st.Conflicts(ctx, "", 100000)
			if err != nil {
				return exitFailure, err
			}
			for _, c := range cs {
				if c.ID == id {
					fmt.Fprintf(stdout, "conflict %d on entity %d, field %s (%s)\n  base (last agreed): %q\n  values: %s\n  policy: %s\n  decision: %s\n  reason: %s\n  recorded: %s\n",
						c.ID, c.EntityID, c.Field, c.Status, c.Base, candidates(c.Candidates), c.Policy, decision(c), c.Reason, c.CreatedAt.Local().Format(time.DateTime))
					return exitOK, nil
				}
			}
			return exitFailure, fmt.Errorf("no conflict %d", id)
		}
		if (*take == "") == !valueSet {
			return exitUsage, usageError{errors.New("conflicts resolve: give exactly one of --take CONNECTOR or --value V")}
		}
		p, err := findConfig(*path)
		if err != nil {
			return exitUsage, err
		}
		cfg, err := loadConfig(p)
		if err != nil {
			return exitUsage, err
		}
		m := &Main{}
		if err := m.Open(ctx, cfg, io.Discard); err != nil {
			m.Close()
			return exitFailure, err
		}
		defer m.Close()
		var v *string
		if valueSet {
			v = value
		}
		if err := m.Engine.ResolveConflict(ctx, id, *take, v); err != nil {
			return exitFailure, err
		}
		fmt.Fprintf(stdout, "conflict %d resolved; the value is written everywhere on the next run\n", id)
		return exitOK, nil
	}
	return exitUsage, usageError{fmt.Errorf("conflicts: unknown subcommand %q (want list, show or resolve)", sub)}
}

func decision(c state.Conflict) string {
	if c.Status == "open" {
		return "(waiting for you)"
	}
	return fmt.Sprintf("%q from %s", c.Decision, c.Winner)
}

// openStore opens the config's state database, read-only for inspection.
func openStore(ctx context.Context, configPath string, readOnly bool) (*state.Store, error) {
	p, err := findConfig(configPath)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(p)
	if err != nil {
		return nil, err
	}
	st, err := state.Open(ctx, cfg.StatePath(), state.Options{ReadOnly: readOnly})
	return st, withStatePath(err, cfg.StatePath())
}

// runExplain is `syncd explain EMAIL|ENTITY`: each connector's current
// value of every field, the synced base, and the conflicts that decided.
func runExplain(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs, path := configFlag("explain", args, io.Discard)
	if err := fs.Parse(args); err != nil {
		return exitUsage, usageError{err}
	}
	if fs.NArg() != 1 {
		return exitUsage, usageError{errors.New("explain: give one e-mail address or entity id")}
	}
	st, err := openStore(ctx, *path, true)
	if err != nil {
		return exitFailure, err
	}
	defer st.Close()
	ex, err := st.Explain(ctx, fs.Arg(0))
	if err != nil {
		return exitFailure, err
	}
	fmt.Fprintf(stdout, "entity %d\n", ex.EntityID)
	for _, r := range ex.Records {
		del := ""
		if r.Deleted {
			del = " (deleted there)"
		}
		fmt.Fprintf(stdout, "  %s record %s%s, modified %s, last pulled %s\n", r.Connector, r.RemoteID, del, orDash(r.ModifiedAt), r.PulledAt)
	}
	fields := map[string]bool{}
	for f := range ex.Fields {
		fields[f] = true
	}
	for _, r := range ex.Records {
		for f := range r.Current {
			fields[f] = true
		}
	}
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	lastConflict := map[string]state.Conflict{}
	for _, c := range ex.Conflicts {
		if _, ok := lastConflict[c.Field]; !ok {
			lastConflict[c.Field] = c
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "\nfield\tvalue")
	for _, r := range ex.Records {
		fmt.Fprintf(tw, "\t%s (synced base)", r.Connector)
	}
	fmt.Fprintln(tw, "\twhy")
	for _, f := range names {
		fmt.Fprintf(tw, "%s\t%q", f, ex.Fields[f])
		var from []string
		var newest string
		var newestAt string
		for _, r := range ex.Records {
			cur, has := r.Current[f]
			base := r.Synced[f]
			cell := "-"
			if has {
				cell = fmt.Sprintf("%q", cur)
				if cur != base {
					cell += fmt.Sprintf(" (base %q)", base)
				}
			}
			fmt.Fprintf(tw, "\t%s", cell)
			if has && cur == ex.Fields[f] {
				from = append(from, r.Connector)
				if r.ModifiedAt > newestAt {
					newest, newestAt = r.Connector, r.ModifiedAt
				}
			}
		}
		why := ""
		c, hasConflict := lastConflict[f]
		o, hasOrigin := ex.Origin(f)
		switch {
		case hasConflict && c.Status == "open":
			why = fmt.Sprintf("open conflict #%d: %s", c.ID, candidates(c.Candidates))
		case hasOrigin:
			why = describeOrigin(o)
			if hasConflict && strings.HasPrefix(o.How, "conflict") {
				why += fmt.Sprintf(" (#%d: %s)", c.ID, c.Reason)
			}
		case hasConflict:
			why = fmt.Sprintf("conflict #%d %s: %s won (%s)", c.ID, c.CreatedAt.Local().Format(time.DateTime), c.Winner, c.Reason)
		case len(from) == len(ex.Records) && newest != "":
			why = "agreed by every linked CRM; newest change seen in " + newest + " at " + newestAt
		}
		switch {
		case len(from) > 0 && len(from) < len(ex.Records):
			why += fmt.Sprintf("; held by %s, the others are updated on the next run", strings.Join(from, ", "))
		case len(from) == len(ex.Records) && why == "":
			why = "agreed by every linked CRM"
		}
		fmt.Fprintf(tw, "\t%s\n", why)
	}
	return exitOK, tw.Flush()
}

// describeOrigin says which side's change produced a value, and when.
func describeOrigin(o state.Origin) string {
	what := map[string]string{
		"created":     "first seen in %s",
		"changed":     "changed in %s",
		"linked":      "from %s's record when it was linked",
		"first value": "first value, from %s",
	}[o.How]
	var s string
	switch {
	case what != "":
		s = fmt.Sprintf(what, o.Connector)
	case strings.HasPrefix(o.How, "resolved"):
		s = fmt.Sprintf("%s: %s", o.How, o.Connector)
	default:
		s = fmt.Sprintf("%s: %s's value", o.How, o.Connector)
	}
	if !o.At.IsZero() {
		s += " at " + o.At.Local().Format(time.DateTime)
	}
	if o.Run > 0 {
		s += fmt.Sprintf(", run %d", o.Run)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
