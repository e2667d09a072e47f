package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
	engine "github.com/syncd/syncd/internal/sync"
)

// cliRun runs the command line in-process and returns its exit code and
// output.
func cliRun(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliSim serves small emulators and writes a config for them.
func cliSim(t *testing.T, people int) (sim *crmsim.Sim, configPath string) {
	t.Helper()
	sim, err := crmsim.Start(crmsim.Options{People: people, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	text, err := sim.Config(crmsim.ConfigOptions{State: filepath.Join(dir, "state.db"), LogLevel: "warn", LogFormat: "json"})
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, `schedule = "@every 1m"`, `schedule = "@every 1h"`, 1)
	configPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return sim, configPath
}

func writeCount(sim *crmsim.Sim) int {
	return sim.OpenCRM.Calls("edit_contact") + sim.CO3.Calls("setContact") +
		sim.ClientBook.Calls("clients/add") + sim.ClientBook.Calls("clients/edit")
}

func TestRunUsage(t *testing.T) {
	_, cfg := cliSim(t, 10)
	missing := filepath.Join(t.TempDir(), "missing.toml")
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string
		stderr     string
		noDatabase bool
	}{
		{args: []string{"version"}, code: 0, stdout: "syncd " + Version},
		{args: []string{"help"}, code: 0, stdout: "usage:"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{args: []string{"--bogus"}, code: 2, stderr: "flag provided but not defined"},
		{args: []string{"-config", cfg, "--run-once", "extra"}, code: 2, stderr: "unexpected arguments: extra"},
		{args: []string{"-config", missing, "--run-once"}, code: 2, stderr: "missing.toml"},
		{args: []string{"check-config", "-config", missing}, code: 2, stderr: "missing.toml"},
		{args: []string{"check-config", "-config", cfg}, code: 0, stdout: "config ok: 4 connectors"},
		{args: []string{"check-config", "-nope"}, code: 2},
		{args: []string{"conflicts"}, code: 2, stderr: "want list, show ID or resolve ID"},
		{args: []string{"conflicts", "frob"}, code: 2, stderr: `unknown subcommand "frob"`},
		{args: []string{"conflicts", "show"}, code: 2, stderr: "missing conflict ID"},
		{args: []string{"conflicts", "show", "x1"}, code: 2, stderr: `not a conflict ID: "x1"`},
		{args: []string{"conflicts", "resolve", "1", "-config", cfg}, code: 2, stderr: "exactly one of --take CONNECTOR or --value V"},
		{args: []string{"conflicts", "resolve", "1", "--take", "co3", "--value", "v", "-config", cfg}, code: 2, stderr: "exactly one of"},
		{args: []string{"explain", "-config", cfg}, code: 2, stderr: "give one e-mail address or entity id"},
		{args: []string{"explain", "-config", cfg, "a@b", "c@d"}, code: 2, stderr: "give one e-mail address"},
		// Inspection never creates a database.
		{args: []string{"status", "-config", cfg}, code: 1, stderr: "no state database yet", noDatabase: true},
		{args: []string{"explain", "-config", cfg, "a@example.com"}, code: 1, stderr: "no state database yet", noDatabase: true},
		{args: []string{"conflicts", "list", "-config", cfg}, code: 1, stderr: "no state database yet", noDatabase: true},
	} {
		code, stdout, stderr := cliRun(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, want %d (stdout want %q, stderr want %q)\nstdout: %s\nstderr: %s", tc.args, code, tc.code, tc.stdout, tc.stderr, stdout, stderr)
		}
		if tc.noDatabase {
			if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "state.db")); err == nil {
				t.Fatalf("%q created the state database", tc.args)
			}
		}
	}
}

func TestFindConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	if p, err := findConfig("given.toml"); err != nil || p != "given.toml" {
		t.Errorf("findConfig(given) = %q, %v", p, err)
	}
	if _, err := os.Stat("/etc/syncd/config.toml"); err == nil {
		t.Skip("/etc/syncd/config.toml exists here")
	}
	_, err := findConfig("")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "config.toml") {
		t.Errorf("findConfig with no config anywhere: %v, want a usage error naming the paths tried", err)
	}
	if err := os.WriteFile("config.toml", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := findConfig(""); err != nil || p != "config.toml" {
		t.Errorf("findConfig with ./config.toml = %q, %v", p, err)
	}
}

func TestParseRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want runFlags
	}{
		{nil, runFlags{}},
		{[]string{"-config", "c.toml"}, runFlags{config: "c.toml"}},
		{[]string{"--run-once", "--full"}, runFlags{runOnce: true, full: true}},
		// A dry run is one cycle.
		{[]string{"--dry-run"}, runFlags{runOnce: true, dry: true}},
	} {
		got, err := parseRunFlags(tc.args, io.Discard)
		if err != nil || got != tc.want {
			t.Errorf("parseRunFlags(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}

func TestWithStatePath(t *testing.T) {
	base := errors.New("state: commit: disk I/O error")
	if got := withStatePath(base, "/var/lib/syncd/state.db"); !errors.Is(got, base) || !strings.Contains(got.Error(), "/var/lib/syncd/state.db") {
		t.Errorf("withStatePath = %v", got)
	}
	named := errors.New("state: cannot open /x/state.db: permission denied")
	if got := withStatePath(named, "/x/state.db"); got != named {
		t.Errorf("an error naming the path already was changed: %v", got)
	}
	if withStatePath(nil, "/x") != nil {
		t.Error("nil error became non-nil")
	}
}

func TestPrintReportStatus(t *testing.T) {
	for _, tc := range []struct {
		rep  engine.Report
		err  error
		want string
	}{
		{engine.Report{RunID: 1}, nil, "run 1 ok in"},
		{engine.Report{RunID: 2, Interrupted: true}, nil, "run 2 interrupted (resumes on the next run)"},
		{engine.Report{RunID: 3, Conflicts: 2}, nil, "run 3 finished, needs attention"},
		{engine.Report{RunID: 4, Connectors: []engine.ConnectorReport{{Name: "co3", Err: errors.New("co3: authenticate: wrong key")}}}, nil, "run 4 failed"},
		{engine.Report{RunID: 5}, errors.New("state: commit: disk I/O error"), "run 5 failed"},
		{engine.Report{RunID: 6, DeletionsBlocked: "would delete 60 of 100"}, nil, "deletions blocked: would delete 60 of 100"},
	} {
		var b bytes.Buffer
		printReport(&b, &tc.rep, tc.err)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("report %+v (err %v): want %q in\n%s", tc.rep, tc.err, tc.want, b.String())
		}
	}
}

// TestRunOnceInProcess: run-once through Run against the emulators; a dry
// run writes nothing, the first real run converges, the second writes
// nothing; the inspection commands read the result.
func TestRunOnceInProcess(t *testing.T) {
	sim, cfg := cliSim(t, 60)
	ctx := context.Background()
	code, stdout, stderr := cliRun(t, ctx, "-config", cfg, "--dry-run")
	if code != 0 || writeCount(sim) != 0 {
		t.Fatalf("dry run: exit %d, %d writes\n%s\n%s", code, writeCount(sim), stdout, stderr)
	}
	code, stdout, stderr = cliRun(t, ctx, "-config", cfg, "--run-once")
	if code != 0 || !strings.Contains(stdout, " ok in ") {
		t.Fatalf("run-once: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for crm, table := range sim.Tables() {
		if table.Len() != len(sim.People) {
			t.Errorf("%s holds %d contacts after the run, want %d", crm, table.Len(), len(sim.People))
		}
	}
	before := writeCount(sim)
	if code, stdout, stderr = cliRun(t, ctx, "-config", cfg, "--run-once"); code != 0 || writeCount(sim) != before {
		t.Errorf("second run-once: exit %d, %d writes\n%s\n%s", code, writeCount(sim)-before, stdout, stderr)
	}
	if code, stdout, _ = cliRun(t, ctx, "status", "-config", cfg); code != 0 || !strings.Contains(stdout, "run 3") || !strings.Contains(stdout, "dry-run") {
		t.Errorf("status: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ = cliRun(t, ctx, "explain", "-config", cfg, sim.People[30].Email); code != 0 || !strings.Contains(stdout, "co3 record") {
		t.Errorf("explain: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ = cliRun(t, ctx, "conflicts", "list", "-config", cfg); code != 0 || !strings.Contains(stdout, "no conflicts") {
		t.Errorf("conflicts list: exit %d\n%s", code, stdout)
	}
}

// TestDaemonInProcess: the daemon runs its start-up cycle, and on
// cancellation (what SIGTERM does) lets it finish before closing the
// store, returning 0.
func TestDaemonInProcess(t *testing.T) {
	sim, cfg := cliSim(t, 60)
	slow := func(string) *emulator.Fault {
		time.Sleep(5 * time.Millisecond)
		return nil
	}
	sim.CO3.SetRandomFaults(slow)
	sim.ClientBook.SetRandomFaults(slow)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var code int
	var stderr lockedWriter
	wg.Go(func() { code = Run(ctx, []string{"-config", cfg}, io.Discard, &stderr) })
	deadline := time.Now().Add(20 * time.Second)
	for writeCount(sim) == 0 {
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			t.Fatalf("the daemon made no write in 20 s:\n%s", stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	// Stop in the middle of the first cycle.
	cancel()
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not return within 10 s of cancellation")
	}
	if code != 0 {
		t.Errorf("daemon: exit %d\n%s", code, stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "database is closed") || strings.Contains(s, "sync run failed") {
		t.Errorf("the store was closed under the running cycle:\n%s", s)
	}
	// The cycle recorded its own end: a store closed under it would leave
	// the run "running".
	code, stdout, _ := cliRun(t, context.Background(), "status", "-config", cfg)
	if code != 0 || !regexp.MustCompile(`(?m)^\s+run 1\s.*\sinterrupted\s`).MatchString(stdout) {
		t.Errorf("status after the stop does not show run 1 interrupted:\n%s", stdout)
	}
	// The next run resumes and converges.
	if code, stdout, stderr := cliRun(t, context.Background(), "-config", cfg, "--run-once"); code != 0 {
		t.Fatalf("run-once after the stopped daemon: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for crm, table := range sim.Tables() {
		if table.Len() != len(sim.People) {
			t.Errorf("%s holds %d contacts, want %d", crm, table.Len(), len(sim.People))
		}
	}
}

type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
