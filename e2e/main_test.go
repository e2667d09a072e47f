// Package e2e tests the real syncd and crmsim binaries end to end: they are
// built once per test binary run (on first use), started as subprocesses, and pointed at
// the CRM emulators served on loopback by this process (so that the
// emulators survive a syncd being stopped or killed, and their tables and
// call counters can be inspected).
//
// With -e2e.race the binaries are built with -race and every subprocess's
// stderr is checked for race reports. It is off by default because a
// race-built binary takes over a second to start here, and the tests
// start syncd some fifty times; the engine's own tests run in-process
// under -race.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/crmsim"
)

var (
	flagPeople  = flag.Int("e2e.people", 200, "sample people seeded into the emulators")
	flagLatency = flag.Duration("e2e.latency", 20*time.Millisecond, "latency added to every emulator call to make a run slow enough to interrupt")
	flagRace    = flag.Bool("e2e.race", false, "build the binaries under test with -race")
)

// binaries are the paths of syncd and crmsim, built on first use (so that
// a -run selecting no test here builds nothing).
var binaries struct {
	dir           string
	once          sync.Once
	err           error
	syncd, crmsim string
}

// needBinaries builds the binaries once per test binary run.
func needBinaries(t *testing.T) {
	t.Helper()
	binaries.once.Do(func() { binaries.err = build(binaries.dir) })
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "syncd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binaries.dir = dir
	return m.Run()
}

// build compiles cmd/syncd and cmd/crmsim into dir.
func build(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if root == "." || root == "" {
		return errors.New("not inside the syncd module (go env GOMOD is empty)")
	}
	binaries.syncd = filepath.Join(dir, "syncd")
	binaries.crmsim = filepath.Join(dir, "crmsim")
	for pkg, dst := range map[string]string{"./cmd/syncd": binaries.syncd, "./cmd/crmsim": binaries.crmsim} {
		args := []string{"build", "-o", dst}
		if *flagRace {
			args = append(args, "-race")
		}
		cmd := exec.Command(goBin, append(args, pkg)...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return nil
}

// result is what a finished subprocess left.
type result struct {
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout:\n%s\n--- stderr:\n%s", r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// syncd runs the syncd binary with args to completion (at most a minute).
func syncd(t *testing.T, args ...string) result {
	t.Helper()
	needBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binaries.syncd, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("syncd %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("syncd %s did not finish within a minute\n%s", strings.Join(args, " "), r)
	}
	noRace(t, r.Stderr)
	return r
}

// noRace fails the test when a race-built subprocess reported a race.
func noRace(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "WARNING: DATA RACE") {
		t.Errorf("the subprocess reported a data race:\n%s", stderr)
	}
}

// wantCode fails the test unless r exited with code.
func wantCode(t *testing.T, r result, code int, what string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s: want exit %d, got\n%s", what, code, r)
	}
}

// lockedBuffer is an io.Writer safe to read while a subprocess writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one scenario: emulators in this process, a config file for them
// and a state database in a temporary folder.
type env struct {
	t      *testing.T
	dir    string
	sim    *crmsim.Sim
	config string
	state  string
}

// setup starts the emulators and writes a config for them. edit, when
// given, rewrites the config text before it is written.
func setup(t *testing.T, so crmsim.Options, co crmsim.ConfigOptions, edit func(string) string) *env {
	t.Helper()
	if so.People == 0 {
		so.People = *flagPeople
	}
	if so.Seed == 0 {
		so.Seed = 7
	}
	sim, err := crmsim.Start(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return configure(t, sim, co, edit)
}

// configure writes the config of a running sim.
func configure(t *testing.T, sim *crmsim.Sim, co crmsim.ConfigOptions, edit func(string) string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, sim: sim, config: filepath.Join(dir, "config.toml"), state: filepath.Join(dir, "state.db")}
	if co.State == "" {
		co.State = e.state
	}
	e.state = co.State
	if co.LogFormat == "" {
		co.LogFormat = "json"
	}
	text, err := sim.Config(co)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		text = edit(text)
	}
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// runOnce runs `syncd -config F --run-once extra...`.
func (e *env) runOnce(extra ...string) result {
	e.t.Helper()
	return syncd(e.t, append([]string{"-config", e.config, "--run-once"}, extra...)...)
}

// writeMethods are the emulator methods that change a CRM, by CRM.
var writeMethods = map[string][]string{
	"opencrm":    {"edit_contact"},
	"co3":        {"setContact"},
	"clientbook": {"clients/add", "clients/edit"},
}

// writeCalls returns the emulators' write-call counters, "crm method" keyed.
func (e *env) writeCalls() map[string]int {
	out := map[string]int{}
	for crm, methods := range writeMethods {
		for _, m := range methods {
			out[crm+" "+m] = e.calls(crm, m)
		}
	}
	return out
}

func (e *env) totalWrites() int {
	n := 0
	for _, c := range e.writeCalls() {
		n += c
	}
	return n
}

// calls returns one emulator's call count of method.
func (e *env) calls(crm, method string) int {
	switch crm {
	case "opencrm":
		return e.sim.OpenCRM.Calls(method)
	case "co3":
		return e.sim.CO3.Calls(method)
	case "clientbook":
		return e.sim.ClientBook.Calls(method)
	case "clientapi":
		return e.sim.ClientAPI.Calls(method)
	}
	e.t.Fatalf("no emulator %q", crm)
	return 0
}

// normEmail is how the tests compare e-mail addresses.
func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkConverged fails the test when an emulator holds a person twice
// (by normalised e-mail) or misses one of the sample people.
func (e *env) checkConverged() {
	e.t.Helper()
	for crm, table := range e.sim.Tables() {
		field := crmsim.EmailFields[crm]
		seen := map[string]int{}
		for _, c := range table.List(nil) {
			seen[normEmail(c.Fields[field])]++
		}
		var dups, missing []string
		for email, n := range seen {
			if n > 1 {
				dups = append(dups, fmt.Sprintf("%s ×%d", email, n))
			}
		}
		for _, p := range e.sim.People {
			if seen[normEmail(p.Email)] == 0 {
				missing = append(missing, p.Email)
			}
		}
		if len(dups) > 0 {
			e.t.Errorf("%s holds %d people more than once: %s", crm, len(dups), strings.Join(first(dups, 5), ", "))
		}
		if len(missing) > 0 {
			e.t.Errorf("%s misses %d of %d people: %s", crm, len(missing), len(e.sim.People), strings.Join(first(missing, 5), ", "))
		}
		if n := table.Len(); n != len(e.sim.People) {
			e.t.Errorf("%s holds %d contacts, want %d", crm, n, len(e.sim.People))
		}
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// fields returns the fields of the contact of crm with email.
func (e *env) fields(crm, email string) map[string]string {
	e.t.Helper()
	id := e.sim.FindByEmail(crm, email)
	if id == "" {
		e.t.Fatalf("%s has no contact %s", crm, email)
	}
	var f map[string]string
	var ok bool
	switch crm {
	case "opencrm":
		f, ok = e.sim.OpenCRM.Fields(id)
	case "co3":
		f, ok = e.sim.CO3.Fields(id)
	case "clientbook":
		f, ok = e.sim.ClientBook.Fields(id)
	}
	if !ok {
		e.t.Fatalf("%s: contact %s (%s) vanished", crm, id, email)
	}
	return f
}

// report is a parsed --run-once summary table: connector → column → value.
type report map[string]map[string]int

var spaces = regexp.MustCompile(`\s+`)

// parseReport reads the table --run-once prints on stdout.
func parseReport(t *testing.T, stdout string) report {
	t.Helper()
	var cols []string
	rep := report{}
	for _, line := range strings.Split(stdout, "\n") {
		f := spaces.Split(strings.TrimSpace(line), -1)
		if len(f) > 0 && f[0] == "connector" {
			cols = f
			continue
		}
		if cols == nil || len(f) != len(cols) {
			continue
		}
		row := map[string]int{}
		for i := 1; i < len(cols); i++ {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				row = nil
				break
			}
			row[cols[i]] = n
		}
		if row != nil {
			rep[f[0]] = row
		}
	}
	if len(rep) == 0 {
		t.Fatalf("no run summary table in stdout:\n%s", stdout)
	}
	return rep
}

// sum adds up one column over every connector.
func (r report) sum(col string) int {
	n := 0
	for _, row := range r {
		n += row[col]
	}
	return n
}
