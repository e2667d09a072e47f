// Command syncbench measures syncd at scale. It serves the OpenCRM and CO3
// emulators (internal/crmsim) on loopback inside this process, builds the
// real syncd binary and runs it as a child process with --run-once, so the
// wall time, CPU time and peak RSS it reports are syncd's own (from the
// child's rusage), not the emulators'.
//
// Scenarios, in order, over one emulator pair and one state database:
//
//	first   first sync: -people contacts in each CRM, -shared of them the
//	        same people written differently
//	noop    a rerun right after, with nothing changed by users
//	edits   -edits % of each side's contacts edited by users (shared
//	        people, disjoint on the two sides), then a sync
//
// then, over a fresh, smaller pair (-rate-people, -rate-shared) synced
// once without limit:
//
//	rate    the edits scenario with every connector limited to -rate
//	        requests/s (burst 1), against the lower bound calls ÷ rate
//
// It checks what must hold at any size — entities = 2·people − shared, no
// duplicate e-mail in either CRM, no write in the no-op run, writes equal
// to the edited records — and exits 1 when one fails, so CI can run a small
// version (see .ci/extra).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
	"github.com/syncd/syncd/internal/state"
)

type flags struct {
	people, shared         int
	edits                  float64
	rate                   float64
	ratePeople, rateShared int
	syncd                  string
	keep                   bool
	skipRate               bool
	profile                bool
	firstOnly              bool
	logLevel               string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var f flags
	fs := flag.NewFlagSet("syncbench", flag.ContinueOnError)
	fs.IntVar(&f.people, "people", 100_000, "contacts in each CRM")
	fs.IntVar(&f.shared, "shared", 50_000, "people in both CRMs (written differently)")
	fs.Float64Var(&f.edits, "edits", 1, "percentage of each side's contacts edited before the edits and rate runs")
	fs.Float64Var(&f.rate, "rate", 10, "requests/s per connector in the rate-limited run (0 skips it)")
	fs.IntVar(&f.ratePeople, "rate-people", 10_000, "contacts in each CRM for the rate-limited run")
	fs.IntVar(&f.rateShared, "rate-shared", -1, "shared people for the rate-limited run (default half of -rate-people)")
	fs.StringVar(&f.syncd, "syncd", "", "syncd binary to run (default: built from this module)")
	fs.BoolVar(&f.keep, "keep", false, "keep the work folder (state database, configs, syncd output)")
	fs.BoolVar(&f.firstOnly, "first-only", false, "run only the first sync (for profiling it)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "syncd's log level (info shows each phase's end; kept with -keep)")
	fs.BoolVar(&f.profile, "profile", false, "write CPU and peak-heap profiles of syncd per scenario (SYNCD_CPUPROFILE, SYNCD_MEMPROFILE) and a CPU profile of the emulators into the kept work folder")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if f.rateShared < 0 {
		f.rateShared = f.ratePeople / 2
	}
	if f.people <= 0 || f.shared < 0 || f.shared > f.people || f.rateShared > f.ratePeople || f.edits < 0 {
		fmt.Fprintln(os.Stderr, "syncbench: need people > 0 and 0 <= shared <= people")
		os.Exit(2)
	}
	code, err := run(ctx, f, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "syncbench: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// result is one scenario's row.
type result struct {
	name  string
	size  string
	wall  time.Duration
	cpu   time.Duration
	rssKB int64
	// anonKB and fileKB are the largest anonymous (heap, SQLite cache)
	// and file-backed (mapped) resident sets seen in /proc while it ran.
	anonKB, fileKB int64
	hwmKB          int64
	// emuCPU is this process's CPU time during the run: the emulators
	// serving syncd's calls.
	emuCPU   time.Duration
	calls    map[string]callCount // by CRM type
	pulled   int
	exit     int
	bound    time.Duration // rate-limited lower bound (0: none)
	checks   []string      // failed checks
	notes    []string
	entities int64
	dups     map[string]int
}

type callCount struct{ reads, writes int }

func run(ctx context.Context, f flags, out io.Writer) (int, error) {
	dir, err := os.MkdirTemp("", "syncbench-")
	if err != nil {
		return 1, err
	}
	if f.profile {
		f.keep = true
		pf, err := os.Create(filepath.Join(dir, "emulators.cpu.pprof"))
		if err == nil {
			err = pprof.StartCPUProfile(pf)
		}
		if err != nil {
			return 1, err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	if f.keep {
		fmt.Fprintf(os.Stderr, "syncbench: work folder %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := f.syncd
	if bin == "" {
		fmt.Fprintln(os.Stderr, "syncbench: building syncd")
		bin = filepath.Join(dir, "syncd")
		if err := buildSyncd(ctx, bin); err != nil {
			return 1, err
		}
	}
	b := &bench{f: f, bin: bin, dir: dir}
	var results []result
	first, err := b.mainScenarios(ctx)
	results = append(results, first...)
	if err == nil && f.rate > 0 && !f.firstOnly {
		var r []result
		r, err = b.rateScenario(ctx)
		results = append(results, r...)
	}
	printTable(out, results)
	failed := 0
	for _, r := range results {
		for _, c := range r.checks {
			fmt.Fprintf(out, "FAIL %s: %s\n", r.name, c)
			failed++
		}
	}
	if err != nil {
		return 1, err
	}
	if failed > 0 {
		return 1, fmt.Errorf("%d checks failed", failed)
	}
	fmt.Fprintln(out, "all checks passed")
	return 0, nil
}

// buildSyncd builds ./cmd/syncd of the module this command runs in.
func buildSyncd(ctx context.Context, bin string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/syncd")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/syncd: %w", err)
	}
	return nil
}

type bench struct {
	f   flags
	bin string
	dir string
}

// env is one emulator pair with its state database.
type env struct {
	sim            *crmsim.Sim
	people, shared int
	statePath      string
	name           string
}

func (b *bench) start(name string, people, shared int) (*env, error) {
	sim, err := crmsim.Start(crmsim.Options{
		People: 2*people - shared, Seed: 1, Only: []string{"opencrm", "co3"},
		OpenCRMTo: people, CO3From: people - shared,
	})
	if err != nil {
		return nil, err
	}
	return &env{sim: sim, people: people, shared: shared, name: name, statePath: filepath.Join(b.dir, name+".db")}, nil
}

func (b *bench) config(e *env, file string, rate float64, burst int) (string, error) {
	cfg, err := e.sim.Config(crmsim.ConfigOptions{State: e.statePath, LogLevel: b.f.logLevel, LogFormat: "json", Rate: rate, Burst: burst})
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.dir, file)
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// nextCycle is how far the emulators' clock moves before each later
// no-op: past OpenCRM's lookback (5 minutes) and the two hours the
// connector keeps its cursor behind the server's clock (so that a wrong
// time_zone setting loses nothing).
const nextCycle = 3 * time.Hour

func (b *bench) mainScenarios(ctx context.Context) ([]result, error) {
	e, err := b.start("main", b.f.people, b.f.shared)
	if err != nil {
		return nil, err
	}
	defer e.sim.Close()
	cfg, err := b.config(e, "main.toml", 100_000, 1000)
	if err != nil {
		return nil, err
	}
	size := sizeLabel(e.people, e.shared)
	var results []result

	first, err := b.sync(ctx, e, "first sync", cfg)
	if err != nil {
		return results, err
	}
	first.size = size
	b.verify(e, &first)
	results = append(results, first)
	if b.f.firstOnly {
		return results, nil
	}

	noop, err := b.noop(ctx, e, "no-op rerun", cfg, size)
	if err != nil {
		return results, err
	}
	results = append(results, noop)

	// Later runs of a quiet CRM: the emulators' clock moves on by
	// nextCycle each time. The first of them still reads back the first
	// sync's own writes (they are within the window of the rerun's
	// cursor); the second shows what a quiet CRM costs from then on.
	for i := 1; i <= 2; i++ {
		e.sim.Clock.Advance(nextCycle)
		later, err := b.noop(ctx, e, fmt.Sprintf("no-op, +%dh", i*int(nextCycle/time.Hour)), cfg, size)
		if err != nil {
			return results, err
		}
		results = append(results, later)
	}

	edited := b.edit(e)
	ed, err := b.sync(ctx, e, fmt.Sprintf("%g%% edits", b.f.edits), cfg)
	if err != nil {
		return results, err
	}
	ed.size = size
	checkEditWrites(&ed, edited)
	b.verify(e, &ed)
	results = append(results, ed)
	return results, nil
}

// noop runs a sync that must write nothing and checks that it did not.
func (b *bench) noop(ctx context.Context, e *env, name, cfg, size string) (result, error) {
	r, err := b.sync(ctx, e, name, cfg)
	if err != nil {
		return r, err
	}
	r.size = size
	for crm, c := range r.calls {
		if c.writes > 0 {
			r.checks = append(r.checks, fmt.Sprintf("%s: %d write calls in a no-op run (want 0)", crm, c.writes))
		}
	}
	b.verify(e, &r)
	return r, nil
}

func (b *bench) rateScenario(ctx context.Context) ([]result, error) {
	e, err := b.start("rate", b.f.ratePeople, b.f.rateShared)
	if err != nil {
		return nil, err
	}
	defer e.sim.Close()
	fast, err := b.config(e, "rate-setup.toml", 100_000, 1000)
	if err != nil {
		return nil, err
	}
	slow, err := b.config(e, "rate.toml", b.f.rate, 1)
	if err != nil {
		return nil, err
	}
	size := sizeLabel(e.people, e.shared)
	fmt.Fprintln(os.Stderr, "syncbench: rate-limited run: first sync and no-op rerun without limit")
	setup, err := b.sync(ctx, e, "setup", fast)
	if err != nil {
		return nil, err
	}
	b.verify(e, &setup)
	if len(setup.checks) > 0 {
		setup.name, setup.size = "rate setup", size
		return []result{setup}, nil
	}
	if _, err := b.sync(ctx, e, "setup rerun", fast); err != nil {
		return nil, err
	}
	edited := b.edit(e)
	r, err := b.sync(ctx, e, fmt.Sprintf("%g%% edits @ %g req/s", b.f.edits, b.f.rate), slow)
	if err != nil {
		return nil, err
	}
	r.size = size
	checkEditWrites(&r, edited)
	b.verify(e, &r)
	// Connectors pull side by side, then push side by side: the run
	// cannot be shorter than the slower connector's pull calls plus the
	// slower connector's push calls, each at rate.
	maxCalls := 0
	for _, c := range r.calls {
		maxCalls = max(maxCalls, c.reads+c.writes)
	}
	r.bound = time.Duration(float64(maxCalls) / b.f.rate * float64(time.Second))
	return []result{r}, nil
}

// edited is how many records users changed on each side.
type edited struct{ opencrm, co3 int }

// edit changes the job title of edits % of each side's contacts, picked
// among the shared people (every edit must reach the other side: one
// write each), OpenCRM's from the first half of them and CO3's from the
// second, so no field is changed on both sides.
func (b *bench) edit(e *env) edited {
	n := int(float64(e.people) * b.f.edits / 100)
	n = min(n, e.shared/2)
	if n == 0 {
		return edited{}
	}
	stamp := time.Now().Format("150405")
	opencrmIDs := idsByEmail(e.sim.OpenCRM.Table, "email")
	co3IDs := idsByEmail(e.sim.CO3.Table(), "contact_email")
	sharedFrom := e.people - e.shared // first shared person
	var done edited
	for i := 0; i < n; i++ {
		// Spread the edits over the shared range.
		p := e.sim.People[sharedFrom+i*(e.shared/2)/n]
		if id, ok := opencrmIDs[normEmail(p.Email)]; ok {
			e.sim.OpenCRM.EditAsUser(id, map[string]string{"title": fmt.Sprintf("Edited in OpenCRM %s-%d", stamp, i)})
			done.opencrm++
		}
		q := e.sim.People[sharedFrom+e.shared/2+i*(e.shared-e.shared/2)/n]
		if id, ok := co3IDs[normEmail(q.Email)]; ok {
			e.sim.CO3.EditAsUser(id, map[string]string{"contact_job": fmt.Sprintf("Edited in CO3 %s-%d", stamp, i)})
			done.co3++
		}
	}
	return done
}

// checkEditWrites wants one write on the other side per edited record and
// none on the edited side beyond that.
func checkEditWrites(r *result, ed edited) {
	want := map[string]int{"opencrm": ed.co3, "co3": ed.opencrm}
	for crm, w := range want {
		if got := r.calls[crm].writes; got != w {
			r.checks = append(r.checks, fmt.Sprintf("%s: %d write calls, want %d (records edited on the other side)", crm, got, w))
		}
	}
	r.notes = append(r.notes, fmt.Sprintf("edited %d in OpenCRM, %d in CO3", ed.opencrm, ed.co3))
}

// slugify makes a file name of a scenario name.
func slugify(s string) string {
	return strings.NewReplacer(" ", "-", "%", "pct", "@", "at", "/", "-").Replace(s)
}

// sizeLabel reads "100k+100k, 50k shared".
func sizeLabel(people, shared int) string {
	n := func(v int) string {
		if v >= 1000 && v%1000 == 0 {
			return strconv.Itoa(v/1000) + "k"
		}
		return strconv.Itoa(v)
	}
	return fmt.Sprintf("%s+%s, %s shared", n(people), n(people), n(shared))
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func idsByEmail(t *emulator.Table, field string) map[string]string {
	ids := map[string]string{}
	for _, c := range t.List(nil) {
		if em := normEmail(c.Fields[field]); em != "" {
			if _, dup := ids[em]; !dup {
				ids[em] = emulator.FormatID(c.ID)
			}
		}
	}
	return ids
}

// duplicates counts live contacts whose normalised e-mail another
// contact of the same table already has.
func duplicates(t *emulator.Table, field string) int {
	seen := map[string]bool{}
	dups := 0
	for _, c := range t.List(nil) {
		em := normEmail(c.Fields[field])
		if em == "" {
			continue
		}
		if seen[em] {
			dups++
		}
		seen[em] = true
	}
	return dups
}

// verify checks entities and duplicates after a run.
func (b *bench) verify(e *env, r *result) {
	want := int64(2*e.people - e.shared)
	r.dups = map[string]int{
		"opencrm": duplicates(e.sim.OpenCRM.Table, "email"),
		"co3":     duplicates(e.sim.CO3.Table(), "contact_email"),
	}
	for crm, d := range r.dups {
		if d > 0 {
			r.checks = append(r.checks, fmt.Sprintf("%s: %d duplicate e-mails (want 0)", crm, d))
		}
	}
	for crm, t := range e.sim.Tables() {
		if n := t.Len(); int64(n) != want {
			r.checks = append(r.checks, fmt.Sprintf("%s: %d contacts, want %d", crm, n, want))
		}
	}
	st, err := state.Open(context.Background(), e.statePath, state.Options{ReadOnly: true})
	if err != nil {
		r.checks = append(r.checks, fmt.Sprintf("open state: %v", err))
		return
	}
	defer st.Close()
	s, err := st.Status(context.Background())
	if err != nil {
		r.checks = append(r.checks, fmt.Sprintf("state status: %v", err))
		return
	}
	r.entities = s.Entities
	if s.Entities != want {
		r.checks = append(r.checks, fmt.Sprintf("%d entities, want %d", s.Entities, want))
	}
}

// sync runs syncd --run-once as a child process and measures it.
func (b *bench) sync(ctx context.Context, e *env, name, config string) (result, error) {
	r := result{name: name}
	fmt.Fprintf(os.Stderr, "syncbench: %s (%s)\n", name, e.name)
	e.sim.OpenCRM.ResetCalls()
	e.sim.CO3.ResetCalls()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.bin, "-config", config, "--run-once")
	cmd.Stdout = &stdout
	cmd.Stderr = &tail{max: 64 << 10, buf: &stderr}
	cmd.Env = os.Environ()
	if b.f.profile {
		slug := filepath.Join(b.dir, slugify(e.name+"-"+name))
		cmd.Env = append(cmd.Env, "SYNCD_CPUPROFILE="+slug+".cpu.pprof", "SYNCD_MEMPROFILE="+slug+".heap.pprof")
	}
	selfBefore := selfCPU()
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		stopWatch := watchRSS(cmd.Process.Pid, &r)
		err = cmd.Wait()
		stopWatch()
	}
	r.wall = time.Since(start)
	r.emuCPU = selfCPU() - selfBefore
	if cmd.ProcessState == nil {
		return r, fmt.Errorf("%s: syncd did not start: %w", name, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.rssKB = ru.Maxrss // kilobytes on Linux; see watchRSS
	}
	if r.hwmKB > 0 {
		r.rssKB = r.hwmKB
	}
	r.exit = cmd.ProcessState.ExitCode()
	if b.f.keep {
		_ = os.WriteFile(filepath.Join(b.dir, slugify(e.name+"-"+name)+".out"), append(stdout.Bytes(), stderr.Bytes()...), 0o600)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	if r.exit != 0 && r.exit != 3 {
		return r, fmt.Errorf("%s: syncd exited %d:\n%s\n%s", name, r.exit, stdout.String(), stderr.String())
	}
	if r.exit == 3 {
		r.notes = append(r.notes, "syncd exit 3 (needs attention)")
	}
	r.pulled = pulledFromReport(stdout.String())
	if oc := e.sim.OpenCRM.CallCounts(); len(oc) > 0 && oc["edit_contact"] == 0 {
		var parts []string
		for _, m := range emulator.SortedKeys(oc) {
			parts = append(parts, fmt.Sprintf("%s %d", m, oc[m]))
		}
		r.notes = append(r.notes, "OpenCRM reads: "+strings.Join(parts, ", "))
	}
	r.calls = map[string]callCount{
		"opencrm": countCalls(e.sim.OpenCRM.CallCounts(), "edit_contact"),
		"co3":     countCalls(e.sim.CO3.CallCounts(), "setContact"),
	}
	return r, nil
}

// watchRSS samples /proc/pid/status every 50 ms (Linux): VmHWM, the
// child's own peak resident set since exec, and the split of the resident
// set between anonymous (Go heap, SQLite page cache) and file-backed
// pages. The rusage of a child cannot serve here: a child started by
// vfork counts the parent's resident set (this process, holding the
// emulators' tables) into its maximum before it execs.
func watchRSS(pid int, r *result) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	path := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if b, err := os.ReadFile(path); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					k, v, ok := strings.Cut(line, ":")
					if !ok {
						continue
					}
					n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					switch k {
					case "RssAnon":
						r.anonKB = max(r.anonKB, n)
					case "RssFile":
						r.fileKB = max(r.fileKB, n)
					case "VmHWM":
						r.hwmKB = max(r.hwmKB, n)
					}
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countCalls splits an emulator's call counters into reads and writes.
func countCalls(counts map[string]int, writeMethods ...string) callCount {
	var c callCount
	for m, n := range counts {
		if m == "*" {
			continue
		}
		write := false
		for _, w := range writeMethods {
			write = write || m == w
		}
		if write {
			c.writes += n
		} else {
			c.reads += n
		}
	}
	return c
}

// pulledFromReport sums the pulled column of syncd's run summary.
func pulledFromReport(s string) int {
	total := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	col := -1
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[0] == "connector" {
			for i, f := range fields {
				if f == "pulled" {
					col = i
				}
			}
			continue
		}
		if col < 0 || len(fields) <= col {
			continue
		}
		if n, err := strconv.Atoi(fields[col]); err == nil {
			total += n
		} else {
			col = -1 // the table ended
		}
	}
	return total
}

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tsize\twall\tsyncd CPU\temulator CPU\tpeak RSS (anon/file)\tOpenCRM r/w\tCO3 r/w\trecords/s\tentities\tdups (OpenCRM/CO3)\tnotes")
	for _, r := range results {
		rps := "-"
		if r.wall > 0 && r.pulled > 0 {
			rps = fmt.Sprintf("%.0f", float64(r.pulled)/r.wall.Seconds())
		}
		notes := strings.Join(r.notes, "; ")
		if r.bound > 0 {
			notes = strings.TrimPrefix(fmt.Sprintf("%s; lower bound %s, wall = %.2f × bound", notes, r.bound.Round(100*time.Millisecond), r.wall.Seconds()/r.bound.Seconds()), "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d MB (%d/%d)\t%d/%d\t%d/%d\t%s\t%d\t%d/%d\t%s\n",
			r.name, r.size, r.wall.Round(10*time.Millisecond), r.cpu.Round(10*time.Millisecond), r.emuCPU.Round(10*time.Millisecond), r.rssKB/1024, r.anonKB/1024, r.fileKB/1024,
			r.calls["opencrm"].reads, r.calls["opencrm"].writes, r.calls["co3"].reads, r.calls["co3"].writes,
			rps, r.entities, r.dups["opencrm"], r.dups["co3"], notes)
	}
	tw.Flush()
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	buf *bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if extra := t.buf.Len() - t.max; extra > 0 {
		t.buf.Next(extra)
	}
	return len(p), nil
}
