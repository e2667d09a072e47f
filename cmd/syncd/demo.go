package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/syncd/syncd/internal/crmsim"
	engine "github.com/syncd/syncd/internal/sync"
)

// runDemo serves emulated CRMs on loopback, syncs them with the shipped
// mappings, shows the result, syncs again to show a no-op, then makes one
// edit in each of two CRMs and shows them travel.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("syncd demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	people := fs.Int("people", 200, "sample people spread over the emulated CRMs")
	keep := fs.Bool("keep", false, "keep the demo's folder (config and state database) and print its path")
	xml := fs.Bool("xml", false, "talk to the CO3 emulator in XML instead of JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage, usageError{err}
	}
	sim, err := crmsim.Start(crmsim.Options{People: *people, Seed: 42})
	if err != nil {
		return exitFailure, err
	}
	defer sim.Close()
	dir, err := os.MkdirTemp("", "syncd-demo-")
	if err != nil {
		return exitFailure, err
	}
	if *keep {
		fmt.Fprintf(stdout, "demo folder: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	format := "json"
	if *xml {
		format = "xml"
	}
	text, err := sim.Config(crmsim.ConfigOptions{State: filepath.Join(dir, "state.db"), LogLevel: "warn", LogFormat: "text", CO3Format: format})
	if err != nil {
		return exitFailure, err
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return exitFailure, err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return exitFailure, err
	}
	m := &Main{}
	if err := m.Open(ctx, cfg, stderr); err != nil {
		m.Close()
		return exitFailure, err
	}
	defer m.Close()

	fmt.Fprintf(stdout, "Emulated CRMs on loopback (%d sample people; some in several CRMs, written differently):\n", *people)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  opencrm\t%s\t%d contacts\n", sim.URLs["opencrm"], sim.OpenCRM.Table.Len())
	fmt.Fprintf(tw, "  co3 (%s)\t%s\t%d contacts\n", format, sim.URLs["co3"], sim.CO3.Len())
	fmt.Fprintf(tw, "  clientbook\t%s\t%d contacts\n", sim.URLs["clientbook"], sim.ClientBook.Len())
	fmt.Fprintf(tw, "  hosting (clientapi, pull-only)\t%s\t1 account\n", sim.URLs["clientapi"])
	tw.Flush()

	run := func(title string) (*engine.Report, error) {
		fmt.Fprintf(stdout, "\n== %s\n", title)
		rep, err := m.RunOnce(ctx, engine.RunOptions{})
		if rep != nil {
			printDemoReport(stdout, rep)
		}
		return rep, err
	}
	start := time.Now()
	rep, err := run("first sync: match people across CRMs, merge fields, create what is missing")
	if err != nil {
		return exitFailure, err
	}
	if code := rep.ExitCode(); code == exitFailure {
		return code, fmt.Errorf("the first sync failed")
	}
	if err := printSample(ctx, stdout, m, sim, 5); err != nil {
		return exitFailure, err
	}
	rep, err = run("second sync right after: nothing changed, so nothing is written")
	if err != nil {
		return exitFailure, err
	}
	writes := int64(0)
	for _, c := range rep.Connectors {
		writes += c.Writes
	}
	fmt.Fprintf(stdout, "write calls in the second sync: %d\n", writes)

	// One edit in OpenCRM and one in CO3, on different people shared by
	// both, as users of those CRMs would make them.
	p1, p2 := sim.People[len(sim.People)/2], sim.People[len(sim.People)/2+1]
	id1 := sim.FindByEmail("opencrm", p1.Email)
	id2 := sim.FindByEmail("co3", p2.Email)
	if id1 != "" && id2 != "" {
		sim.Clock.Advance(time.Minute)
		sim.OpenCRM.EditAsUser(id1, map[string]string{"title": "Head of Sales"})
		sim.CO3.EditAsUser(id2, map[string]string{"contact_firstname": p2.Given + "-Marie"})
		if _, err := run(fmt.Sprintf("third sync after two edits: %s's job title in OpenCRM, %s's first name in CO3", p1.Given+" "+p1.Family, p2.Given+" "+p2.Family)); err != nil {
			return exitFailure, err
		}
		co3Rec, _ := sim.CO3.Fields(sim.FindByEmail("co3", p1.Email))
		oRec, _ := sim.OpenCRM.Fields(sim.FindByEmail("opencrm", p2.Email))
		fmt.Fprintf(stdout, "CO3 now has %s's job title %q; OpenCRM now has first name %q\n", p1.Given, co3Rec["contact_job"], oRec["firstname"])
	}
	fmt.Fprintf(stdout, "\ndemo finished in %s. Try your own mappings against the same emulators: go run ./cmd/crmsim -config sim.toml\n", time.Since(start).Round(time.Millisecond))
	return exitOK, nil
}

func printDemoReport(w io.Writer, r *engine.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CRM\tpulled\tchanged\tmatched\tcreated\tupdated\tconflicts\tfailed\tAPI reads\tAPI writes\t")
	for _, c := range r.Connectors {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", c.Name, c.Pulled, c.Changed, c.Matched, c.Created, c.Updated, c.Conflicts, c.Failed, c.Reads, c.Writes)
	}
	tw.Flush()
	fmt.Fprintf(w, "run %d took %s; open conflicts %d, failed records %d, parked matches %d\n", r.RunID, r.Duration.Round(time.Millisecond), r.Conflicts, r.Failed, r.Parked)
	for _, c := range r.Connectors {
		if c.Err != nil {
			fmt.Fprintf(w, "  %s: %v\n", c.Name, c.Err)
		}
	}
}

// printSample shows a few people held by both OpenCRM and CO3 as each CRM
// holds them after the sync.
func printSample(ctx context.Context, w io.Writer, m *Main, sim *crmsim.Sim, n int) error {
	fmt.Fprintln(w, "\nsample of merged contacts (people who were in both OpenCRM and CO3, written differently):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  name\tOpenCRM email / phone\tCO3 email / phone\tbirthday OpenCRM ⇄ CO3\t")
	shown := 0
	for i := len(sim.People) * 4 / 10; i < len(sim.People)*6/10 && shown < n; i++ {
		p := sim.People[i]
		oid := sim.FindByEmail("opencrm", p.Email)
		cid := sim.FindByEmail("co3", p.Email)
		if oid == "" || cid == "" {
			continue
		}
		o, _ := sim.OpenCRM.Fields(oid)
		c, _ := sim.CO3.Fields(cid)
		fmt.Fprintf(tw, "  %s %s\t%s / %s\t%s / %s\t%s ⇄ %s\t\n", p.Given, p.Family, o["email"], o["phone"], c["contact_email"], c["contact_phone"], o["birthday"], c["contact_birthday"])
		shown++
	}
	return tw.Flush()
}
